/**
 * `stowage snapshot …` end to end: every step runs the `stowage` command, a Node process that launches
 * the embedded plugin-local, so the file runs many processes (the slow tier).
 */
import { readFile } from "node:fs/promises";
import { createLocalVolume, localVolumePath } from "@stowage/plugin-local";
import { describe, expect, it } from "vitest";
import { runCli, runJson, tempDir } from "./support/cli.js";

interface SnapshotDoc {
  snapshotId: string;
  volumeId: string;
  state: string;
  sizeBytes: number;
  zone: string;
  tags: Record<string, string>;
}

describe("stowage snapshot", () => {
  it("creates (--wait), lists, gets, restores and deletes a snapshot", async () => {
    const cwd = await tempDir();
    const root = await tempDir("stowage-cli-blocks-");
    const config = ["--config", `root=${root}`];
    const pattern = Buffer.from("stowage-snapshot-test-pattern/");
    const volume = await createLocalVolume(root, { sizeBytes: 4 * 1024 * 1024 + 5, zone: "zone-a", tags: { app: "db" }, fill: pattern });

    const created = (await runJson(["snapshot", "create", volume.volumeId, "--wait", "--tag", "run=42", "--zone", "zone-a", "--json", ...config], { cwd })) as SnapshotDoc;
    expect(created.state).toBe("ready");
    expect(created.volumeId).toBe(volume.volumeId);
    expect(created.sizeBytes).toBe(volume.sizeBytes);
    expect(created.tags).toMatchObject({ app: "db", run: "42" });

    const listed = (await runJson(["snapshot", "ls", "--tag", "run=42", "--json", ...config], { cwd })) as { snapshots: SnapshotDoc[] };
    expect(listed.snapshots.map((s) => s.snapshotId)).toEqual([created.snapshotId]);
    const none = (await runJson(["snapshot", "ls", "--tag", "run=43", "--json", ...config], { cwd })) as { snapshots: SnapshotDoc[] };
    expect(none.snapshots).toEqual([]);
    const text = await runCli(["snapshot", "get", created.snapshotId, ...config], { cwd });
    expect(text.out).toMatch(/^state\s+ready$/m);

    const restored = (await runJson(
      ["snapshot", "restore", created.snapshotId, "--zone", "zone-b", "--iops", "300", "--volume-type", "fast", "--json", ...config],
      { cwd },
    )) as { snapshotId: string; volume: { volumeId: string; zone: string; iops: number; volumeType: string; sizeBytes: number } };
    expect(restored.volume).toMatchObject({ zone: "zone-b", iops: 300, volumeType: "fast", sizeBytes: volume.sizeBytes });
    expect(restored.volume.volumeId).not.toBe(volume.volumeId);
    // The restored volume's data file holds the same bytes.
    const restoredPath = localVolumePath(root, restored.volume.volumeId);
    const [original, copy] = await Promise.all([readFile(volume.path), readFile(restoredPath)]);
    expect(copy.length).toBe(volume.sizeBytes);
    expect(copy.equals(original)).toBe(true);
    expect(original.subarray(0, pattern.length).equals(pattern)).toBe(true);

    const rm = await runCli(["snapshot", "rm", created.snapshotId, ...config], { cwd });
    expect(rm.code).toBe(0);
    expect(rm.out).toBe(`deleted snapshot ${created.snapshotId}\n`);
    const gone = await runCli(["snapshot", "get", created.snapshotId, ...config], { cwd });
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`stowage: snapshot "${created.snapshotId}" not found\n`);
  }, 60_000);

  it("reports an unknown volume and an unknown provider", async () => {
    const cwd = await tempDir();
    const root = await tempDir("stowage-cli-blocks-");
    const missing = await runCli(["snapshot", "create", "vol-missing", "--config", `root=${root}`], { cwd });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('stowage: volume "vol-missing" not found\n');
    const provider = await runCli(["snapshot", "ls", "--provider", "example.com/ebs", "--config", `root=${root}`], { cwd });
    expect(provider.code).toBe(2);
    expect(provider.stderr).toBe('stowage: no block-store plugin named "example.com/ebs"; available: [stowage.io/local]\n');
  }, 30_000);
});
