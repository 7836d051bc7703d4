/**
 * The kit against the reference plugin, stowage.io/local, through the real host and the real
 * executable: every MUST case passes except the known failures listed (with their causes) in
 * helpers.ts, resources are cleaned up, and the reports are written.
 */
import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createLocalVolume } from "@stowage/plugin-local";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance, type ConformanceOutcome } from "../src/index.js";
import { FAST, LOCAL_KNOWN_FAILING, localPlugin, tempDir } from "./support/fixtures.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir.remove();
});

function verdicts(outcome: ConformanceOutcome): Record<string, string> {
  return Object.fromEntries(outcome.results.map((r) => [r.id, r.status]));
}

describe("stowage.io/local", () => {
  it("passes every MUST object-store case (known failures aside), cleans up and writes the reports", async () => {
    const root = join(dir.path, "objects");
    await mkdir(root);
    const reportDir = join(dir.path, "object-report");
    const outcome = await runConformance({
      plugin: localPlugin(),
      kind: "object-store",
      config: {
        objectStore: { plugin: "stowage.io/local", config: { root, createBuckets: "true", fsync: "false", objectLock: "true" }, bucket: "conformance", lockBucket: "conformance-locked", ...FAST },
      },
      knownFailing: [...LOCAL_KNOWN_FAILING],
      reportDir,
    });
    const failing = outcome.results.filter((r) => r.status === "fail" || r.status === "xpass");
    expect(failing.map((r) => `${r.id}: ${r.message ?? ""}`)).toEqual([]);
    expect(outcome.exitCode).toBe(0);
    expect(outcome.results.filter((r) => r.status === "xfail").map((r) => r.id).sort()).toEqual([...LOCAL_KNOWN_FAILING].sort());
    expect(outcome.results.flatMap((r) => r.leaks)).toEqual([]);
    expect(outcome.leaks).toEqual([]);
    const v = verdicts(outcome);
    // The local plugin announces every object-store capability: the capability cases run, the "without" ones are skipped.
    expect([v["OS-SIGNED-GET"], v["OS-SIGNED-PUT-EXPIRY"], v["OS-METADATA"], v["PROTO-CANCEL-PUT"]]).toEqual(["pass", "pass", "pass", "pass"]);
    expect([v["OS-RANGE-UNSUPPORTED"], v["OS-SIGNED-UNSUPPORTED"]]).toEqual(["skip", "skip"]);
    // Object protection, enforced by the plugin (objectLock: true makes every bucket lockable, so the
    // case that needs a bucket that is not is skipped; the plugin's own tests cover it).
    const lockCases = Object.keys(v).filter((id) => id.startsWith("OS-LOCK-") && !["OS-LOCK-NOT-LOCKABLE", "OS-LOCK-UNSUPPORTED", "OS-LOCK-DIRECT-PUT"].includes(id));
    expect(lockCases.length).toBeGreaterThanOrEqual(9);
    expect(lockCases.filter((id) => v[id] !== "pass")).toEqual([]);
    expect((await readdir(join(root, "conformance-locked")).catch(() => [])).filter((name) => name.startsWith("stowage-conformance-"))).toEqual([]);
    // Nothing of the run is left in the bucket (the local plugin removes emptied directories).
    expect((await readdir(join(root, "conformance"))).filter((name) => name.startsWith("stowage-conformance-"))).toEqual([]);
    // Reports: one JSON line per result, JUnit XML, and the closing line.
    const lines = (await readFile(join(reportDir, "results.jsonl"), "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(outcome.results.length);
    const first = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
    expect(first).toMatchObject({ run: outcome.runId, plugin: "stowage.io/local", kind: "object-store", id: outcome.results[0]?.id });
    const junit = await readFile(join(reportDir, "junit.xml"), "utf8");
    expect(junit).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="stowage conformance">/);
    expect(junit.match(/<testcase /g)).toHaveLength(outcome.results.length);
    expect(outcome.summaryLine).toBe(`${String(outcome.summary.passed)} passed, 0 failed, ${String(outcome.summary.skipped)} skipped`);
  }, 120_000);

  it("passes every MUST block-store case and deletes every snapshot and volume it created", async () => {
    const root = join(dir.path, "blocks");
    const volume = await createLocalVolume(root, { sizeBytes: 4 << 20, zone: "zone-a", fill: 0x5a });
    const pv = (source: Record<string, unknown>) => ({ apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-1", labels: { "topology.kubernetes.io/zone": "zone-a" } }, spec: { capacity: { storage: "4Mi" }, ...source } });
    const outcome = await runConformance({
      plugin: localPlugin(),
      kind: "block-store",
      config: {
        blockStore: {
          plugin: "stowage.io/local",
          config: { root },
          volumeId: volume.volumeId,
          zone: "zone-a",
          volumeType: "local-ssd",
          iops: 3000,
          missingVolumeId: "vol-stowage-conformance-missing",
          missingSnapshotId: "snap-stowage-conformance-missing",
          pollIntervalSeconds: 0.02,
          snapshotReadyTimeoutSeconds: 30,
          pvTemplates: {
            inTree: pv({ local: { path: join(root, "volumes", "${volumeId}.img") } }),
            csi: pv({ csi: { driver: "local.stowage.io", volumeHandle: "${volumeId}", fsType: "ext4" } }),
          },
        },
      },
      knownFailing: [...LOCAL_KNOWN_FAILING],
    });
    const failing = outcome.results.filter((r) => r.status === "fail" || r.status === "xpass");
    expect(failing.map((r) => `${r.id}: ${r.message ?? ""}`)).toEqual([]);
    expect(outcome.exitCode).toBe(0);
    const v = verdicts(outcome);
    for (const id of ["BS-SNAPSHOT-READY", "BS-VOLUME-FROM-SNAPSHOT", "BS-PV-SET-IN-TREE", "BS-PV-SET-CSI", "BS-PV-FOREIGN", "BS-DELETE-VOLUME", "BS-LIST-SNAPSHOTS", "BS-SNAPSHOT-PROGRESS"]) expect(v[id], id).toBe("pass");
    expect(outcome.results.flatMap((r) => r.leaks)).toEqual([]);
    expect(outcome.leaks).toEqual([]);
    // Only the source volume is left, and no snapshot.
    expect((await readdir(join(root, "volumes"))).sort()).toEqual([`${volume.volumeId}.img`, `${volume.volumeId}.json`]);
    expect((await readdir(join(root, "snapshots"))).filter((n) => !n.startsWith("."))).toEqual([]);
  }, 120_000);
});
