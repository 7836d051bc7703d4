/**
 * The single executables `pnpm run package` builds into .build/sea/<bin>/ (scripts/package.mjs),
 * run as a user runs them: with no `node` on their PATH.
 *
 * - Each directory holds one executable file; the C++ runtime it needs sits in lib/, not
 *   executable, and the dynamic loader takes it from there ($ORIGIN/lib), not from the system.
 * - The TypeScript host (the workspace's SDK) loads the plugin executables and moves objects
 *   through plugin-local and the example plugin, and snapshots and restores a volume.
 * - The single-executable `stowage` certifies the single-executable plugin-local with its kit, and
 *   serves its own embedded plugin.
 * - The example backup server, as one executable, backs a directory up and restores it through the
 *   plugin executables in its plugin directory.
 * - Two builds of the same package are byte-identical.
 *
 * Run `pnpm run package` first (CI does, after the build); each test fails naming it when an
 * executable is missing.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { silentLogger } from "@stowage/sdk";
import { PluginHost, type PluginCommand } from "@stowage/sdk/host";
import { eventually, sha256Hex } from "@stowage/sdk/testing";
import { createLocalVolume, localVolumePath } from "@stowage/plugin-local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const WORKSPACE = fileURLToPath(new URL("../../", import.meta.url));
const SEA = join(WORKSPACE, ".build", "sea");
const PATCHELF = process.env.STOWAGE_PATCHELF ?? join(WORKSPACE, ".tools", "patchelf", "usr", "bin", "patchelf");
const PLUGINS = ["stowage-plugin-local", "stowage-plugin-aws", "stowage-plugin-ibm-cos", "stowage-plugin-azure", "stowage-plugin-gcp", "example-memory-plugin"] as const;
const ALL = [...PLUGINS, "example-backup-server", "stowage"] as const;
const run = promisify(execFile);

/** The executable `bin` as `pnpm run package` builds it; fails naming that command when missing. */
function executable(bin: string): string {
  const path = join(SEA, bin, bin);
  if (!existsSync(path)) throw new Error(`${path} is missing: run pnpm run package (after pnpm run build)`);
  return path;
}

let temp: string;
/** A PATH with nothing on it: an empty directory. */
let emptyPath: string;
/** The environment of a process that must not find Node: no PATH entries, no Node options. */
let noNodeEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  temp = await mkdtemp(join(tmpdir(), "stowage-sea-"));
  emptyPath = join(temp, "empty-path");
  await mkdir(emptyPath);
  noNodeEnv = { PATH: emptyPath, HOME: temp, LANG: "C.UTF-8" };
});
afterAll(async () => {
  if (temp !== undefined) await rm(temp, { recursive: true, force: true });
});

describe("the single executables", () => {
  it.each(ALL)("%s: one executable file; lib/ holds the C++ runtime, not executable, and the loader takes it from there", async (bin) => {
    const path = executable(bin);
    const dir = join(SEA, bin);
    const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    const executables = files.filter((e) => (statSync(join(e.parentPath, e.name)).mode & 0o111) !== 0).map((e) => relative(dir, join(e.parentPath, e.name)));
    expect(executables).toEqual([bin]);
    const libraries = files.filter((e) => e.parentPath === join(dir, "lib")).map((e) => e.name).sort();
    expect(libraries).toEqual(["libgcc_s.so.1", "libstdc++.so.6"]);
    const { stdout: rpath } = await run(PATCHELF, ["--print-rpath", path]);
    expect(rpath.trim()).toBe("$ORIGIN/lib");
    // The dynamic loader's own trace (ld.so runs no code of the program with this set).
    const { stdout: trace } = await run(path, [], { env: { ...noNodeEnv, LD_TRACE_LOADED_OBJECTS: "1" } });
    expect(trace).toContain(`libstdc++.so.6 => ${join(dir, "lib", "libstdc++.so.6")}`);
    expect(trace).toContain(`libgcc_s.so.1 => ${join(dir, "lib", "libgcc_s.so.1")}`);
  });

  it("the TypeScript host loads every plugin executable, started with no node on their PATH, and moves objects and a snapshot", async () => {
    const commands: PluginCommand[] = PLUGINS.map((bin) => ({ command: executable(bin), env: { PATH: emptyPath } }));
    const root = join(temp, "local-root");
    await mkdir(root);
    const host = new PluginHost({ plugins: commands, logger: silentLogger });
    await host.start();
    try {
      const names = host.plugins().map((p) => `${p.descriptor.name} ${p.descriptor.kind}`).sort();
      expect(names).toEqual(
        [
          "example.com/memory object-store",
          "stowage.io/aws block-store",
          "stowage.io/aws object-store",
          "stowage.io/azure block-store",
          "stowage.io/azure object-store",
          "stowage.io/gcp block-store",
          "stowage.io/gcp object-store",
          "stowage.io/ibm-cos object-store",
          "stowage.io/local block-store",
          "stowage.io/local object-store",
        ].sort(),
      );
      const body = randomBytes(3 * 1024 * 1024 + 17);
      const local = host.objectStore("stowage.io/local");
      await local.init({ root, createBuckets: "true" });
      await local.putObject({ bucket: "b", key: "sea/one", body: Readable.from([body]) });
      const got = await local.getObject({ bucket: "b", key: "sea/one" });
      expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(body));

      const memory = host.objectStore("example.com/memory");
      await memory.init({ buckets: "m" });
      await memory.putObject({ bucket: "m", key: "k", body: Readable.from([Buffer.from("from a single executable")]) });
      expect((await buffer((await memory.getObject({ bucket: "m", key: "k" })).body)).toString()).toBe("from a single executable");

      const volumes = host.blockStore("stowage.io/local");
      await volumes.init({ root });
      const volume = await createLocalVolume(root, { sizeBytes: 2 * 1024 * 1024 + 3, zone: "z1", fill: Buffer.from("single-executable/") });
      const started = await volumes.createSnapshot({ volumeId: volume.volumeId, zone: "z1", tags: {} });
      const snapshot = await eventually(async () => {
        const now = await volumes.getSnapshot(started.snapshotId);
        return now.state === "ready" && now;
      }, { timeoutMs: 60_000, what: "the snapshot to be ready" });
      const restored = await volumes.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: "z1" });
      expect(restored).not.toBe(volume.volumeId);
      expect(await readFile(localVolumePath(root, restored))).toEqual(await readFile(localVolumePath(root, volume.volumeId)));
    } finally {
      await host.close();
    }
  });

  it("the single-executable stowage certifies the single-executable plugin-local with its kit, with no node on PATH", async () => {
    const objects = join(temp, "kit-objects");
    await mkdir(objects);
    const config = join(temp, "conformance.yaml");
    await writeFile(config, `objectStore:\n  plugin: stowage.io/local\n  config: { root: ${JSON.stringify(objects)}, createBuckets: "true" }\n  bucket: conformance\n`);
    const args = ["conformance", "--config", config, "--report-dir", join(temp, "kit-report"), "--", executable("stowage-plugin-local")];
    const result = await run(executable("stowage"), args, { env: noNodeEnv, cwd: temp, maxBuffer: 1 << 24 }).catch(
      (error: unknown) => {
        const failed = error as { code?: number; stdout?: string; stderr?: string };
        return { stdout: `${failed.stdout ?? ""}\nexit ${String(failed.code)}`, stderr: failed.stderr ?? "" };
      },
    );
    expect(result.stdout, result.stderr.slice(-3000)).toMatch(/\d+ passed, 0 failed, \d+ skipped/);
  });

  it("the single-executable stowage serves its embedded local plugin from itself", async () => {
    const stowage = executable("stowage");
    const env = { ...noNodeEnv, STOWAGE_ROOT: join(temp, "embedded-root") };
    const { stdout } = await run(stowage, ["plugins", "--json"], { env, cwd: temp });
    const plugins = (JSON.parse(stdout) as { plugins: { name: string; executable: string; embedded: boolean }[] }).plugins;
    expect(plugins.map((p) => [p.name, p.executable, p.embedded])).toEqual([
      ["stowage.io/local", stowage, true],
      ["stowage.io/local", stowage, true],
    ]);
    const source = join(temp, "embedded-source.bin");
    await writeFile(source, randomBytes(100_000));
    await run(stowage, ["object", "put", "b", "k", source], { env, cwd: temp });
    await run(stowage, ["object", "get", "b", "k", join(temp, "embedded-copy.bin")], { env, cwd: temp });
    expect(await readFile(join(temp, "embedded-copy.bin"))).toEqual(await readFile(source));
  });

  it("the example backup server, one executable, backs up and restores through the plugin executables in its plugin directory", async () => {
    const server = executable("example-backup-server");
    const storage = join(temp, "backups");
    await mkdir(storage);
    const locations = join(temp, "locations.yaml");
    await writeFile(locations, `- name: primary\n  provider: stowage.io/local\n  bucket: backups\n  config: { root: ${JSON.stringify(storage)}, createBuckets: true }\n`);
    const data = join(temp, "data");
    await mkdir(join(data, "nested"), { recursive: true });
    await writeFile(join(data, "a.bin"), randomBytes(200_000));
    await writeFile(join(data, "nested", "b.txt"), "restored through a single executable\n");
    // The plugin directory is the plugin's own: the executable and its lib/ (which holds nothing executable).
    const args = ["--plugins", join(SEA, "stowage-plugin-local"), "--locations", locations];
    const backup = await run(server, [...args, "backup", "primary", "b1", data], { env: noNodeEnv, cwd: temp });
    expect(backup.stdout).toMatch(/^backed up .* as b1: \d+ bytes, sha256 [0-9a-f]{64}\n$/);
    const restored = join(temp, "restored");
    const restore = await run(server, [...args, "restore", "primary", "b1", restored], { env: noNodeEnv, cwd: temp });
    expect(restore.stdout).toMatch(/^restored b1 into .*: \d+ bytes verified\n$/);
    expect(await readFile(join(restored, "a.bin"))).toEqual(await readFile(join(data, "a.bin")));
    expect(await readFile(join(restored, "nested", "b.txt"), "utf8")).toBe("restored through a single executable\n");
  });

  it("two builds of the same package are byte-identical", async () => {
    const cli = join(WORKSPACE, "packages", "cli", "dist", "main.js");
    const env = { ...process.env, STOWAGE_PATCHELF: PATCHELF };
    const digests: string[] = [];
    for (const out of ["first", "second"]) {
      const { stdout } = await run(process.execPath, [cli, "--json", "package", join(WORKSPACE, "examples", "memory-plugin"), "--out", join(temp, out)], { env, maxBuffer: 1 << 24 });
      digests.push((JSON.parse(stdout) as { sha256: string }).sha256);
    }
    expect(digests[0]).toMatch(/^[0-9a-f]{64}$/);
    expect(digests[1]).toBe(digests[0]);
    expect(await readFile(join(temp, "first", "lib", "libstdc++.so.6"))).toEqual(await readFile(join(temp, "second", "lib", "libstdc++.so.6")));
  });
});
