/**
 * Velero's own plugin client code (github.com/vmware-tanzu/velero/pkg/plugin/clientmgmt, pinned in
 * interop/go.mod) drives Stowage's plugin executables: the Go velero-harness discovers them in a
 * plugin directory with Velero's process registry, gets restartable clients from Velero's manager
 * and runs every ObjectStore call against MinIO (plugin-aws) and a temp dir (plugin-local), and every
 * VolumeSnapshotter call on plugin-local. The same harness runs Velero's Go velero-plugin-for-aws as
 * a baseline. `bash scripts/install-velero-plugins` builds both Go programs (.ci/run does); the tests
 * fail, naming that command, when they are missing.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalVolume, localVolumePath, type LocalVolume } from "@stowage/plugin-local";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  OBJECT_STORE_STEPS,
  SNAPSHOTTER_STEPS,
  STOWAGE_AWS_MAIN,
  STOWAGE_LOCAL_MAIN,
  VELERO_AWS_PLUGIN,
  failures,
  pluginDir,
  requireExecutable,
  requireHarness,
  runHarness,
  stepOf,
  stepsOf,
  type HarnessRun,
  type Report,
} from "./support/harness.js";

const STOWAGE_BUCKET = "stowage-harness";
const VELERO_BUCKET = "velero-harness";
const LOCAL_BUCKET = "local-harness";
const VOLUME_BYTES = 3 * 1024 * 1024 + 4096;

interface Listing {
  readonly ObjectStore?: { name: string; command: string }[];
  readonly VolumeSnapshotter?: { name: string; command: string }[];
}

/** Keys left in a MinIO bucket, read without any plugin. */
async function minioKeys(admin: MinioClient, bucket: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of admin.listObjectsV2(bucket, "", true) as AsyncIterable<{ name?: string }>) if (item.name !== undefined) keys.push(item.name);
  return keys;
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Asserts the object round trip every ObjectStore must pass through Velero's client. */
function expectObjectRoundTrip(report: Report, plugin: string, prefix: string): void {
  const steps = stepsOf(report, plugin, "ObjectStore");
  expect(steps.map((s) => s.name)).toEqual([...OBJECT_STORE_STEPS]);
  expect(steps.filter((s) => !s.ok).map((s) => `${s.name}: ${s.error ?? ""}`)).toEqual([]);

  expect(stepOf(report, plugin, "ObjectStore", "put").detail).toEqual({ keys: 3, sizes: [5 * 1024 * 1024 + 123, 29, 29] });
  const get = stepOf(report, plugin, "ObjectStore", "get").detail as { key: string; bytes: number; sha256: string }[];
  expect(get.map((g) => g.bytes)).toEqual([5 * 1024 * 1024 + 123, 29, 29]);
  const root = new RegExp(`^${prefix}velero-harness-[0-9a-f]{8}/backups/`);
  for (const g of get) expect(g.key).toMatch(root);
  expect(stepOf(report, plugin, "ObjectStore", "exists").detail).toMatchObject({ exists: true });
  expect(stepOf(report, plugin, "ObjectStore", "exists-missing").detail).toMatchObject({ exists: false });

  const prefixes = stepOf(report, plugin, "ObjectStore", "list-common-prefixes").detail as { prefix: string; prefixes: string[] };
  expect([...prefixes.prefixes].sort()).toEqual([`${prefixes.prefix}b1/`, `${prefixes.prefix}b2/`]);
  const listed = stepOf(report, plugin, "ObjectStore", "list-objects").detail as { prefix: string; keys: string[] };
  expect([...listed.keys].sort()).toEqual([`${listed.prefix}b1/b1.tar.gz`, `${listed.prefix}b1/velero-backup.json`, `${listed.prefix}b2/velero-backup.json`]);
  expect(stepOf(report, plugin, "ObjectStore", "signed-url").detail).toMatchObject({ status: 200 });
  expect(stepOf(report, plugin, "ObjectStore", "exists-after-delete").detail).toEqual({ remaining: [] });
  expect(stepOf(report, plugin, "ObjectStore", "list-after-delete").detail).toEqual({ keys: [] });
}

describe("Velero's clientmgmt (Go) drives Stowage's plugin executables", () => {
  let minio: MinioServer;
  let admin: MinioClient;
  let dir: string;
  let plugins: string;
  let localRoot: string;
  let blockRoot: string;
  let volume: LocalVolume;
  let run: HarnessRun;
  let report: Report;

  beforeAll(async () => {
    await requireHarness();
    minio = await startMinio();
    const url = new URL(minio.endpoint);
    admin = new MinioClient({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: minio.region });
    await admin.makeBucket(STOWAGE_BUCKET, minio.region);
    dir = await mkdtemp(join(tmpdir(), "stowage-velero-harness-"));
    const credentials = join(dir, "cloud");
    await writeFile(credentials, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
    // Velero's plugin directory: every executable in it is started and asked for its plugins.
    plugins = await pluginDir(join(dir, "plugins"), { "stowage-plugin-aws": STOWAGE_AWS_MAIN, "stowage-plugin-local": STOWAGE_LOCAL_MAIN });
    localRoot = join(dir, "objects");
    await mkdir(localRoot);
    blockRoot = join(dir, "blocks");
    volume = await createLocalVolume(blockRoot, { volumeId: "vol-source", sizeBytes: VOLUME_BYTES, volumeType: "ssd", iops: 750, zone: "zone-a", fill: Uint8Array.from("stowage-velero-harness", (c) => c.charCodeAt(0)) });
    run = await runHarness([
      `--plugin-dir=${plugins}`,
      "--log-level=debug",
      `--object-store=stowage.io/aws=${JSON.stringify({ bucket: STOWAGE_BUCKET, prefix: "velero", s3Url: minio.endpoint, region: minio.region, s3ForcePathStyle: "true", credentialsFile: credentials })}`,
      `--object-store=stowage.io/local=${JSON.stringify({ bucket: LOCAL_BUCKET, prefix: "", root: localRoot, createBuckets: "true" })}`,
      "--volume-snapshotter=stowage.io/local",
      `--volume-snapshotter-config=${JSON.stringify({ root: blockRoot })}`,
      `--volume-id=${volume.volumeId}`,
      "--volume-az=zone-a",
      "--volume-type=ssd",
      "--volume-iops=750",
    ]);
    if (run.report === undefined) throw new Error(`the harness printed no report (exit ${String(run.code)}): ${run.stderr.slice(-4000)}`);
    report = run.report;
  }, 180_000);

  afterAll(async () => {
    await minio?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("passes every step and exits 0, built against the pinned Velero release", () => {
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(run.code).toBe(0);
    expect(report.veleroVersion).toMatch(/^v1\.18\.\d+$/);
  });

  it("discovers both executables with Velero's registry; the reported commands are the plugin-dir paths Velero re-executes", () => {
    const discover = report.steps[0];
    expect(discover?.name).toBe("discover");
    const listing = discover?.detail as Listing;
    const byName = (entries: { name: string; command: string }[] | undefined) => Object.fromEntries((entries ?? []).map((e) => [e.name, e.command]));
    expect(byName(listing.ObjectStore)).toEqual({ "stowage.io/aws": join(plugins, "stowage-plugin-aws"), "stowage.io/local": join(plugins, "stowage-plugin-local") });
    expect(byName(listing.VolumeSnapshotter)).toEqual({ "stowage.io/aws": join(plugins, "stowage-plugin-aws"), "stowage.io/local": join(plugins, "stowage-plugin-local") });
    // Velero's registry logs each registration; the manager then starts the reported command.
    expect(run.stderr).toContain(`command=${join(plugins, "stowage-plugin-local")} kind=VolumeSnapshotter name=stowage.io/local`);
  });

  it("plugin-aws against MinIO: put / exists / get / list prefixes / list objects / signed URL / delete", async () => {
    expectObjectRoundTrip(report, "stowage.io/aws", "velero/");
    // The signed URL points at MinIO itself, and nothing is left in the bucket (checked without the plugin).
    expect(stepOf(report, "stowage.io/aws", "ObjectStore", "signed-url").detail).toMatchObject({ host: new URL(minio.endpoint).host });
    expect(await minioKeys(admin, STOWAGE_BUCKET)).toEqual([]);
  });

  it("plugin-local against a directory: the same round trip, signed URL served by the plugin", async () => {
    expectObjectRoundTrip(report, "stowage.io/local", "");
    expect(stepOf(report, "stowage.io/local", "ObjectStore", "signed-url").detail).toMatchObject({ scheme: "http", host: expect.stringMatching(/^127\.0\.0\.1:\d+$/) as unknown });
    // Deletes removed the run's directories too (checked on disk, without the plugin).
    expect((await readdir(join(localRoot, LOCAL_BUCKET))).filter((name) => name.startsWith("velero-harness-"))).toEqual([]);
    expect(await readdir(localRoot)).toEqual([LOCAL_BUCKET]);
  });

  it("an empty object: Velero's client sends no PutObject message, so the plugin refuses it and stores nothing", () => {
    for (const plugin of ["stowage.io/aws", "stowage.io/local"]) {
      const detail = stepOf(report, plugin, "ObjectStore", "put-empty").detail as { refused: boolean; stored: boolean; refusal: string };
      expect(detail.refused).toBe(true);
      expect(detail.stored).toBe(false);
      expect(detail.refusal).toMatch(/code = Unknown desc = \[invalid_argument\] PutObject carried no message/);
    }
  });

  it("plugin-local's VolumeSnapshotter: PV IDs, volume info, snapshot, restore, delete snapshot", async () => {
    const steps = stepsOf(report, "stowage.io/local", "VolumeSnapshotter");
    expect(steps.map((s) => s.name)).toEqual([...SNAPSHOTTER_STEPS]);
    expect(steps.filter((s) => !s.ok).map((s) => `${s.name}: ${s.error ?? ""}`)).toEqual([]);
    expect(stepOf(report, "stowage.io/local", "VolumeSnapshotter", "get-volume-id").detail).toEqual({ volumeId: "vol-source" });
    expect(stepOf(report, "stowage.io/local", "VolumeSnapshotter", "get-volume-id-foreign").detail).toEqual({ volumeId: "" });
    const set = stepOf(report, "stowage.io/local", "VolumeSnapshotter", "set-volume-id").detail as { volumeId: string; pv: { spec: { csi: { driver: string; volumeHandle: string } } } };
    expect(set.pv.spec.csi).toEqual({ driver: "local.stowage.io", volumeHandle: set.volumeId });
    expect(stepOf(report, "stowage.io/local", "VolumeSnapshotter", "get-volume-info").detail).toEqual({ volumeId: "vol-source", volumeType: "ssd", iops: 750 });

    const snapshotId = (stepOf(report, "stowage.io/local", "VolumeSnapshotter", "create-snapshot").detail as { snapshotId: string }).snapshotId;
    expect(snapshotId).not.toBe("");
    const restored = (stepOf(report, "stowage.io/local", "VolumeSnapshotter", "create-volume-from-snapshot").detail as { volumeId: string }).volumeId;
    expect(restored).not.toBe("vol-source");
    expect(stepOf(report, "stowage.io/local", "VolumeSnapshotter", "get-volume-info-restored").detail).toEqual({ volumeId: restored, volumeType: "ssd", iops: 750 });
    // The restored volume holds the source's bytes; the deleted snapshot left no file behind.
    const source = await readFile(volume.path);
    const copy = await readFile(localVolumePath(blockRoot, restored));
    expect(copy.length).toBe(VOLUME_BYTES);
    expect(sha256(copy)).toBe(sha256(source));
    expect((await readdir(join(blockRoot, "snapshots"))).filter((f) => f.startsWith(snapshotId))).toEqual([]);
  });
});

describe("the same harness against Velero's Go velero-plugin-for-aws (baseline)", () => {
  let minio: MinioServer;
  let dir: string;
  let run: HarnessRun;

  beforeAll(async () => {
    await requireHarness();
    await requireExecutable(VELERO_AWS_PLUGIN, "run `bash scripts/install-velero-plugins`");
    minio = await startMinio();
    const url = new URL(minio.endpoint);
    const admin = new MinioClient({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: minio.region });
    await admin.makeBucket(VELERO_BUCKET, minio.region);
    dir = await mkdtemp(join(tmpdir(), "stowage-velero-harness-go-"));
    const credentials = join(dir, "cloud");
    await writeFile(credentials, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
    const plugins = await pluginDir(join(dir, "plugins"), { "velero-plugin-for-aws": VELERO_AWS_PLUGIN });
    run = await runHarness([
      `--plugin-dir=${plugins}`,
      `--object-store=velero.io/aws=${JSON.stringify({ bucket: VELERO_BUCKET, prefix: "velero", s3Url: minio.endpoint, region: minio.region, s3ForcePathStyle: "true", credentialsFile: credentials })}`,
    ]);
  }, 180_000);

  afterAll(async () => {
    await minio?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("meets the same expectations, and refuses the empty put the same way (EOF before the first message)", () => {
    const report = run.report;
    if (report === undefined) throw new Error(`no report: ${run.stderr.slice(-4000)}`);
    expect(failures(report)).toEqual([]);
    expect(run.code).toBe(0);
    expectObjectRoundTrip(report, "velero.io/aws", "velero/");
    const empty = stepOf(report, "velero.io/aws", "ObjectStore", "put-empty").detail as { refused: boolean; stored: boolean; refusal: string };
    expect(empty).toMatchObject({ refused: true, stored: false });
    expect(empty.refusal).toContain("EOF");
  });
});

describe("the harness's own failure reporting", () => {
  let dir: string;

  beforeAll(async () => {
    await requireHarness();
    dir = await mkdtemp(join(tmpdir(), "stowage-velero-harness-fail-"));
  });

  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("a plugin call that fails makes its step fail and the exit status 1", async () => {
    const plugins = await pluginDir(join(dir, "plugins"), { "stowage-plugin-local": STOWAGE_LOCAL_MAIN });
    // No createBuckets and no bucket directory: every put fails in the plugin.
    await mkdir(join(dir, "objects"));
    const failing = await runHarness([`--plugin-dir=${plugins}`, `--object-store=stowage.io/local=${JSON.stringify({ bucket: "missing", root: join(dir, "objects") })}`]);
    expect(failing.code).toBe(1);
    expect(failing.report?.ok).toBe(false);
    const put = stepOf(failing.report!, "stowage.io/local", "ObjectStore", "put");
    expect(put.ok).toBe(false);
    // The plugin ends the stream at the first message; Velero's client then gets io.EOF from its next
    // Send and returns that, not the plugin's status (Velero's own Go plugin servers behave the same).
    expect(put.error).toMatch(/^PutObject "velero-harness-[0-9a-f]{8}\/backups\/b1\/b1\.tar\.gz" \(5243003 bytes\): rpc error: code = Unknown desc = /);
    // Unary calls carry the plugin's own error text through Velero's client.
    const exists = stepOf(failing.report!, "stowage.io/local", "ObjectStore", "exists");
    expect(exists).toMatchObject({ ok: false, error: 'rpc error: code = Unknown desc = [not_found] bucket "missing" does not exist; create it or fix the "bucket" setting' });
  }, 120_000);

  it("a plugin the directory does not provide fails discovery; a usage error exits 2", async () => {
    const plugins = await pluginDir(join(dir, "only-local"), { "stowage-plugin-local": STOWAGE_LOCAL_MAIN });
    const absent = await runHarness([`--plugin-dir=${plugins}`, `--object-store=example.io/none=${JSON.stringify({ bucket: "b" })}`]);
    expect(absent.code).toBe(1);
    expect(absent.report?.steps[0]).toMatchObject({ name: "discover", ok: false, error: expect.stringContaining("ObjectStore example.io/none") as unknown });
    expect(stepsOf(absent.report!, "example.io/none", "ObjectStore")[0]).toMatchObject({ name: "get-object-store", ok: false });

    const usage = await runHarness([`--plugin-dir=${plugins}`, "--object-store=stowage.io/local={}"]);
    expect(usage.code).toBe(2);
    expect(usage.report).toBeUndefined();
    expect(usage.stderr).toContain('the config must hold "bucket"');
  }, 120_000);
});
