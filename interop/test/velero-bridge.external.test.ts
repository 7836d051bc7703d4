/**
 * Velero's own plugin client code (the Go velero-harness, on Velero's clientmgmt) loads
 * `stowage-plugin-bridge` from its plugin directory, as a Velero server would, and the bridge forwards
 * every call over mTLS to a shared plugin service: two replicas of plugin-local in network mode,
 * sharing one root. Every ObjectStore and VolumeSnapshotter step of the harness passes through it.
 */
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLocalVolume, type LocalVolume } from "@stowage/plugin-local";
import { makeTestPki, startNetworkPlugin, type NetworkPlugin } from "@stowage/test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failures, pluginDir, requireHarness, runHarness, STOWAGE_LOCAL_MAIN, stepsOf, OBJECT_STORE_STEPS, SNAPSHOTTER_STEPS, type HarnessRun, type Report } from "./support/harness.js";

const BRIDGE_MAIN = fileURLToPath(new URL("../../packages/bridge/dist/main.js", import.meta.url));
const BUCKET = "bridge-harness";
const VOLUME_BYTES = 2 * 1024 * 1024 + 512;

describe("Velero's clientmgmt (Go) drives a shared plugin service through stowage-plugin-bridge", () => {
  let dir: string;
  let run: HarnessRun;
  let report: Report;
  let plugins: string;
  let objects: string;
  let volume: LocalVolume;
  const replicas: NetworkPlugin[] = [];

  beforeAll(async () => {
    await requireHarness();
    dir = await mkdtemp(join(tmpdir(), "stowage-velero-bridge-"));
    const pki = await makeTestPki(dir);
    const velero = await pki.client("velero", { cn: "velero" });
    for (let i = 0; i < 2; i++) {
      replicas.push(await startNetworkPlugin({ script: STOWAGE_LOCAL_MAIN, tls: { certFile: pki.server.certPath, keyFile: pki.server.keyPath, clientCaFile: pki.ca.certPath } }));
    }
    // Velero's plugin directory holds only the bridge; its environment is the Velero server's.
    plugins = await pluginDir(join(dir, "plugins"), { "stowage-plugin-bridge": BRIDGE_MAIN });
    objects = join(dir, "objects");
    await mkdir(objects);
    const blocks = join(dir, "blocks");
    volume = await createLocalVolume(blocks, { volumeId: "vol-bridge", sizeBytes: VOLUME_BYTES, volumeType: "ssd", iops: 750, zone: "zone-a", fill: Uint8Array.from("through-the-bridge", (c) => c.charCodeAt(0)) });
    run = await runHarness(
      [
        `--plugin-dir=${plugins}`,
        `--object-store=stowage.io/local=${JSON.stringify({ bucket: BUCKET, prefix: "", root: objects, createBuckets: "true" })}`,
        "--volume-snapshotter=stowage.io/local",
        `--volume-snapshotter-config=${JSON.stringify({ root: blocks })}`,
        `--volume-id=${volume.volumeId}`,
        "--volume-az=zone-a",
        "--volume-type=ssd",
        "--volume-iops=750",
      ],
      {
        STOWAGE_BRIDGE_ADDRESS: replicas.map((r) => r.address).join(","),
        STOWAGE_BRIDGE_CA_FILE: pki.ca.certPath,
        STOWAGE_BRIDGE_CERT_FILE: velero.certPath,
        STOWAGE_BRIDGE_KEY_FILE: velero.keyPath,
        STOWAGE_BRIDGE_SERVER_NAME: "stowage-plugins.test",
      },
    );
    if (run.report === undefined) throw new Error(`the harness printed no report (exit ${String(run.code)}): ${run.stderr.slice(-4000)}`);
    report = run.report;
  }, 180_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("passes every step and exits 0", () => {
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(run.code).toBe(0);
  });

  it("finds both plugins in the bridge, and runs every ObjectStore and VolumeSnapshotter step through it", () => {
    const listing = report.steps[0]?.detail as { ObjectStore?: { name: string; command: string }[]; VolumeSnapshotter?: { name: string; command: string }[] };
    expect(listing.ObjectStore).toEqual([{ name: "stowage.io/local", command: join(plugins, "stowage-plugin-bridge") }]);
    expect(listing.VolumeSnapshotter).toEqual([{ name: "stowage.io/local", command: join(plugins, "stowage-plugin-bridge") }]);
    expect(stepsOf(report, "stowage.io/local", "ObjectStore").map((s) => s.name)).toEqual([...OBJECT_STORE_STEPS]);
    expect(stepsOf(report, "stowage.io/local", "VolumeSnapshotter").map((s) => s.name)).toEqual([...SNAPSHOTTER_STEPS]);
  });

  it("stored the objects where the service's plugin was configured, through the bridge", async () => {
    // The harness deletes what it wrote; the bucket it created stays in the replicas' root.
    expect(await readdir(objects)).toContain(BUCKET);
  });
});
