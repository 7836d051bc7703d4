import { Code, Reason } from "@stowage/sdk";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createDisk, doubleConfig, startArmComputeDouble, writeCredentialsFile, type ArmComputeDouble } from "../../test/support/arm-compute-double.js";
import { ManagedDisksBlockStore } from "./managed-disks-block-store.js";
import { TAG_NAMES_TAG } from "./tags.js";
import { rejection } from "@stowage/sdk/testing";

vi.setConfig({ testTimeout: 30_000 });

let double: ArmComputeDouble;
let dir: string;
let credentials: string;
let store: ManagedDisksBlockStore;
let sourceId: string;

async function newStore(extra: Record<string, string> = {}, options: ConstructorParameters<typeof ManagedDisksBlockStore>[0] = {}): Promise<ManagedDisksBlockStore> {
  const s = new ManagedDisksBlockStore(options);
  await s.init(doubleConfig(double, credentials, extra));
  return s;
}

beforeAll(async () => {
  double = await startArmComputeDouble({ listPageSize: 2 });
  dir = await mkdtemp(join(tmpdir(), "stowage-disks-test-"));
  credentials = await writeCredentialsFile(double, dir);
  sourceId = await createDisk(double, "source", { tags: { team: "storage", env: "disk" }, zone: "1" });
  store = await newStore({ tags: "env=config,cfg=yes" });
}, 30_000);

afterAll(async () => {
  await double.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("init", () => {
  it("rejects unknown keys, bad durations, bad tags and plain-http endpoints with INVALID_CONFIG", async () => {
    const unknown = await rejection(new ManagedDisksBlockStore().init({ ...doubleConfig(double, credentials), region: "x" }));
    expect(unknown.reason).toBe(Reason.InvalidConfig);
    expect(unknown.metadata.valid_keys).toContain("apiTimeout");
    for (const [key, value] of [
      ["apiTimeout", "two minutes"],
      ["pollInterval", "5 parsecs"],
      ["tags", "novalue"],
      ["incremental", "maybe"],
      ["resourceManagerEndpoint", "http://127.0.0.1:1"],
    ] as const) {
      const error = await rejection(new ManagedDisksBlockStore().init(doubleConfig(double, credentials, { [key]: value })));
      expect(error.reason, key).toBe(Reason.InvalidConfig);
      expect(error.message).toContain(key);
    }
  });

  it("requires AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP in the credentials file, and the file itself", async () => {
    const partial = await writeCredentialsFile(double, dir, { AZURE_RESOURCE_GROUP: "" }, "partial");
    const missingKeys = await rejection(new ManagedDisksBlockStore().init(doubleConfig(double, partial)));
    expect(missingKeys.reason).toBe(Reason.InvalidConfig);
    expect(missingKeys.message).toContain("AZURE_RESOURCE_GROUP");
    const missingFile = await rejection(new ManagedDisksBlockStore().init(doubleConfig(double, join(dir, "nope"))));
    expect(missingFile.reason).toBe(Reason.InvalidConfig);
    expect(missingFile.message).toContain("does not exist");
  });

  it("asks Entra ID for a token for the Resource Manager audience of AZURE_CLOUD_NAME", async () => {
    const gov = await writeCredentialsFile(double, dir, { AZURE_CLOUD_NAME: "AzureUSGovernment" }, "gov");
    const s = new ManagedDisksBlockStore();
    await s.init(doubleConfig(double, gov));
    const before = double.tokenScopes.length;
    await s.getVolumeInfo({ volumeId: "source" });
    expect(double.tokenScopes.slice(before)).toEqual([expect.stringContaining("https://management.core.usgovcloudapi.net/.default")]);
    const unknown = await writeCredentialsFile(double, dir, { AZURE_CLOUD_NAME: "AzureGermanCloud" }, "german");
    const error = await rejection(new ManagedDisksBlockStore().init(doubleConfig(double, unknown)));
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.message).toContain("AzureGermanCloud");
  });

  it("fails calls before init with NOT_INITIALIZED", async () => {
    const error = await rejection(new ManagedDisksBlockStore().getSnapshot("x"));
    expect(error.reason).toBe(Reason.NotInitialized);
  });
});

describe("snapshots against the ARM double", () => {
  it("snapshots a disk with disk < config < caller tags, '/' rewritten on Azure and restored on read", async () => {
    const created = await store.createSnapshot({ volumeId: "source", tags: { env: "caller", "velero.io/backup": "b1" } });
    expect(created.snapshotId).toMatch(new RegExp(`^/subscriptions/${double.subscriptionId}/resourceGroups/stowage-snapshots/providers/Microsoft.Compute/snapshots/source-[0-9a-f-]{36}$`));
    expect(created).toMatchObject({ volumeId: "source", state: "ready", zone: "westeurope", sizeBytes: 4 * 1024 ** 3 });
    expect(created.tags).toEqual({ team: "storage", env: "caller", cfg: "yes", "velero.io/backup": "b1" });
    const stored = double.resource(created.snapshotId);
    expect(stored?.tags["velero.io-backup"]).toBe("b1");
    expect(stored?.tags[TAG_NAMES_TAG]).toBe('["velero.io/backup"]');
    expect((stored?.properties.creationData as { sourceResourceId: string }).sourceResourceId).toBe(sourceId);
    const got = await store.getSnapshot(created.snapshotId);
    expect(got).toMatchObject({ snapshotId: created.snapshotId, state: "ready", tags: created.tags });
    expect(got.createdAt).toBeInstanceOf(Date);
  });

  it("sends api-version and a bearer token from the token endpoint on every ARM request", () => {
    expect(double.requests.length).toBeGreaterThan(0);
    for (const r of double.requests) {
      expect(r.query.get("api-version"), `${r.method} ${r.path}`).toBe("2026-03-02");
      expect(r.authorization).toMatch(/^Bearer tok-/);
    }
    expect(double.tokensIssued()).toBeGreaterThan(0);
  });

  it("accepts full ARM disk IDs and reports disks outside the credentials file's group by ARM ID", async () => {
    const otherId = await createDisk(double, "elsewhere", { resourceGroup: "stowage-snapshots" });
    const snapshot = await store.createSnapshot({ volumeId: otherId });
    expect(snapshot.volumeId).toBe(otherId);
    const byId = await store.createSnapshot({ volumeId: sourceId });
    expect(byId.volumeId).toBe("source");
  });

  it("reports incremental snapshots as pending with rising completionPercent, then ready", async () => {
    const incremental = await newStore({ incremental: "TRUE" });
    const created = await incremental.createSnapshot({ volumeId: "source" });
    expect(double.resource(created.snapshotId)?.properties.incremental).toBe(true);
    const seen = [created];
    while (seen.at(-1)?.state === "pending") seen.push(await incremental.getSnapshot(created.snapshotId));
    expect(seen[0]?.state).toBe("pending");
    expect(seen[0]?.progressPercent).toBeGreaterThan(0);
    expect(seen.at(-1)?.state).toBe("ready");
    const percents = seen.map((s) => s.progressPercent).filter((p): p is number => p !== undefined);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
  });

  it("refuses to restore a pending snapshot with SNAPSHOT_NOT_READY", async () => {
    const incremental = await newStore({ incremental: "true" });
    double.setCompletionStep(0);
    const created = await incremental.createSnapshot({ volumeId: "source" }).finally(() => undefined);
    expect(created.state).toBe("pending");
    const error = await rejection(incremental.createVolumeFromSnapshot({ snapshotId: created.snapshotId })).finally(() => double.setCompletionStep(40));
    expect(error).toMatchObject({ code: Code.FailedPrecondition, reason: Reason.SnapshotNotReady });
    expect(error.message).toContain("PENDING");
  });

  it("treats missing and malformed snapshots and disks as the contract says", async () => {
    const missing = double.snapshotId("stowage-snapshots", "never-existed");
    expect((await rejection(store.getSnapshot(missing))).reason).toBe(Reason.SnapshotNotFound);
    await store.deleteSnapshot(missing);
    await store.deleteSnapshot(double.snapshotId("no-such-group", "never-existed"));
    expect((await rejection(store.createVolumeFromSnapshot({ snapshotId: missing }))).reason).toBe(Reason.SnapshotNotFound);
    expect((await rejection(store.getVolumeInfo({ volumeId: "no-such-disk" }))).reason).toBe(Reason.VolumeNotFound);
    expect((await rejection(store.createSnapshot({ volumeId: "no-such-disk" }))).reason).toBe(Reason.VolumeNotFound);
    await store.deleteVolume({ volumeId: "no-such-disk" });
    expect((await rejection(store.getSnapshot("not/an id"))).reason).toBe(Reason.InvalidName);
    expect((await rejection(store.getVolumeInfo({ volumeId: "-bad-" }))).reason).toBe(Reason.InvalidName);
  });

  it("deletes snapshots idempotently", async () => {
    const created = await store.createSnapshot({ volumeId: "source" });
    await store.deleteSnapshot(created.snapshotId);
    expect(double.resource(created.snapshotId)).toBeUndefined();
    await store.deleteSnapshot(created.snapshotId);
    expect((await rejection(store.getSnapshot(created.snapshotId))).reason).toBe(Reason.SnapshotNotFound);
  });

  it("lists snapshots by tag, page by page, across ARM pages", async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 3; i++) ids.add((await store.createSnapshot({ volumeId: "source", tags: { "stowage.io/list": "yes" } })).snapshotId);
    await store.createSnapshot({ volumeId: "source", tags: { "stowage.io/list": "no" } });
    const seen: string[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await store.listSnapshots({ tagFilter: { "stowage.io/list": "yes" }, pageSize: 1, pageToken: token });
      expect(page.snapshots.length).toBeLessThanOrEqual(1);
      seen.push(...page.snapshots.map((s) => s.snapshotId));
      token = page.nextPageToken;
      pages++;
    } while (token !== "" && pages < 50);
    expect(seen.sort()).toEqual([...ids].sort());
    // Velero's rewritten form of the key matches too.
    const velero = await store.listSnapshots({ tagFilter: { "stowage.io-list": "yes" } });
    expect(velero.snapshots.map((s) => s.snapshotId).sort()).toEqual([...ids].sort());
    const none = await store.listSnapshots({ tagFilter: { "stowage.io/list": "maybe" } });
    expect(none).toEqual({ snapshots: [], nextPageToken: "" });
  });

  it("refuses page tokens of another filter, foreign links and garbage with INVALID_PAGE_TOKEN", async () => {
    const first = await store.listSnapshots({ pageSize: 1 });
    expect(first.nextPageToken).not.toBe("");
    const other = await rejection(store.listSnapshots({ pageSize: 1, pageToken: first.nextPageToken, tagFilter: { a: "b" } }));
    expect(other.reason).toBe(Reason.InvalidPageToken);
    const forged = Buffer.from(JSON.stringify({ l: "https://attacker.example/steal?x=1", s: 0, f: (JSON.parse(Buffer.from(first.nextPageToken, "base64url").toString()) as { f: string }).f })).toString("base64url");
    expect((await rejection(store.listSnapshots({ pageSize: 1, pageToken: forged }))).reason).toBe(Reason.InvalidPageToken);
    expect((await rejection(store.listSnapshots({ pageToken: "garbage" }))).reason).toBe(Reason.InvalidPageToken);
    expect((await rejection(store.listSnapshots({ pageSize: 1001 }))).code).toBe(Code.InvalidArgument);
  });
});

describe("restores against the ARM double", () => {
  it("restores a disk with type, zone and tags into the credentials file's group", async () => {
    const snapshot = await store.createSnapshot({ volumeId: "source" });
    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "StandardSSD_LRS", zone: "westeurope-2", tags: { "velero.io/restore": "r1" } });
    expect(volumeId).toMatch(/^restore-[0-9a-f-]{36}$/);
    const disk = double.resource(double.diskId("stowage-disks", volumeId));
    expect(disk?.zones).toEqual(["2"]);
    expect(disk?.tags["velero.io-restore"]).toBe("r1");
    expect((disk?.properties.creationData as { sourceResourceId: string }).sourceResourceId).toBe(snapshot.snapshotId);
    const info = await store.getVolumeInfo({ volumeId });
    expect(info).toEqual({ volumeId, volumeType: "StandardSSD_LRS", zone: "westeurope-2", sizeBytes: 4 * 1024 ** 3 });
  });

  it("carries provisioned IOPS for PremiumV2_LRS and refuses them for other types", async () => {
    const snapshot = await store.createSnapshot({ volumeId: "source" });
    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "PremiumV2_LRS", zone: "1", iops: 5000 });
    expect(await store.getVolumeInfo({ volumeId })).toMatchObject({ volumeType: "PremiumV2_LRS", iops: 5000, zone: "westeurope-1" });
    const refused = await rejection(store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, volumeType: "Premium_LRS", iops: 5000 }));
    expect(refused.code).toBe(Code.InvalidArgument);
    const wrongRegion = await rejection(store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: "eastus-1" }));
    expect(wrongRegion.code).toBe(Code.InvalidArgument);
    expect(wrongRegion.message).toContain("westeurope");
  });

  it("does not delete attached disks, deletes detached ones idempotently", async () => {
    const snapshot = await store.createSnapshot({ volumeId: "source" });
    const volumeId = await store.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId });
    const diskId = double.diskId("stowage-disks", volumeId);
    double.attach(diskId, "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/vm1");
    const attached = await rejection(store.deleteVolume({ volumeId }));
    expect(attached.code).toBe(Code.FailedPrecondition);
    expect(attached.message).toContain("vm1");
    double.attach(diskId, undefined);
    await store.deleteVolume({ volumeId });
    expect(double.resource(diskId)).toBeUndefined();
    await store.deleteVolume({ volumeId });
  });
});

describe("failure modes of the ARM double", () => {
  it("reports a failed operation with Azure's code and message", async () => {
    double.failNextOperations(1, { code: "InternalDiskManagementError", message: "disk on fire" });
    const failed = await rejection(store.createSnapshot({ volumeId: "source" }));
    expect(failed).toMatchObject({ code: Code.Internal, reason: Reason.Internal });
    expect(failed.message).toContain("InternalDiskManagementError");
    expect(failed.message).toContain("disk on fire");
    expect(failed.metadata.snapshot_id).toMatch(/snapshots\/source-/);
    const snapshot = await store.getSnapshot(failed.metadata.snapshot_id ?? "");
    expect(snapshot.state).toBe("failed");
    double.failNextOperations(1, { code: "QuotaExceeded", message: "too many snapshots" });
    const quota = await rejection(store.createSnapshot({ volumeId: "source" }));
    expect(quota.code).toBe(Code.ResourceExhausted);
    expect(quota.reason).toBeUndefined();
  });

  it("gives up on an operation that never finishes after apiTimeout, saying what to do", async () => {
    const short = await newStore({ apiTimeout: "1s" });
    double.hangNextOperations(1);
    const error = await rejection(short.createSnapshot({ volumeId: "source" }));
    expect(error).toMatchObject({ code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded });
    expect(error.message).toContain("apiTimeout (1s)");
    expect(error.message).toContain("GetSnapshot");
    expect(error.metadata.snapshot_id).toMatch(/snapshots\/source-/);
  });

  it("stops polling when the caller cancels", async () => {
    double.hangNextOperations(1);
    const controller = new AbortController();
    const before = double.requests.length;
    // Cancel once this call's snapshot PUT has been answered and its operation is being polled.
    const watcher = setInterval(() => {
      const mine = double.requests.slice(before);
      const put = mine.findIndex((r) => r.method === "PUT" && r.path.includes("/snapshots/source-"));
      if (put >= 0 && mine.slice(put + 1).some((r) => r.path.includes("/DiskOperations/"))) controller.abort();
    }, 5);
    try {
      const error = await rejection(store.createSnapshot({ volumeId: "source" }, { signal: controller.signal }));
      expect(error).toMatchObject({ code: Code.Canceled, reason: Reason.Cancelled });
    } finally {
      clearInterval(watcher);
    }
  });

  it("waits out 429 throttling with Retry-After through the SDK's retry policy", async () => {
    const fault = double.injectFault({ method: "GET", path: /\/disks\/source$/, status: 429, code: "TooManyRequests", retryAfterSeconds: 1, times: 2 });
    const before = double.requests.filter((r) => r.path.endsWith("/disks/source")).length;
    const info = await store.getVolumeInfo({ volumeId: "source" });
    expect(info.volumeType).toBe("Premium_LRS");
    expect(fault.hits()).toBe(2);
    const statuses = double.requests.filter((r) => r.path.endsWith("/disks/source")).slice(before).map((r) => r.status);
    expect(statuses).toEqual([429, 429, 200]);
  });

  it("maps throttling that outlasts the retries to UNAVAILABLE", async () => {
    const impatient = await newStore({}, { maxRetries: 1 });
    double.injectFault({ method: "GET", path: /\/disks\/source$/, status: 429, code: "TooManyRequests", retryAfterSeconds: 1, times: 2 });
    const error = await rejection(impatient.getVolumeInfo({ volumeId: "source" }));
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.BackendUnavailable });
  });

  it("maps a 409 conflict on delete to SNAPSHOT_NOT_READY", async () => {
    const snapshot = await store.createSnapshot({ volumeId: "source" });
    double.injectFault({ method: "DELETE", path: /\/snapshots\//, status: 409, code: "Conflict", message: "another operation is in progress" });
    const error = await rejection(store.deleteSnapshot(snapshot.snapshotId));

    expect(error).toMatchObject({ code: Code.FailedPrecondition, reason: Reason.SnapshotNotReady });
    await store.deleteSnapshot(snapshot.snapshotId);
    expect(double.resource(snapshot.snapshotId)).toBeUndefined();
  });

  it("fails with UNAUTHENTICATED when the token endpoint refuses the client secret", async () => {
    const wrong = await writeCredentialsFile(double, dir, { AZURE_CLIENT_SECRET: "wrong" }, "wrong");
    const s = new ManagedDisksBlockStore({ maxRetries: 0 });
    await s.init(doubleConfig(double, wrong));
    const error = await rejection(s.getVolumeInfo({ volumeId: "source" }));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.message).not.toContain(double.clientSecret);
  });

  it("fails with FAILED_PRECONDITION when the snapshot or restore resource group does not exist", async () => {
    const s = await newStore({ resourceGroup: "no-such-group" });
    const error = await rejection(s.createSnapshot({ volumeId: "source" }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.message).toContain('"resourceGroup"');
    const snapshot = await store.createSnapshot({ volumeId: "source" });
    const elsewhere = await writeCredentialsFile(double, dir, { AZURE_RESOURCE_GROUP: "no-such-group" }, "elsewhere");
    const restorer = new ManagedDisksBlockStore();
    await restorer.init(doubleConfig(double, elsewhere));
    const restore = await rejection(restorer.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId }));
    expect(restore.code).toBe(Code.FailedPrecondition);
    expect(restore.message).toContain("AZURE_RESOURCE_GROUP");
  });
});
