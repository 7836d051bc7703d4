import { Code, Reason, StowageError } from "@stowage/sdk";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ComputeDouble, type ComputeDoubleOptions } from "../../test/support/compute-double.js";
import { PdBlockStore, SOURCE_DISK_LABELS, parseDiskLocation, snapshotName } from "./pd-block-store.js";

const ZONE = "us-central1-a";
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-pd-"));
  // The Compute Engine client is large (its first instance parses a 12 MB protobuf description):
  // load it once before the tests' own time limits apply.
  const { DisksClient } = await import("@google-cloud/compute");
  await new DisksClient({ projectId: "warm-up" }).close();
}, 60_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function expectError(promise: Promise<unknown>, code: Code, reason?: string): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    const e = error as StowageError;
    expect({ code: e.code, reason: e.reason, message: e.message }).toMatchObject({ code, ...(reason === undefined ? {} : { reason }) });
    return e;
  }
  throw new Error("expected the call to fail");
}

interface Fixture {
  readonly double: ComputeDouble;
  readonly store: PdBlockStore;
  readonly config: Record<string, string>;
}

const fixtures: Fixture[] = [];
afterEach(async () => {
  for (const f of fixtures.splice(0)) {
    await f.store.close();
    await f.double.stop();
  }
});

async function setup(options: ComputeDoubleOptions = {}, extra: Record<string, string> = {}): Promise<Fixture> {
  const double = await ComputeDouble.start(options);
  const file = join(dir, `key-${String(fixtures.length)}-${String(Date.now())}.json`);
  await writeFile(file, JSON.stringify(double.serviceAccountKey("proj-one")));
  const config = { credentialsFile: file, computeEndpoint: double.endpoint, ...extra };
  const store = new PdBlockStore();
  const fixture = { double, store, config };
  fixtures.push(fixture);
  await store.init(config);
  return fixture;
}

async function seedDisk(double: ComputeDouble, name = "data-disk", type = "pd-ssd", project = "proj-one"): Promise<void> {
  await double.insertDisk(project, { zone: ZONE }, {
    name,
    sizeGb: "20",
    type: `projects/${project}/zones/${ZONE}/diskTypes/${type}`,
    labels: { app: "shop", "velero_io_backup": "from-disk" },
    description: JSON.stringify({ "kubernetes.io/created-for/pvc/name": "data", "velero.io/backup": "from-disk" }),
  });
}

async function untilReady(store: PdBlockStore, snapshotId: string): Promise<string[]> {
  const states: string[] = [];
  for (let i = 0; i < 20; i++) {
    const s = await store.getSnapshot(snapshotId);
    states.push(s.state);
    if (s.state !== "pending") return states;
  }
  throw new Error(`snapshot ${snapshotId} stayed pending: ${states.join(",")}`);
}

describe("parseDiskLocation and snapshotName", () => {
  it("tells zonal from regional disks the way GKE labels them", () => {
    expect(parseDiskLocation("us-central1-a")).toEqual({ scope: "zones", location: "us-central1-a", replicaZones: [] });
    expect(parseDiskLocation("europe-west4-b__europe-west4-c")).toEqual({ scope: "regions", location: "europe-west4", replicaZones: ["europe-west4-b", "europe-west4-c"] });
    expect(parseDiskLocation("us-east4")).toEqual({ scope: "regions", location: "us-east4", replicaZones: [] });
    expect(() => parseDiskLocation("")).toThrow(/zone of the disk is required/);
    expect(() => parseDiskLocation("us-central1-a__europe-west4-b")).toThrow(/one region/);
    expect(() => parseDiskLocation("Zone A")).toThrow(/neither/);
  });

  it("names snapshots <disk>-<uuid> within 63 characters, keeping the whole UUID", () => {
    expect(snapshotName("data")).toMatch(/^data-[0-9a-f-]{36}$/);
    const long = snapshotName(`d${"x".repeat(62)}`);
    expect(long.length).toBe(63);
    expect(long).toMatch(/^dx{25}-[0-9a-f-]{36}$/);
  });
});

describe("init", { timeout: 30_000 }, () => {
  it("rejects unknown keys, bad values and unusable credentials with INVALID_CONFIG", async () => {
    const { double, config } = await setup();
    const store = new PdBlockStore();
    const e = await expectError(store.init({ ...config, bogus: "1" }), Code.InvalidArgument, Reason.InvalidConfig);
    expect(e.metadata.valid_keys).toContain("snapshotLocation");
    await expectError(store.init({ ...config, snapshotType: "cold" }), Code.InvalidArgument, Reason.InvalidConfig);
    await expectError(store.init({ ...config, computeEndpoint: "ftp://x" }), Code.InvalidArgument, Reason.InvalidConfig);
    await expectError(store.init({ ...config, computeEndpoint: `${double.endpoint}/compute/v1` }), Code.InvalidArgument, Reason.InvalidConfig);
    await expectError(store.init({ ...config, labels: "Team=x" }), Code.InvalidArgument, Reason.InvalidConfig);
    await expectError(store.init({ ...config, volumeProject: "X" }), Code.InvalidArgument, Reason.InvalidConfig);
    await expectError(store.init({ ...config, credentialsFile: join(dir, "missing.json") }), Code.InvalidArgument, Reason.InvalidConfig);
    const notKey = join(dir, "not-a-key.json");
    await writeFile(notKey, JSON.stringify({ type: "something_else" }));
    const bad = await expectError(store.init({ ...config, credentialsFile: notKey }), Code.InvalidArgument, Reason.InvalidConfig);
    expect(bad.message).toContain("service_account");
    await expectError(store.getSnapshot("snap-1"), Code.FailedPrecondition, Reason.NotInitialized);
  });

  it("accepts snapshotType in any letter case", async () => {
    const { config } = await setup();
    const store = new PdBlockStore();
    await store.init({ ...config, snapshotType: "archive" });
    await store.close();
  });

  it("fails calls with UNAUTHENTICATED when Compute Engine refuses the key", async () => {
    const { double, config } = await setup();
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const key = { ...double.serviceAccountKey("proj-one"), private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
    const file = join(dir, "foreign-key.json");
    await writeFile(file, JSON.stringify(key));
    const store = new PdBlockStore();
    await store.init({ ...config, credentialsFile: file });
    await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE }), Code.Unauthenticated, Reason.AccessDenied);
    await store.close();
  });
});

describe("PdBlockStore against the Compute Engine double", { timeout: 30_000 }, () => {
  it("snapshots a zonal disk, reports it until READY, restores it with the same type, and cleans up", async () => {
    const { double, store } = await setup({}, { snapshotType: "ARCHIVE", snapshotLocation: "us-central1", labels: "team=backup" });
    await seedDisk(double);
    const tags = { "velero.io/backup": "nightly-1", "velero.io/pv": "pvc-123", Owner: "Ops Team" };
    const created = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE, tags });
    expect(created).toMatchObject({ volumeId: "data-disk", state: "pending", zone: ZONE, sizeBytes: 20 * 1024 ** 3 });
    expect(created.snapshotId).toMatch(/^data-disk-[0-9a-f-]{36}$/);
    // Caller tags win over the disk description's, and are kept exactly.
    expect(created.tags).toEqual({ "kubernetes.io/created-for/pvc/name": "data", ...tags });
    const stored = double.snapshot("proj-one", created.snapshotId);
    expect(stored).toMatchObject({
      snapshotType: "ARCHIVE",
      storageLocations: ["us-central1"],
      labels: { app: "shop", team: "backup", velero_io_backup: "nightly-1", velero_io_pv: "pvc-123", owner: "ops_team", [SOURCE_DISK_LABELS.type]: "pd-ssd" },
    });
    const states = await untilReady(store, created.snapshotId);
    expect(states.at(-1)).toBe("ready");
    expect(states.slice(0, -1).every((s) => s === "pending")).toBe(true);
    // The snapshot was created through the global snapshots API, followed with the global operation.
    expect(double.requests.some((r) => r.method === "POST" && r.path === "/compute/v1/projects/proj-one/global/snapshots" && typeof r.query.requestId === "string")).toBe(true);

    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, zone: ZONE, tags: { "velero.io/restore": "r1" } });
    expect(volumeId).toMatch(/^restore-[0-9a-f-]{36}$/);
    expect(double.requests.some((r) => r.method === "POST" && r.path.startsWith(`/compute/v1/projects/proj-one/zones/${ZONE}/operations/`) && r.path.endsWith("/wait"))).toBe(true);
    const info = await store.getVolumeInfo({ volumeId, zone: ZONE });
    expect(info).toEqual({ volumeId, volumeType: "pd-ssd", iops: undefined, zone: ZONE, sizeBytes: 20 * 1024 ** 3 });
    const restored = double.disk("proj-one", `zones/${ZONE}`, volumeId);
    expect(restored?.labels).toMatchObject({ velero_io_restore: "r1", team: "backup" });
    expect(restored?.labels).not.toHaveProperty(SOURCE_DISK_LABELS.type);
    expect(JSON.parse(String(restored?.description))).toMatchObject({ "velero.io/restore": "r1", "velero.io/backup": "nightly-1" });

    await store.deleteVolume({ volumeId, zone: ZONE });
    expect(double.disk("proj-one", `zones/${ZONE}`, volumeId)).toBeUndefined();
    await store.deleteVolume({ volumeId, zone: ZONE });

    await store.deleteSnapshot(created.snapshotId);
    expect(double.snapshot("proj-one", created.snapshotId)).toBeUndefined();
    await expectError(store.getSnapshot(created.snapshotId), Code.NotFound, Reason.SnapshotNotFound);
    await store.deleteSnapshot(created.snapshotId);
  });

  it("restores with the requested type and provisioned IOPS, and refuses IOPS for types without them", async () => {
    const { double, store } = await setup();
    await seedDisk(double, "fast-disk", "hyperdisk-balanced");
    const created = await store.createSnapshot({ volumeId: "fast-disk", zone: ZONE });
    expect(double.snapshot("proj-one", created.snapshotId)?.labels).toMatchObject({ [SOURCE_DISK_LABELS.iops]: "3000", [SOURCE_DISK_LABELS.throughput]: "140" });
    await untilReady(store, created.snapshotId);
    const same = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, zone: ZONE });
    expect(await store.getVolumeInfo({ volumeId: same, zone: ZONE })).toMatchObject({ volumeType: "hyperdisk-balanced", iops: 3000 });
    const faster = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, zone: "us-central1-b", volumeType: "pd-extreme", iops: 5000 });
    expect(await store.getVolumeInfo({ volumeId: faster, zone: "us-central1-b" })).toMatchObject({ volumeType: "pd-extreme", iops: 5000, zone: "us-central1-b" });
    await expectError(store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, zone: ZONE, volumeType: "pd-balanced", iops: 100 }), Code.InvalidArgument);
  });

  it("snapshots and restores a regional disk through the regional APIs", async () => {
    const { double, store } = await setup();
    await double.insertDisk("proj-one", { region: "us-central1" }, {
      name: "regional-disk",
      sizeGb: "200",
      type: "projects/proj-one/regions/us-central1/diskTypes/pd-balanced",
      replicaZones: ["projects/proj-one/zones/us-central1-a", "projects/proj-one/zones/us-central1-f"],
    });
    const zone = "us-central1-a__us-central1-f";
    expect(await store.getVolumeInfo({ volumeId: "regional-disk", zone })).toMatchObject({ volumeType: "pd-balanced", zone });
    const created = await store.createSnapshot({ volumeId: "regional-disk", zone, tags: { k: "v" } });
    expect(created.zone).toBe("us-central1");
    await untilReady(store, created.snapshotId);
    // Without a zone, the restored disk goes where the source disk is, with its replica zones.
    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId });
    expect(double.disk("proj-one", "regions/us-central1", volumeId)).toMatchObject({
      replicaZones: ["https://www.googleapis.com/compute/v1/projects/proj-one/zones/us-central1-a", "https://www.googleapis.com/compute/v1/projects/proj-one/zones/us-central1-f"],
    });
    expect(double.requests.some((r) => r.method === "POST" && r.path.startsWith("/compute/v1/projects/proj-one/regions/us-central1/operations/") && r.path.endsWith("/wait"))).toBe(true);
    await store.deleteVolume({ volumeId, zone });
    expect(double.disk("proj-one", "regions/us-central1", volumeId)).toBeUndefined();
    await expectError(store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, zone: "us-central1" }), Code.InvalidArgument);
  });

  it("puts snapshots into project and disks into volumeProject", async () => {
    const { double, store } = await setup({}, { project: "snap-proj", volumeProject: "disk-proj" });
    await seedDisk(double, "data-disk", "pd-ssd", "disk-proj");
    const created = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    expect(double.snapshot("snap-proj", created.snapshotId)?.sourceDisk).toBe(`https://www.googleapis.com/compute/v1/projects/disk-proj/zones/${ZONE}/disks/data-disk`);
    await untilReady(store, created.snapshotId);
    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: created.snapshotId, zone: ZONE });
    expect(double.disk("disk-proj", `zones/${ZONE}`, volumeId)).toBeDefined();
  });

  it("maps missing and malformed IDs to the contract's errors, and deleting a missing snapshot succeeds", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    await expectError(store.createSnapshot({ volumeId: "no-such-disk", zone: ZONE }), Code.NotFound, Reason.VolumeNotFound);
    await expectError(store.getVolumeInfo({ volumeId: "no-such-disk", zone: ZONE }), Code.NotFound, Reason.VolumeNotFound);
    await expectError(store.getVolumeInfo({ volumeId: "Bad_Name", zone: ZONE }), Code.InvalidArgument, Reason.InvalidName);
    await expectError(store.getSnapshot("no-such-snapshot"), Code.NotFound, Reason.SnapshotNotFound);
    await expectError(store.getSnapshot("snap/1"), Code.InvalidArgument, Reason.InvalidName);
    await expectError(store.createVolumeFromSnapshot({ snapshotId: "no-such-snapshot", zone: ZONE }), Code.NotFound, Reason.SnapshotNotFound);
    await store.deleteSnapshot("no-such-snapshot");
    const snap = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    double.failRequests({ method: "DELETE", path: /^\/global\/snapshots\//, status: 400, reason: "resourceNotReady", message: "The resource is not ready" });
    await expectError(store.deleteSnapshot(snap.snapshotId), Code.FailedPrecondition, Reason.SnapshotNotReady);
    double.failRequests({ method: "POST", path: /^\/global\/snapshots$/, status: 409, reason: "alreadyExists", message: "The resource already exists" });
    await expectError(store.createSnapshot({ volumeId: "data-disk", zone: ZONE }), Code.AlreadyExists);
    await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: "mars-north1" }), Code.NotFound, Reason.VolumeNotFound);
    await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: "not a zone" }), Code.InvalidArgument);
  });

  it("refuses to restore a pending snapshot and reports a failed one", async () => {
    const { double, store } = await setup({ snapshotPolls: 5 });
    await seedDisk(double);
    const pending = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    const e = await expectError(store.createVolumeFromSnapshot({ snapshotId: pending.snapshotId, zone: ZONE }), Code.FailedPrecondition, Reason.SnapshotNotReady);
    expect(e.message).toMatch(/CREATING|UPLOADING/);
    double.failSnapshot("proj-one", pending.snapshotId, "disk read error");
    const failed = await store.getSnapshot(pending.snapshotId);
    expect(failed.state).toBe("failed");
    expect(failed.message).toContain("FAILED");
    expect((await store.getSnapshot(pending.snapshotId)).state).toBe("failed");
  });

  it("retries 429 rateLimitExceeded, 500 and 503, and surfaces persistent throttling as UNAVAILABLE", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    double.failRequests({ method: "GET", path: /\/disks\/data-disk$/, status: 429, reason: "rateLimitExceeded", times: 2 });
    const before = double.requests.length;
    expect((await store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE })).volumeId).toBe("data-disk");
    expect(double.requests.slice(before).filter((r) => r.path.endsWith("/disks/data-disk"))).toHaveLength(3);
    double.failRequests({ method: "GET", path: /\/disks\/data-disk$/, status: 500, reason: "backendError", times: 1 });
    double.failRequests({ method: "GET", path: /\/disks\/data-disk$/, status: 503, reason: "backendError", times: 1 });
    expect((await store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE })).volumeType).toBe("pd-ssd");
    double.failRequests({ method: "POST", path: /^\/global\/snapshots$/, status: 429, reason: "rateLimitExceeded", times: 1 });
    const created = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    expect(created.state).toBe("pending");
    double.failRequests({ method: "GET", path: /\/disks\/data-disk$/, status: 429, reason: "rateLimitExceeded", times: 100 });
    const e = await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE }), Code.Unavailable, Reason.BackendUnavailable);
    expect(e.message).toContain("Rate Limit Exceeded");
  }, 30_000);

  it("maps refused credentials, quota and unreachable servers to the contract's codes", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    double.failRequests({ method: "GET", path: /\/disks\/data-disk$/, status: 403, reason: "forbidden", message: "Required 'compute.disks.get' permission" });
    const denied = await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE }), Code.PermissionDenied, Reason.AccessDenied);
    expect(denied.message).toContain("compute.disks.get");
    double.failRequests({ method: "GET", path: /\/disks\/data-disk$/, status: 403, reason: "quotaExceeded", message: "Quota exceeded for quota metric 'Read requests'" });
    await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE }), Code.ResourceExhausted);
    await double.stop();
    await expectError(store.getVolumeInfo({ volumeId: "data-disk", zone: ZONE }), Code.Unavailable, Reason.BackendUnavailable);
  }, 30_000);

  it("turns failed operations into errors carrying the operation's code and message", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    const ok = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    await untilReady(store, ok.snapshotId);
    double.failOperations({ operationType: "insert", code: "QUOTA_EXCEEDED", message: "Quota 'SSD_TOTAL_GB' exceeded. Limit: 500.0 in region us-central1." });
    const quota = await expectError(store.createVolumeFromSnapshot({ snapshotId: ok.snapshotId, zone: ZONE }), Code.ResourceExhausted);
    expect(quota.message).toContain("QUOTA_EXCEEDED: Quota 'SSD_TOTAL_GB' exceeded");
    double.failOperations({ operationType: "createSnapshot", code: "RESOURCE_OPERATION_RATE_EXCEEDED", message: "too many snapshots of this disk" });
    const rate = await expectError(store.createSnapshot({ volumeId: "data-disk", zone: ZONE }), Code.Unavailable, Reason.BackendUnavailable);
    expect(rate.message).toContain("too many snapshots of this disk");
  });

  it("fails createSnapshot with RESOURCE_EXHAUSTED when the SNAPSHOTS quota is used up", async () => {
    const { double, store } = await setup({ snapshotQuota: 1 });
    await seedDisk(double);
    await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    const e = await expectError(store.createSnapshot({ volumeId: "data-disk", zone: ZONE }), Code.ResourceExhausted);
    expect(e.message).toContain("SNAPSHOTS quota");
  });

  it("bounds operations by operationTimeoutSeconds and by the call's signal", async () => {
    const { double, store } = await setup({}, { operationTimeoutSeconds: "1" });
    await seedDisk(double);
    const snap = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    await untilReady(store, snap.snapshotId);
    double.setOperationPolls(Number.POSITIVE_INFINITY);
    const e = await expectError(store.createVolumeFromSnapshot({ snapshotId: snap.snapshotId, zone: ZONE }), Code.DeadlineExceeded, Reason.DeadlineExceeded);
    expect(e.message).toContain("operationTimeoutSeconds");
    const controller = new AbortController();
    const deletion = store.deleteSnapshot(snap.snapshotId, { signal: controller.signal });
    const isDeleteWait = (r: { method: string; path: string }): boolean => r.method === "POST" && r.path.includes("/global/operations/") && r.path.endsWith("/wait");
    while (!double.requests.some(isDeleteWait)) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    await expectError(deletion, Code.Canceled, Reason.Cancelled);
  });

  it("lists snapshots by tags, page by page, with tokens bound to the filter", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    const run = { "stowage.io/run": "r-1" };
    const a = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE, tags: { ...run, n: "a" } });
    const b = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE, tags: { ...run, n: "b" } });
    await store.createSnapshot({ volumeId: "data-disk", zone: ZONE, tags: { "stowage.io/run": "r-2" } });
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await store.listSnapshots({ tagFilter: run, pageSize: 1, pageToken: token });
      expect(page.snapshots.length).toBeLessThanOrEqual(1);
      for (const s of page.snapshots) {
        expect(s.tags["stowage.io/run"]).toBe("r-1");
        seen.push(s.snapshotId);
      }
      if (page.nextPageToken !== "") {
        await expectError(store.listSnapshots({ tagFilter: { "stowage.io/run": "r-2" }, pageToken: page.nextPageToken }), Code.InvalidArgument, Reason.InvalidPageToken);
      }
      token = page.nextPageToken;
      pages++;
    } while (token !== "" && pages < 10);
    expect(seen.sort()).toEqual([a.snapshotId, b.snapshotId].sort());
    expect(double.requests.filter((r) => r.path.endsWith("/global/snapshots") && r.method === "GET").every((r) => r.query.filter === '(labels.stowage_io_run = "r-1")' || r.query.filter === '(labels.stowage_io_run = "r-2")')).toBe(true);
    expect(await store.listSnapshots({ tagFilter: { "stowage.io/run": "none" } })).toEqual({ snapshots: [], nextPageToken: "" });
    expect((await store.listSnapshots({})).snapshots).toHaveLength(3);
    await expectError(store.listSnapshots({ pageToken: "garbage" }), Code.InvalidArgument, Reason.InvalidPageToken);
    await expectError(store.listSnapshots({ pageSize: 1001 }), Code.InvalidArgument);
  });

  it("finds a disk without a zone by listing the project's disks across zones and regions", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    await double.insertDisk("proj-one", { region: "us-central1" }, {
      name: "regional-disk",
      type: "projects/proj-one/regions/us-central1/diskTypes/pd-balanced",
      replicaZones: ["projects/proj-one/zones/us-central1-a", "projects/proj-one/zones/us-central1-f"],
    });
    expect(await store.getVolumeInfo({ volumeId: "data-disk" })).toMatchObject({ zone: ZONE, volumeType: "pd-ssd" });
    expect(await store.getVolumeInfo({ volumeId: "regional-disk" })).toMatchObject({ zone: "us-central1-a__us-central1-f" });
    const created = await store.createSnapshot({ volumeId: "regional-disk", zone: "" });
    expect(created.zone).toBe("us-central1");
    expect(double.requests.filter((r) => r.path.endsWith("/aggregated/disks")).map((r) => r.query.filter)).toContain('name = "regional-disk"');
    await expectError(store.getVolumeInfo({ volumeId: "nowhere" }), Code.NotFound, Reason.VolumeNotFound);
    await store.deleteVolume({ volumeId: "nowhere" });
  });

  it("retries a request whose response was lost with the same requestId, so Compute Engine creates one snapshot", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    double.failRequests({ method: "POST", path: /^\/global\/snapshots$/, status: 503, reason: "backendError", afterProcessing: true });
    const created = await store.createSnapshot({ volumeId: "data-disk", zone: ZONE });
    const inserts = double.requests.filter((r) => r.method === "POST" && r.path.endsWith("/global/snapshots"));
    expect(inserts).toHaveLength(2);
    expect(inserts[1]?.query.requestId).toBe(inserts[0]?.query.requestId);
    expect((await store.listSnapshots({})).snapshots.map((s) => s.snapshotId)).toEqual([created.snapshotId]);
  });

  it("refuses to delete an attached disk", async () => {
    const { double, store } = await setup();
    await seedDisk(double);
    double.attachDisk("proj-one", `zones/${ZONE}`, "data-disk", "node-1");
    const e = await expectError(store.deleteVolume({ volumeId: "data-disk", zone: ZONE }), Code.FailedPrecondition);
    expect(e.message).toContain("node-1");
    expect(double.disk("proj-one", `zones/${ZONE}`, "data-disk")).toBeDefined();
  });
});
