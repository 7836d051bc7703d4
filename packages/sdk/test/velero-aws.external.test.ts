/**
 * Proof with a real peer: the unmodified Go velero-plugin-for-aws (v1.14.2), loaded through
 * PluginHost with `protocol: "velero"`, storing objects in MinIO and snapshotting EBS volumes in moto
 * (reached through the AWS SDK's `AWS_ENDPOINT_URL_EC2`). Install it with
 * `bash scripts/install-velero-plugins` (.ci/run does); the test fails when it is missing.
 */
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { startMinio, startMoto, type MinioServer, type MotoServer } from "@stowage/test-servers";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, StowageError } from "../src/errors.js";
import { PluginHost } from "../src/host.js";
import type { ListObjectsPage, ObjectStore } from "../src/types.js";
import { capturingLogger } from "./support/host.js";

const AWS_PLUGIN = fileURLToPath(new URL("../../../.tools/bin/velero-plugin-for-aws", import.meta.url));
const BUCKET = "velero-interop";

async function requireBinary(): Promise<void> {
  try {
    await access(AWS_PLUGIN, constants.X_OK);
  } catch {
    throw new Error(`${AWS_PLUGIN} is missing: run \`bash scripts/install-velero-plugins\` (go install github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@v1.14.2)`);
  }
}

async function listAll(store: ObjectStore, input: Parameters<ObjectStore["listObjects"]>[0]): Promise<ListObjectsPage[]> {
  const out: ListObjectsPage[] = [];
  for await (const page of store.listObjects(input)) out.push(page);
  return out;
}

describe("PluginHost with velero-plugin-for-aws against MinIO", () => {
  let minio: MinioServer;
  let host: PluginHost;
  let store: ObjectStore;
  let dir: string;
  const logs = capturingLogger();

  beforeAll(async () => {
    await requireBinary();
    minio = await startMinio({ region: "minio" });
    const url = new URL(minio.endpoint);
    const admin = new MinioClient({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: "minio" });
    await admin.makeBucket(BUCKET, "minio");
    dir = await mkdtemp(join(tmpdir(), "velero-aws-"));
    const credentials = join(dir, "credentials");
    await writeFile(credentials, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
    host = new PluginHost({
      plugins: [{ command: AWS_PLUGIN, args: ["--log-level=debug", "--features=", "--uploader-type=kopia"], env: { AWS_SHARED_CREDENTIALS_FILE: credentials }, protocol: "velero" }],
      logger: logs.logger,
    });
    await host.start();
    store = host.objectStore("velero.io/aws");
    await store.init({ region: "minio", s3ForcePathStyle: "true", s3Url: minio.endpoint, bucket: BUCKET, prefix: "" });
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    await minio?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("lists the Go binary's plugins through generated.PluginLister", () => {
    const names = host.plugins().map((p) => `${p.descriptor.kind}:${p.descriptor.name}`);
    expect(names).toContain("object-store:velero.io/aws");
    expect(names).toContain("block-store:velero.io/aws");
  });

  it("puts, checks, gets, lists and deletes objects", async () => {
    const body = randomBytes(5 * 1024 * 1024 + 123);
    await store.putObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz", body: Readable.from([body]) });
    await store.putObject({ bucket: BUCKET, key: "backups/b1/velero-backup.json", body: Readable.from([Buffer.from("{}")]) });
    await store.putObject({ bucket: BUCKET, key: "backups/b2/velero-backup.json", body: Readable.from([Buffer.from("{}")]) });
    await store.putObject({ bucket: BUCKET, key: "backups/empty", body: Readable.from([]) });

    expect(await store.headObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz" })).toMatchObject({ key: "backups/b1/b1.tar.gz" });
    expect(await store.headObject({ bucket: BUCKET, key: "backups/none" })).toBeUndefined();

    const got = await store.getObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz" });
    expect((await buffer(got.body)).equals(body)).toBe(true);
    expect((await buffer((await store.getObject({ bucket: BUCKET, key: "backups/empty" })).body)).length).toBe(0);

    const level = await listAll(store, { bucket: BUCKET, prefix: "backups/", delimiter: "/" });
    expect(level.flatMap((p) => p.commonPrefixes)).toEqual(["backups/b1/", "backups/b2/"]);
    expect(level.flatMap((p) => p.objects.map((o) => o.key))).toEqual(["backups/empty"]);
    const flat = await listAll(store, { bucket: BUCKET, prefix: "backups/b1/" });
    expect(flat.flatMap((p) => p.objects.map((o) => o.key))).toEqual(["backups/b1/b1.tar.gz", "backups/b1/velero-backup.json"]);

    const signed = await store.createSignedUrl({ bucket: BUCKET, key: "backups/b1/velero-backup.json", ttlSeconds: 600 });
    const res = await fetch(signed.url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("{}");

    for (const key of ["backups/b1/b1.tar.gz", "backups/b1/velero-backup.json", "backups/b2/velero-backup.json", "backups/empty"]) {
      await store.deleteObject({ bucket: BUCKET, key });
    }
    expect(await store.headObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz" })).toBeUndefined();
  });

  it("maps the Go plugin's errors: a missing key is NOT_FOUND with the Go origin in metadata", async () => {
    const missing = await store.getObject({ bucket: BUCKET, key: "backups/missing" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StowageError);
    expect((missing as StowageError).code).toBe(Code.NotFound);
    // The Go plugin attaches a generated.Stack detail: its origin lands in metadata.
    expect((missing as StowageError).metadata.file).toMatch(/velero-plugin-for-aws\/object_store\.go$/);
    expect((missing as StowageError).metadata.function).toContain("GetObject");
    // Its hclog-shaped stderr is parsed and forwarded.
    expect(logs.lines.some((l) => l.msg === "Checking if object exists" && l.plugin === "velero-plugin-for-aws")).toBe(true);
    // Deleting a key that never existed is success, as in our contract (S3 semantics).
    await store.deleteObject({ bucket: BUCKET, key: "backups/never-existed" });
    // A failure other than "missing" keeps the Go plugin's message, code UNKNOWN.
    const noBucket = await store.getObject({ bucket: "no-such-bucket", key: "k" }).catch((e: unknown) => e);
    expect(noBucket).toBeInstanceOf(StowageError);
  });
});

/** Creates an EBS volume in moto with a raw EC2 query call (moto does not check signatures). */
async function createMotoVolume(moto: MotoServer, zone: string): Promise<string> {
  const body = new URLSearchParams({ Action: "CreateVolume", Version: "2016-11-15", Size: "1", AvailabilityZone: zone, VolumeType: "io1", Iops: "3000" });
  const res = await fetch(moto.endpoint, {
    method: "POST",
    body,
    headers: { authorization: `AWS4-HMAC-SHA256 Credential=${moto.accessKeyId}/20250101/${moto.region}/ec2/aws4_request, SignedHeaders=host, Signature=0` },
  });
  const id = /<volumeId>(.*?)<\/volumeId>/.exec(await res.text())?.[1];
  if (res.status !== 200 || id === undefined) throw new Error(`moto CreateVolume failed with HTTP ${String(res.status)}`);
  return id;
}

describe("PluginHost with velero-plugin-for-aws's VolumeSnapshotter against moto (EC2)", () => {
  let moto: MotoServer;
  let host: PluginHost;
  let dir: string;

  beforeAll(async () => {
    await requireBinary();
    moto = await startMoto();
    dir = await mkdtemp(join(tmpdir(), "velero-aws-ec2-"));
    const credentials = join(dir, "credentials");
    await writeFile(credentials, `[default]\naws_access_key_id=${moto.accessKeyId}\naws_secret_access_key=${moto.secretAccessKey}\n`);
    host = new PluginHost({
      plugins: [{ command: AWS_PLUGIN, env: { AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ENDPOINT_URL_EC2: moto.endpoint }, protocol: "velero" }],
      logger: capturingLogger().logger,
    });
    await host.start();
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    await moto?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("reads volume info, snapshots, restores, maps PVs and deletes the snapshot", async () => {
    const zone = `${moto.region}a`;
    const volumeId = await createMotoVolume(moto, zone);
    const blocks = host.blockStore("velero.io/aws");
    await blocks.init({ region: moto.region });
    const info = await blocks.getVolumeInfo({ volumeId, zone });
    expect(info).toMatchObject({ volumeId, volumeType: "io1", iops: 3000, zone });
    const snapshot = await blocks.createSnapshot({ volumeId, zone, tags: { "velero.io/backup": "b1", "velero.io/pv": "pv-1" } });
    expect(snapshot.snapshotId).toMatch(/^snap-/);
    expect(snapshot.state).toBe("pending");
    const restored = await blocks.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "io1", zone, iops: 3000 });
    expect(restored).toMatch(/^vol-/);
    const pv = { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-1" }, spec: { awsElasticBlockStore: { volumeID: `aws://${zone}/${volumeId}` } } };
    expect(await blocks.getVolumeId(pv)).toBe(volumeId);
    const moved = (await blocks.setVolumeId(pv, restored)) as typeof pv;
    expect(moved.spec.awsElasticBlockStore.volumeID).toContain(restored);
    const foreign = { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-2" }, spec: { hostPath: { path: "/x" } } };
    expect(await blocks.getVolumeId(foreign)).toBe("");
    await blocks.deleteSnapshot(snapshot.snapshotId);
    const e = await blocks.getSnapshot(snapshot.snapshotId).catch((error: unknown) => error);
    expect((e as StowageError).code).toBe(Code.Unimplemented);
  });
});
