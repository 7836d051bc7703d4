/**
 * The Managed Disks BlockStore as a separate process behind the real PluginHost, against the
 * Microsoft.Compute double: deadlines, cancellation and errors across the process boundary.
 * The process-level test runs the built executable: build first.
 */
import { Code, Reason } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDisk, doubleConfig, startArmComputeDouble, writeCredentialsFile, type ArmComputeDouble } from "../test/support/arm-compute-double.js";
import { rejection } from "@stowage/sdk/testing";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));

describe("stowage-plugin-azure (Managed Disks BlockStore) through the PluginHost against the ARM double", () => {
  let double: ArmComputeDouble;
  let host: PluginHost;
  let dir: string;
  let config: Record<string, string>;

  beforeAll(async () => {
    double = await startArmComputeDouble();
    dir = await mkdtemp(join(tmpdir(), "stowage-disks-host-"));
    config = doubleConfig(double, await writeCredentialsFile(double, dir));
    await createDisk(double, "hosted", { tags: { app: "host" } });
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
  }, 60_000);

  afterAll(async () => {
    await host.close();
    await double.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("announces the BlockStore with its capabilities and keys", () => {
    const plugin = host.plugins().find((p) => p.descriptor.kind === "block-store" && p.descriptor.name === "stowage.io/azure");
    expect(plugin?.descriptor.capabilities).toEqual(["SNAPSHOT_PROGRESS", "LIST_SNAPSHOTS", "DELETE_VOLUME"]);
    expect(plugin?.descriptor.configKeys.map((k) => k.name)).toEqual(expect.arrayContaining(["apiTimeout", "incremental", "tags", "resourceManagerEndpoint"]));
  });

  it("snapshots, restores and rewrites a PV across the process boundary", async () => {
    const store = host.blockStore("stowage.io/azure");
    await store.init(config);
    const snapshot = await store.createSnapshot({ volumeId: "hosted", tags: { "velero.io/backup": "b1" } });
    expect(snapshot).toMatchObject({ volumeId: "hosted", state: "ready", tags: { app: "host", "velero.io/backup": "b1" } });
    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "Premium_LRS", zone: "westeurope-3" });
    expect(await store.getVolumeInfo({ volumeId })).toMatchObject({ volumeId, volumeType: "Premium_LRS", zone: "westeurope-3" });
    const pv = { apiVersion: "v1", kind: "PersistentVolume", spec: { csi: { driver: "disk.csi.azure.com", volumeHandle: double.diskId("stowage-disks", "hosted") } } };
    expect(await store.getVolumeId(pv)).toBe("hosted");
    const moved = await store.setVolumeId(pv, volumeId);
    expect(moved).toEqual({ ...pv, spec: { csi: { driver: "disk.csi.azure.com", volumeHandle: double.diskId("stowage-disks", volumeId) } } });
    await store.deleteVolume({ volumeId });
    await store.deleteSnapshot(snapshot.snapshotId);
    expect((await rejection(store.getSnapshot(snapshot.snapshotId))).reason).toBe(Reason.SnapshotNotFound);
  }, 30_000);

  it("ends a never-finishing operation at the caller's deadline, and the plugin stops polling", async () => {
    const store = host.blockStore("stowage.io/azure", { instance: "deadline" });
    await store.init(config);
    double.hangNextOperations(1);
    const error = await rejection(store.createSnapshot({ volumeId: "hosted" }, { timeoutMs: 1500 }));
    expect(error.code).toBe(Code.DeadlineExceeded);
    const polls = (): number => double.requests.filter((r) => r.path.includes("/DiskOperations/")).length;
    // Twenty poll intervals later no poll has been added: the plugin gave up with the call.
    await sleep(200);
    const before = polls();
    await sleep(400);
    expect(polls()).toBe(before);
  }, 30_000);

  it("reports apiTimeout with advice and the snapshot ID across the boundary", async () => {
    const store = host.blockStore("stowage.io/azure", { instance: "api-timeout" });
    await store.init({ ...config, apiTimeout: "1s" });
    double.hangNextOperations(1);
    const error = await rejection(store.createSnapshot({ volumeId: "hosted" }));
    expect(error).toMatchObject({ code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded });
    expect(error.message).toContain("apiTimeout");
    expect(error.metadata.snapshot_id).toMatch(/\/snapshots\/hosted-/);
  }, 30_000);
});
