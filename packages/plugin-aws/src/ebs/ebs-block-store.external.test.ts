import { CreateVolumeCommand, DescribeVolumesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { Code, Reason } from "@stowage/sdk";
import { startMoto, type MotoServer } from "@stowage/test-servers";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EbsBlockStore, SOURCE_VOLUME_TAGS } from "./ebs-block-store.js";
import { rejection } from "@stowage/sdk/testing";

let moto: MotoServer;
let ec2: EC2Client;
let store: EbsBlockStore;

async function createVolume(input: { type: "gp3" | "gp2" | "io2"; iops?: number; throughput?: number; tags?: Record<string, string> }): Promise<string> {
  const out = await ec2.send(
    new CreateVolumeCommand({
      AvailabilityZone: `${moto.region}a`,
      Size: 8,
      VolumeType: input.type,
      ...(input.iops === undefined ? {} : { Iops: input.iops }),
      ...(input.throughput === undefined ? {} : { Throughput: input.throughput }),
      TagSpecifications: [{ ResourceType: "volume", Tags: Object.entries({ test: "ebs", ...input.tags }).map(([Key, Value]) => ({ Key, Value })) }],
    }),
  );
  return out.VolumeId ?? "";
}

beforeAll(async () => {
  moto = await startMoto();
  process.env.AWS_ACCESS_KEY_ID = moto.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = moto.secretAccessKey;
  ec2 = new EC2Client({ region: moto.region, endpoint: moto.endpoint, credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey } });
  store = new EbsBlockStore();
  await store.init({ region: moto.region, ec2Endpoint: moto.endpoint });
}, 60_000);

afterAll(async () => {
  store.close();
  ec2.destroy();
  await moto.stop();
});

describe("EBS against moto", () => {
  it("rejects unknown keys and a missing region", async () => {
    const unknown = await rejection(new EbsBlockStore().init({ region: "us-east-1", endpoint: "x" }));
    expect(unknown.reason).toBe(Reason.InvalidConfig);
    expect(unknown.metadata.valid_keys).toContain("ec2Endpoint");
    const missing = await rejection(new EbsBlockStore().init({}));
    expect(missing.reason).toBe(Reason.InvalidConfig);
  });

  it("snapshots with the volume's tags merged with the caller's (caller wins)", async () => {
    const volumeId = await createVolume({ type: "gp2", tags: { team: "storage", env: "volume" } });
    const created = await store.createSnapshot({ volumeId, tags: { env: "caller", backup: "b1" } });
    expect(created.snapshotId).toMatch(/^snap-/);
    expect(created.volumeId).toBe(volumeId);
    const got = await store.getSnapshot(created.snapshotId);
    expect(got.state).toBe("ready");
    expect(got.tags).toMatchObject({ team: "storage", env: "caller", backup: "b1" });
    expect(got.sizeBytes).toBe(8 * 1024 ** 3);
    // moto sets up its EC2 backend on the first call, which takes seconds on a busy machine.
  }, 30_000);

  it("restores gp3 volumes with their IOPS and throughput", async () => {
    const volumeId = await createVolume({ type: "gp3", iops: 4000, throughput: 250 });
    const snapshot = await store.createSnapshot({ volumeId });
    expect(snapshot.tags[SOURCE_VOLUME_TAGS.type]).toBe("gp3");
    const restored = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: `${moto.region}b`, tags: { restored: "yes" } });
    const out = await ec2.send(new DescribeVolumesCommand({ VolumeIds: [restored] }));
    const volume = out.Volumes?.[0];
    expect(volume?.VolumeType).toBe("gp3");
    expect(volume?.Iops).toBe(4000);
    expect(volume?.Throughput).toBe(250);
    expect(volume?.AvailabilityZone).toBe(`${moto.region}b`);
    expect(volume?.Tags).toContainEqual({ Key: "restored", Value: "yes" });
    const info = await store.getVolumeInfo({ volumeId: restored });
    expect(info).toMatchObject({ volumeId: restored, volumeType: "gp3", iops: 4000, zone: `${moto.region}b` });
  });

  it("uses the caller's type and IOPS, and the source zone when none is given", async () => {
    const volumeId = await createVolume({ type: "gp3", iops: 3000, throughput: 125 });
    const snapshot = await store.createSnapshot({ volumeId });
    const restored = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "io2", iops: 5000 });
    const info = await store.getVolumeInfo({ volumeId: restored });
    expect(info).toMatchObject({ volumeType: "io2", iops: 5000, zone: `${moto.region}a` });
  });

  it("treats missing snapshots and volumes as the contract says", async () => {
    const missing = await rejection(store.getSnapshot("snap-0123456789abcdef0"));
    expect(missing.reason).toBe(Reason.SnapshotNotFound);
    await store.deleteSnapshot("snap-0123456789abcdef0");
    const volume = await rejection(store.getVolumeInfo({ volumeId: "vol-0123456789abcdef0" }));
    expect(volume.reason).toBe(Reason.VolumeNotFound);
    const snap = await rejection(store.createSnapshot({ volumeId: "vol-0123456789abcdef0" }));
    expect(snap.reason).toBe(Reason.VolumeNotFound);
    await store.deleteVolume({ volumeId: "vol-0123456789abcdef0" });
  });

  it("deletes snapshots and volumes idempotently", async () => {
    const volumeId = await createVolume({ type: "gp2" });
    const snapshot = await store.createSnapshot({ volumeId });
    await store.deleteSnapshot(snapshot.snapshotId);
    await store.deleteSnapshot(snapshot.snapshotId);
    expect((await rejection(store.getSnapshot(snapshot.snapshotId))).code).toBe(Code.NotFound);
    await store.deleteVolume({ volumeId });
    await store.deleteVolume({ volumeId });
  });

  it("lists snapshots by tag", async () => {
    const volumeId = await createVolume({ type: "gp2" });
    const a = await store.createSnapshot({ volumeId, tags: { "list-test": "yes" } });
    await store.createSnapshot({ volumeId, tags: { "list-test": "no" } });
    const page = await store.listSnapshots({ tagFilter: { "list-test": "yes" } });
    expect(page.snapshots.map((s) => s.snapshotId)).toEqual([a.snapshotId]);
  });
});

describe("snapshot progress (stub EC2 that reports pending)", () => {
  let server: Server;
  let calls = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const params = new URLSearchParams(body);
        if (params.get("Action") !== "DescribeSnapshots") {
          res.writeHead(400).end();
          return;
        }
        calls += 1;
        const state = calls === 1 ? "pending" : calls === 2 ? "pending" : calls === 3 ? "completed" : "error";
        const progress = calls === 1 ? "" : calls === 2 ? "45%" : "100%";
        res.writeHead(200, { "content-type": "text/xml" }).end(
          `<?xml version="1.0" encoding="UTF-8"?>
<DescribeSnapshotsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <snapshotSet><item>
    <snapshotId>snap-1234</snapshotId><volumeId>vol-1234</volumeId><status>${state}</status>
    <startTime>2026-01-01T00:00:00.000Z</startTime><progress>${progress}</progress><volumeSize>10</volumeSize>
    ${state === "error" ? "<statusMessage>disk on fire</statusMessage>" : ""}
    <tagSet><item><key>k</key><value>v</value></item></tagSet>
  </item></snapshotSet>
</DescribeSnapshotsResponse>`,
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("maps pending, progress, completed and error", async () => {
    const stub = new EbsBlockStore();
    const { port } = server.address() as AddressInfo;
    await stub.init({ region: "us-east-1", ec2Endpoint: `http://127.0.0.1:${port}` });
    const first = await stub.getSnapshot("snap-1234");
    expect(first.state).toBe("pending");
    expect(first.progressPercent).toBeUndefined();
    const second = await stub.getSnapshot("snap-1234");
    expect(second).toMatchObject({ state: "pending", progressPercent: 45, volumeId: "vol-1234", sizeBytes: 10 * 1024 ** 3, tags: { k: "v" } });
    const third = await stub.getSnapshot("snap-1234");
    expect(third.state).toBe("ready");
    expect(third.progressPercent).toBeUndefined();
    const fourth = await stub.getSnapshot("snap-1234");
    expect(fourth).toMatchObject({ state: "failed", message: "disk on fire" });
    stub.close();
  });
});
