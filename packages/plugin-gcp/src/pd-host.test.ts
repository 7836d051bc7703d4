/**
 * The Persistent Disk BlockStore in the built executable, through the real PluginHost, against the
 * Compute Engine double. Run `pnpm run build` first.
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ComputeDouble } from "../test/support/compute-double.js";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const PROJECT = "host-proj";
const ZONE = "europe-west4-b";

describe("stowage-plugin-gcp's BlockStore through the PluginHost", () => {
  let double: ComputeDouble;
  let host: PluginHost;
  let dir: string;
  let config: Record<string, string>;

  beforeAll(async () => {
    double = await ComputeDouble.start();
    dir = await mkdtemp(join(tmpdir(), "stowage-gcp-host-"));
    const credentialsFile = join(dir, "key.json");
    await writeFile(credentialsFile, JSON.stringify(double.serviceAccountKey(PROJECT)));
    await double.insertDisk(PROJECT, { zone: ZONE }, { name: "hosted-disk", sizeGb: "5", type: `projects/${PROJECT}/zones/${ZONE}/diskTypes/pd-ssd` });
    config = { credentialsFile, computeEndpoint: double.endpoint };
    host = new PluginHost({ plugins: [nodePluginCommand(MAIN)] });
    await host.start();
  }, 60_000);

  afterAll(async () => {
    await host.close();
    await double.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("announces the block store with its capabilities and configuration keys", () => {
    const plugin = host.plugins().find((p) => p.descriptor.kind === "block-store" && p.descriptor.name === "stowage.io/gcp");
    expect(plugin?.descriptor.capabilities).toEqual(["LIST_SNAPSHOTS", "DELETE_VOLUME"]);
    expect(plugin?.descriptor.configKeys.map((k) => k.name)).toEqual(
      expect.arrayContaining(["project", "volumeProject", "snapshotLocation", "snapshotType", "credentialsFile", "labels", "computeEndpoint", "operationTimeout"]),
    );
  });

  it("rejects a bad snapshotType across the process boundary", async () => {
    const store = host.blockStore("stowage.io/gcp", { instance: "bad" });
    try {
      await store.init({ ...config, snapshotType: "FAST" });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((error as StowageError).metadata.key).toBe("snapshotType");
    }
  });

  it("stops following an operation when the call's deadline passes", async () => {
    const store = host.blockStore("stowage.io/gcp");
    await store.init(config);
    const snapshot = await store.createSnapshot({ volumeId: "hosted-disk", zone: ZONE, tags: { "velero.io/backup": "b1" } });
    for (let i = 0; i < 20 && (await store.getSnapshot(snapshot.snapshotId)).state !== "ready"; i++);
    double.setOperationPolls(Number.POSITIVE_INFINITY);
    try {
      await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: ZONE }, { timeoutMs: 1500 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.DeadlineExceeded);
    }
    const waits = (): number => double.requests.filter((r) => r.path.endsWith("/wait")).length;
    const before = waits();
    await sleep(1500);
    expect(waits()).toBe(before);
    double.setOperationPolls(1);
  }, 30_000);
});
