/**
 * The backup server against the real local plugin, found in a plugin directory: back a directory
 * up as a streamed tar.gz, list it, restore it, and compare every byte; a corrupted archive is
 * refused.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, Reason, silentLogger } from "@stowage/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupServer } from "../src/backup-server.js";
import { loadLocations } from "../src/locations.js";

const LOCAL_PLUGIN = fileURLToPath(new URL("../../../packages/plugin-local/dist/main.js", import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-backup-server-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function files(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[relative(root, path)] = (await readFile(path)).toString("base64");
  }
  return out;
}

describe("the example backup server", () => {
  it("backs up, lists and restores through a plugin from the plugin directory, byte for byte", async () => {
    // The plugin directory holds an executable wrapper that execs the local plugin (protocol.md §11).
    const plugins = join(dir, "plugins");
    await mkdir(plugins);
    await writeFile(join(plugins, "stowage-plugin-local"), `#!/bin/sh\nexec "${process.execPath}" "${LOCAL_PLUGIN}" "$@"\n`);
    await chmod(join(plugins, "stowage-plugin-local"), 0o755);
    await writeFile(join(plugins, "README.txt"), "not executable, so not a plugin\n");
    const storage = join(dir, "storage");
    await mkdir(storage);
    await writeFile(
      join(dir, "locations.yaml"),
      `- name: primary\n  provider: stowage.io/local\n  bucket: backups\n  prefix: cluster-a\n  config: { root: ${JSON.stringify(storage)}, createBuckets: true }\n- name: secondary\n  provider: stowage.io/local\n  bucket: other\n  config: { root: ${JSON.stringify(storage)}, createBuckets: "true" }\n`,
    );
    const source = join(dir, "data");
    await mkdir(join(source, "nested/deeper"), { recursive: true });
    await writeFile(join(source, "big.bin"), randomBytes(6 * 1024 * 1024));
    await writeFile(join(source, "nested/notes.txt"), "the quick brown fox\n");
    await writeFile(join(source, "nested/deeper/empty"), "");
    await writeFile(join(source, "ünïcode name.txt"), "é");

    const server = await BackupServer.start({ pluginDir: plugins, locations: await loadLocations(join(dir, "locations.yaml")), logger: silentLogger });
    try {
      expect(server.locations().map((l) => l.name)).toEqual(["primary", "secondary"]);
      const first = await server.backup("primary", "b1", source);
      expect(first.size).toBeGreaterThan(6 * 1024 * 1024);
      await server.backup("primary", "b2", join(source, "nested"));
      expect((await server.list("primary")).map((r) => r.name)).toEqual(["b1", "b2"]);
      // Nothing was ever stored in the second location: its bucket does not exist, and the plugin says so.
      await expect(server.list("secondary")).rejects.toMatchObject({ reason: "BUCKET_NOT_FOUND" });
      // The archive is where Velero would put it, under the location's prefix.
      const stored = await readdir(join(storage, "backups", "cluster-a", "backups", "b1"));
      expect(stored.sort()).toEqual(["b1.tar.gz~o", "stowage-backup.json~o"]);

      const target = join(dir, "restored");
      const restored = await server.restore("primary", "b1", target);
      expect(restored.sha256).toBe(first.sha256);
      expect(await files(target)).toEqual(await files(source));

      // Flip a byte in the stored archive (inside the local plugin's object file): the restore refuses it.
      const objectFile = join(storage, "backups", "cluster-a", "backups", "b1", "b1.tar.gz~o");
      const bytes = await readFile(objectFile);
      const at = bytes.length - 100;
      bytes[at] = (bytes[at] ?? 0) ^ 0xff;
      await writeFile(objectFile, bytes);
      await expect(server.restore("primary", "b1", join(dir, "corrupt"))).rejects.toThrow(/corrupt|invalid|incorrect|TAR_/i);
    } finally {
      await server.close();
    }
  });

  it("writes protected backups where the location asks for it: a delete before expiry is refused and the backup stays whole", async () => {
    const plugins = join(dir, "plugins");
    const storage = join(dir, "vault-storage");
    await mkdir(storage);
    const config = `config: { root: ${JSON.stringify(storage)}, createBuckets: true, objectLock: true }`;
    await writeFile(
      join(dir, "vault.yaml"),
      `- name: vault\n  provider: stowage.io/local\n  bucket: vault\n  ${config}\n  protection: { retain: 1d, mode: compliance }\n` +
        `- name: brief\n  provider: stowage.io/local\n  bucket: brief\n  ${config}\n  protection: { retain: 2s }\n`,
    );
    const source = join(dir, "small");
    await mkdir(source, { recursive: true });
    await writeFile(join(source, "a.txt"), "keep me\n");
    const server = await BackupServer.start({ pluginDir: plugins, locations: await loadLocations(join(dir, "vault.yaml")), logger: silentLogger });
    try {
      const record = await server.backup("vault", "b1", source);
      expect(Date.parse(record.retainUntil ?? "") - Date.parse(record.createdAt)).toBe(86_400_000);
      await expect(server.delete("vault", "b1")).rejects.toMatchObject({ code: Code.FailedPrecondition, reason: Reason.ObjectLocked, metadata: { mode: "COMPLIANCE", retain_until: record.retainUntil } });
      expect((await server.list("vault")).map((r) => r.name)).toEqual(["b1"]);
      expect((await server.restore("vault", "b1", join(dir, "vault-restored"))).sha256).toBe(record.sha256);

      // A short governance retention: refused at first, deleted once it has lapsed.
      await server.backup("brief", "b2", source);
      await expect(server.delete("brief", "b2")).rejects.toMatchObject({ reason: Reason.ObjectLocked });
      for (let attempt = 0; ; attempt += 1) {
        const outcome = await server.delete("brief", "b2").then(
          () => "deleted",
          (error: unknown) => error,
        );
        if (outcome === "deleted") break;
        expect(outcome).toMatchObject({ reason: Reason.ObjectLocked });
        if (attempt > 100) throw new Error("the 2 s retention never lapsed");
        await sleep(100);
      }
      expect(await server.list("brief")).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it("refuses to start a location that asks for protection in a bucket that cannot hold it", async () => {
    const storage = join(dir, "plain-storage");
    await mkdir(storage);
    await writeFile(join(dir, "plain.yaml"), `- name: plain\n  provider: stowage.io/local\n  bucket: b\n  config: { root: ${JSON.stringify(storage)}, createBuckets: true }\n  protection: { retain: 7d }\n`);
    const started = BackupServer.start({ pluginDir: join(dir, "plugins"), locations: await loadLocations(join(dir, "plain.yaml")), logger: silentLogger });
    await expect(started).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await expect(started).rejects.toThrow(/storage location plain \(stowage.io\/local\): .*bucket "b" cannot hold them/);
  });

  it("refuses a locations file with unknown keys, naming the valid ones, and protection periods it cannot read", async () => {
    await writeFile(join(dir, "bad.yaml"), "- name: x\n  provider: p\n  bucket: b\n  region: eu\n");
    await expect(loadLocations(join(dir, "bad.yaml"))).rejects.toThrow(/unknown keys \[region\]; valid keys are \[name, provider, bucket, prefix, config, protection\]/);
    await writeFile(join(dir, "bad-period.yaml"), "- name: x\n  provider: p\n  bucket: b\n  protection: { retain: 1w }\n");
    await expect(loadLocations(join(dir, "bad-period.yaml"))).rejects.toThrow(/protection.retain must be a period such as 30d/);
  });
});
