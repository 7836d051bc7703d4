/**
 * The Persistent Disk BlockStore: Compute Engine snapshots of zonal and regional Persistent Disks,
 * and disks restored from them.
 *
 * @packageDocumentation
 */
import type { protos } from "@google-cloud/compute";
import {
  Code,
  Reason,
  StowageError,
  silentLogger,
  snapshotNotFound,
  volumeNotFound,
  type BlockStore,
  type CallOptions,
  type CreateSnapshotInput,
  type CreateVolumeFromSnapshotInput,
  type ListSnapshotsInput,
  type ListSnapshotsPage,
  type Logger,
  type PluginConfig,
  type Snapshot,
  type Volume,
  type VolumeRef,
} from "@stowage/sdk";
import { redactConfig, withRequestTimeout } from "@stowage/sdk/plugin";
import { createHash, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { PD_CONFIG_KEYS, parsePdConfig, type PdSettings } from "./config.js";
import { errorReason, isNotFound, operationError, toPdError, type PdErrorContext } from "./errors.js";
import { descriptionTags, labelFilter, tagsToLabels } from "./labels.js";
import { DISK_NAME_RE, getPdVolumeId, setPdVolumeId } from "./persistent-volumes.js";

type ComputeModule = typeof import("@google-cloud/compute");
type IOperation = protos.google.cloud.compute.v1.IOperation;
type IDisk = protos.google.cloud.compute.v1.IDisk;
type ISnapshot = protos.google.cloud.compute.v1.ISnapshot;

const GiB = 1024 * 1024 * 1024;
/** Default and largest page of {@link PdBlockStore.listSnapshots}. */
export const MAX_SNAPSHOT_PAGE_SIZE = 1000;
/** Largest page Compute Engine's `snapshots.list` returns. */
const GCE_MAX_RESULTS = 500;
/** Compute Engine's limit of labels per resource. */
const MAX_LABELS = 64;

/** Labels recording the source disk's type and performance settings on each snapshot, for restores. */
export const SOURCE_DISK_LABELS = {
  /** The source disk's type (pd-ssd, hyperdisk-balanced, ...). */
  type: "stowage-source-disk-type",
  /** The source disk's provisioned IOPS. */
  iops: "stowage-source-disk-iops",
  /** The source disk's provisioned throughput in MiB/s. */
  throughput: "stowage-source-disk-throughput",
} as const;

const INTERNAL_LABELS = new Set<string>(Object.values(SOURCE_DISK_LABELS));

/**
 * Retries of every Compute Engine request on the gRPC codes google-gax gives 429 (RESOURCE_EXHAUSTED),
 * 500 `backendError` (INTERNAL), 503 and network failures (UNAVAILABLE), each attempt bounded by
 * `requestTimeoutMs` (as is the whole request, retries included, by the caller of this). Mutating
 * requests carry a `requestId`, so Compute Engine applies a retried request once.
 */
function retrySettings(requestTimeoutMs: number) {
  return {
    retryCodes: [Code.Unavailable, Code.ResourceExhausted, Code.Internal],
    backoffSettings: {
      maxRetries: 4,
      initialRetryDelayMillis: 200,
      retryDelayMultiplier: 2,
      maxRetryDelayMillis: 5000,
      initialRpcTimeoutMillis: requestTimeoutMs,
      rpcTimeoutMultiplier: 1,
      maxRpcTimeoutMillis: requestTimeoutMs,
    },
  };
}
type RetrySettings = ReturnType<typeof retrySettings>;

/** Where a disk lives: a zone, or a region with its replica zones. */
export interface DiskLocation {
  /** `zones` or `regions`. */
  readonly scope: "zones" | "regions";
  /** Zone or region name. */
  readonly location: string;
  /** Replica zones of a regional disk (from a `zone__zone` value); empty otherwise. */
  readonly replicaZones: readonly string[];
}

const ZONE_RE = /^[a-z]+-[a-z]+\d+-[a-z]$/;
const REGION_RE = /^[a-z]+-[a-z]+\d+$/;

/**
 * Parses the zone of a volume as the PersistentVolume labels it: `us-central1-a` is a zonal disk;
 * zones joined with `__` (`us-central1-a__us-central1-b`, as GKE labels regional disks) or a bare
 * region name is a regional disk. Empty or malformed values fail with `INVALID_ARGUMENT`.
 */
export function parseDiskLocation(zone: string | undefined): DiskLocation {
  const value = (zone ?? "").trim();
  if (value === "") {
    throw new StowageError(Code.InvalidArgument, "the zone of the disk is required (the PersistentVolume's topology.kubernetes.io/zone label, e.g. us-central1-a, or zone__zone for a regional disk)");
  }
  if (value.includes("__")) {
    const zones = value.split("__").filter((z) => z !== "");
    const region = zones[0]?.replace(/-[a-z]$/, "") ?? "";
    if (zones.length === 0 || !zones.every((z) => ZONE_RE.test(z) && z.replace(/-[a-z]$/, "") === region)) {
      throw new StowageError(Code.InvalidArgument, `zone ${JSON.stringify(value)} is not a list of zones of one region joined with __ (e.g. us-central1-a__us-central1-b)`);
    }
    return { scope: "regions", location: region, replicaZones: zones };
  }
  if (ZONE_RE.test(value)) return { scope: "zones", location: value, replicaZones: [] };
  if (REGION_RE.test(value)) return { scope: "regions", location: value, replicaZones: [] };
  throw new StowageError(Code.InvalidArgument, `zone ${JSON.stringify(value)} is neither a Compute Engine zone (us-central1-a), a region (us-central1) nor zones joined with __`);
}

/** The last path segment of a resource URL. */
function lastSegment(link: string | null | undefined): string {
  return (link ?? "").split("/").at(-1) ?? "";
}

/** The location of a disk URL (`…/zones/<z>/disks/<d>` or `…/regions/<r>/disks/<d>`). */
function linkLocation(link: string | null | undefined): { scope: "zones" | "regions"; location: string } | undefined {
  const m = /\/(zones|regions)\/([^/]+)\/disks\/[^/]+$/.exec(link ?? "");
  return m === null ? undefined : { scope: m[1] === "regions" ? "regions" : "zones", location: m[2] ?? "" };
}

function int(value: number | string | { toString(): string } | null | undefined): number {
  if (value === null || value === undefined) return 0;
  const n = Number(typeof value === "number" ? value : value.toString());
  return Number.isFinite(n) ? n : 0;
}

function checkSnapshotId(snapshotId: string): void {
  if (!DISK_NAME_RE.test(snapshotId)) {
    throw new StowageError(Code.InvalidArgument, `snapshot ID ${JSON.stringify(snapshotId)} is not a Compute Engine snapshot name (RFC 1035, at most 63 characters)`, {
      reason: Reason.InvalidName,
      metadata: { snapshot_id: snapshotId },
    });
  }
}

function checkVolumeId(volumeId: string): void {
  if (!DISK_NAME_RE.test(volumeId)) {
    throw new StowageError(Code.InvalidArgument, `volume ID ${JSON.stringify(volumeId)} is not a Compute Engine disk name (RFC 1035, at most 63 characters)`, {
      reason: Reason.InvalidName,
      metadata: { volume_id: volumeId },
    });
  }
}

/** `<disk>-<uuid>`, at most 63 characters (the disk part is shortened, never the UUID). */
export function snapshotName(diskName: string): string {
  const uuid = randomUUID();
  return `${diskName.slice(0, 63 - uuid.length - 1)}-${uuid}`;
}

function takesIops(type: string): boolean {
  return type === "pd-extreme" || type.startsWith("hyperdisk-");
}

function isAborted(signal: AbortSignal | undefined): signal is AbortSignal {
  return signal?.aborted === true;
}

/** The error a call ends with when its signal fires. */
function abortError(signal: AbortSignal): StowageError {
  const reason: unknown = signal.reason;
  if (reason instanceof StowageError) return reason;
  if (reason instanceof Error && (reason.name === "TimeoutError" || reason.name === "AbortError")) return StowageError.from(reason);
  return new StowageError(Code.Canceled, "the call was cancelled", { reason: Reason.Cancelled, cause: reason });
}

/** A signal that fires with `signal` or after `ms` with a DEADLINE_EXCEEDED that names `what`. */
function withDeadline(signal: AbortSignal | undefined, ms: number, what: string): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(new StowageError(Code.DeadlineExceeded, `${what} did not finish within ${String(ms / 1000)} s; raise operationTimeoutSeconds or check the operation in Compute Engine`, { reason: Reason.DeadlineExceeded }));
  }, ms);
  const onAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted === true) controller.abort(signal.reason);
  else signal?.addEventListener("abort", onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    },
  };
}

interface Clients {
  readonly disks: InstanceType<ComputeModule["DisksClient"]>;
  readonly regionDisks: InstanceType<ComputeModule["RegionDisksClient"]>;
  readonly snapshots: InstanceType<ComputeModule["SnapshotsClient"]>;
  readonly projects: InstanceType<ComputeModule["ProjectsClient"]>;
  readonly zoneOperations: InstanceType<ComputeModule["ZoneOperationsClient"]>;
  readonly regionOperations: InstanceType<ComputeModule["RegionOperationsClient"]>;
  readonly globalOperations: InstanceType<ComputeModule["GlobalOperationsClient"]>;
}

interface State {
  readonly settings: PdSettings;
  readonly clients: Clients;
}

async function makeClients(settings: PdSettings): Promise<Clients> {
  const mod = (await import("@google-cloud/compute")) as ComputeModule & { default?: ComputeModule };
  const compute = mod.default ?? mod;
  const options = { ...settings.clientOptions };
  return {
    disks: new compute.DisksClient(options),
    regionDisks: new compute.RegionDisksClient(options),
    snapshots: new compute.SnapshotsClient(options),
    projects: new compute.ProjectsClient(options),
    zoneOperations: new compute.ZoneOperationsClient(options),
    regionOperations: new compute.RegionOperationsClient(options),
    globalOperations: new compute.GlobalOperationsClient(options),
  };
}

async function closeClients(clients: Clients): Promise<void> {
  await Promise.allSettled(Object.values(clients).map((c: { close(): Promise<void> }) => c.close()));
}

/** Options of {@link PdBlockStore}. */
export interface PdBlockStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
}

/**
 * A BlockStore on Google Compute Engine Persistent Disks.
 *
 * - Volume IDs are disk names in `volumeProject`; the zone (`us-central1-a`, or `zone__zone` for a
 *   regional disk) comes with each call, and without one the disk is looked up by name across the
 *   project's zones and regions. Snapshot IDs are snapshot names in `project`.
 * - `createSnapshot` returns once Compute Engine shows the snapshot (usually CREATING), without
 *   waiting for READY; `getSnapshot` maps CREATING/UPLOADING → pending, READY → ready, FAILED → failed,
 *   and a DELETING snapshot is reported as not found.
 * - Snapshots keep the caller's tags exactly in their description (JSON, merged over the disk's
 *   description as Velero does) and as transformed labels for filtering (see `labels.ts`).
 * - Disk creations and deletions and snapshot deletions follow their operation to completion.
 * - Deleting a missing snapshot or disk succeeds.
 */
export class PdBlockStore implements BlockStore {
  readonly #logger: Logger;
  #state: State | undefined;

  /** @param options - Logger. */
  constructor(options: PdBlockStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  /** Validates the configuration, loads the credentials and builds the Compute Engine clients; see the package README for the keys. */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    const settings = await parsePdConfig(config, options.signal);
    const clients = await makeClients(settings);
    if (isAborted(options.signal)) throw abortError(options.signal);
    // Calls in flight keep the previous clients (clause 2.5.5); the REST clients hold no connections of their own to close.
    this.#state = { settings, clients };
    this.#logger.info({ config: redactConfig(config, PD_CONFIG_KEYS), project: settings.project, volumeProject: settings.volumeProject }, "initialised");
  }

  /** Releases the clients' connections. */
  async close(): Promise<void> {
    const state = this.#state;
    this.#state = undefined;
    if (state !== undefined) await closeClients(state.clients);
  }

  #ready(): State {
    if (this.#state === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the Persistent Disk block store is not initialised; call init first", { reason: Reason.NotInitialized });
    }
    return this.#state;
  }

  /**
   * Runs one SDK call with the signal and retries, within `requestTimeout` (retries
   * included): a fired signal fails it with its reason, a Compute Engine that does not answer in
   * time with `UNAVAILABLE`/`BACKEND_UNAVAILABLE`.
   */
  async #call<T>(signal: AbortSignal | undefined, run: (options: { signal?: AbortSignal; retry: RetrySettings }) => Promise<T>): Promise<T> {
    if (signal?.aborted === true) throw abortError(signal);
    const { timeouts } = this.#ready().settings;
    return withRequestTimeout(signal, timeouts.requestTimeoutMs, "Compute Engine request", (abortSignal) =>
      run({ signal: abortSignal, retry: retrySettings(timeouts.requestTimeoutMs) }),
    );
  }

  async #sleep(ms: number, signal: AbortSignal): Promise<void> {
    try {
      await sleep(ms, undefined, { signal });
    } catch {
      throw abortError(signal);
    }
  }

  /** Follows an operation with `wait` until DONE; a failed operation becomes its error. */
  async #follow(op: IOperation, project: string, context: PdErrorContext, signal: AbortSignal | undefined): Promise<void> {
    const { settings, clients } = this.#ready();
    const scope = withDeadline(signal, settings.operationTimeoutMs, `operation ${op.name ?? ""} (${context.operation})`);
    try {
      let current = op;
      let delay = 100;
      while (current.status !== "DONE") {
        const started = Date.now();
        const name = current.name ?? "";
        const zone = lastSegment(current.zone);
        const region = lastSegment(current.region);
        current = await this.#call(scope.signal, async (o) => {
          try {
            if (zone !== "") return (await clients.zoneOperations.wait({ project: projectOf(current, project), zone, operation: name }, o))[0];
            if (region !== "") return (await clients.regionOperations.wait({ project: projectOf(current, project), region, operation: name }, o))[0];
            return (await clients.globalOperations.wait({ project: projectOf(current, project), operation: name }, o))[0];
          } catch (error) {
            throw toPdError(error, { ...context, operation: `${context.operation}: wait for operation ${name}` });
          }
        });
        // `wait` returns early at the latest after about two minutes; back off when it answers at once.
        if (current.status !== "DONE" && Date.now() - started < 1000) {
          await this.#sleep(delay, scope.signal);
          delay = Math.min(delay * 2, 2000);
        }
      }
      if ((current.error?.errors?.length ?? 0) > 0) throw operationError(current, context);
    } finally {
      scope.dispose();
    }
  }

  async #getDisk(volumeId: string, where: DiskLocation, signal: AbortSignal | undefined): Promise<IDisk> {
    const { settings, clients } = this.#ready();
    return this.#call(signal, async (o) => {
      try {
        if (where.scope === "zones") return (await clients.disks.get({ project: settings.volumeProject, zone: where.location, disk: volumeId }, o))[0];
        return (await clients.regionDisks.get({ project: settings.volumeProject, region: where.location, disk: volumeId }, o))[0];
      } catch (error) {
        if (isNotFound(error)) {
          throw new StowageError(Code.NotFound, `disk ${JSON.stringify(volumeId)} not found in ${where.scope === "zones" ? "zone" : "region"} ${where.location} of project ${settings.volumeProject}`, {
            reason: Reason.VolumeNotFound,
            metadata: { volume_id: volumeId },
            cause: error,
          });
        }
        throw toPdError(error, { operation: `get disk ${JSON.stringify(volumeId)}`, volumeId });
      }
    });
  }

  /** The disk's location: parsed from the zone, or, when none is given, found with an aggregated list of the project's disks. */
  async #where(volumeId: string, zone: string | undefined, signal: AbortSignal | undefined): Promise<DiskLocation> {
    if ((zone ?? "").trim() !== "") return parseDiskLocation(zone);
    const { settings, clients } = this.#ready();
    const found: DiskLocation[] = [];
    await this.#call(signal, async (o) => {
      try {
        for await (const [scope, list] of clients.disks.aggregatedListAsync({ project: settings.volumeProject, filter: `name = "${volumeId}"`, maxResults: 500 }, o)) {
          for (const disk of list.disks ?? []) {
            if (disk.name !== volumeId) continue;
            const [kind, location] = scope.split("/");
            if (kind === "regions") found.push({ scope: "regions", location: location ?? "", replicaZones: (disk.replicaZones ?? []).map(lastSegment) });
            else found.push({ scope: "zones", location: location ?? "", replicaZones: [] });
          }
        }
      } catch (error) {
        throw toPdError(error, { operation: `find disk ${JSON.stringify(volumeId)} in project ${settings.volumeProject}`, volumeId });
      }
    });
    const only = found[0];
    if (only === undefined) throw volumeNotFound(volumeId);
    if (found.length > 1) {
      throw new StowageError(Code.InvalidArgument, `project ${settings.volumeProject} has ${String(found.length)} disks named ${volumeId} (in ${found.map((f) => f.location).join(", ")}); give the zone`, {
        metadata: { volume_id: volumeId },
      });
    }
    return only;
  }

  async #getSnapshot(snapshotId: string, signal: AbortSignal | undefined): Promise<ISnapshot | undefined> {
    const { settings, clients } = this.#ready();
    return this.#call(signal, async (o) => {
      try {
        return (await clients.snapshots.get({ project: settings.project, snapshot: snapshotId }, o))[0];
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw toPdError(error, { operation: `get snapshot ${JSON.stringify(snapshotId)}`, snapshotId });
      }
    });
  }

  /** Fails with RESOURCE_EXHAUSTED when the project's SNAPSHOTS quota is used up (Velero's pre-check); a denied or failed check is skipped. */
  async #checkSnapshotQuota(signal: AbortSignal | undefined): Promise<void> {
    const { settings, clients } = this.#ready();
    let quotas: protos.google.cloud.compute.v1.IQuota[];
    try {
      quotas = (await this.#call(signal, async (o) => (await clients.projects.get({ project: settings.project }, o))[0])).quotas ?? [];
    } catch (error) {
      if (isAborted(signal)) throw abortError(signal);
      this.#logger.debug({ err: error instanceof Error ? error.message : String(error) }, "snapshot quota check skipped");
      return;
    }
    const quota = quotas.find((q) => q.metric === "SNAPSHOTS");
    if (quota?.limit !== undefined && quota.limit !== null && quota.usage !== undefined && quota.usage !== null && quota.usage >= quota.limit) {
      throw new StowageError(Code.ResourceExhausted, `the SNAPSHOTS quota of project ${settings.project} is used up (${String(quota.usage)} of ${String(quota.limit)}); delete snapshots or raise the quota`);
    }
  }

  /** Starts a snapshot of the disk and returns it once Compute Engine shows it (usually pending). */
  async createSnapshot(input: CreateSnapshotInput, options: CallOptions = {}): Promise<Snapshot> {
    const { settings, clients } = this.#ready();
    const signal = options.signal;
    checkVolumeId(input.volumeId);
    const where = await this.#where(input.volumeId, input.zone, signal);
    await this.#checkSnapshotQuota(signal);
    const disk = await this.#getDisk(input.volumeId, where, signal);
    const tags = { ...(descriptionTags(disk.description) ?? {}), ...input.tags };
    const type = lastSegment(disk.type);
    const labels: Record<string, string> = { ...(disk.labels ?? {}), ...settings.labels, ...tagsToLabels(input.tags ?? {}) };
    if (type !== "") labels[SOURCE_DISK_LABELS.type] = type;
    if (takesIops(type) && int(disk.provisionedIops) > 0) labels[SOURCE_DISK_LABELS.iops] = String(int(disk.provisionedIops));
    if (int(disk.provisionedThroughput) > 0) labels[SOURCE_DISK_LABELS.throughput] = String(int(disk.provisionedThroughput));
    if (Object.keys(labels).length > MAX_LABELS) {
      throw new StowageError(Code.InvalidArgument, `the snapshot would carry ${String(Object.keys(labels).length)} labels (the disk's, the configured ones and the tags); Compute Engine allows ${String(MAX_LABELS)}`);
    }
    const name = snapshotName(input.volumeId);
    const context = { operation: `create snapshot of disk ${JSON.stringify(input.volumeId)}`, volumeId: input.volumeId, snapshotId: name };
    const requestId = randomUUID();
    const resource: ISnapshot = {
      name,
      sourceDisk: disk.selfLink ?? `projects/${settings.volumeProject}/${where.scope}/${where.location}/disks/${input.volumeId}`,
      description: JSON.stringify(tags),
      labels,
      snapshotType: settings.snapshotType,
      ...(settings.snapshotLocation === undefined ? {} : { storageLocations: [settings.snapshotLocation] }),
    };
    let op = await this.#call(signal, async (o) => {
      try {
        return (await clients.snapshots.insert({ project: settings.project, requestId, snapshotResource: resource }, o))[0].latestResponse as IOperation;
      } catch (error) {
        if (isNotFound(error)) throw volumeNotFound(input.volumeId);
        throw toPdError(error, context);
      }
    });
    // Return once the snapshot is visible (the request was accepted), or when the operation ends first.
    const scope = withDeadline(signal, settings.operationTimeoutMs, `operation ${op.name ?? ""} (${context.operation})`);
    try {
      let delay = 100;
      for (;;) {
        if (op.status === "DONE" && (op.error?.errors?.length ?? 0) > 0) throw operationError(op, context);
        const snapshot = await this.#getSnapshot(name, scope.signal);
        if (snapshot !== undefined) return this.#toSnapshot(snapshot);
        if (op.status === "DONE") throw new StowageError(Code.Internal, `${context.operation}: operation ${op.name ?? ""} is DONE but snapshot ${name} does not exist`, { reason: Reason.Internal });
        await this.#sleep(delay, scope.signal);
        delay = Math.min(delay * 2, 2000);
        const opName = op.name ?? "";
        op = await this.#call(scope.signal, async (o) => {
          try {
            return (await clients.globalOperations.get({ project: settings.project, operation: opName }, o))[0];
          } catch (error) {
            throw toPdError(error, { ...context, operation: `${context.operation}: get operation ${opName}` });
          }
        });
      }
    } finally {
      scope.dispose();
    }
  }

  #toSnapshot(s: ISnapshot): Snapshot {
    const status = s.status ?? "";
    const state = status === "READY" ? "ready" : status === "FAILED" ? "failed" : "pending";
    const labels = Object.fromEntries(Object.entries(s.labels ?? {}).filter(([k]) => !INTERNAL_LABELS.has(k)));
    const where = linkLocation(s.sourceDisk);
    return {
      snapshotId: s.name ?? "",
      volumeId: lastSegment(s.sourceDisk),
      state,
      sizeBytes: int(s.diskSizeGb) * GiB,
      tags: descriptionTags(s.description) ?? labels,
      createdAt: s.creationTimestamp === undefined || s.creationTimestamp === null ? undefined : new Date(s.creationTimestamp),
      zone: where?.location ?? "",
      message: state === "failed" ? `Compute Engine reports snapshot ${s.name ?? ""} FAILED; take a new snapshot` : "",
    };
  }

  /** Reports a snapshot: pending (CREATING, UPLOADING), ready or failed. A snapshot being deleted is not found. */
  async getSnapshot(snapshotId: string, options: CallOptions = {}): Promise<Snapshot> {
    this.#ready();
    checkSnapshotId(snapshotId);
    const snapshot = await this.#getSnapshot(snapshotId, options.signal);
    if (snapshot === undefined || snapshot.status === "DELETING") throw snapshotNotFound(snapshotId);
    return this.#toSnapshot(snapshot);
  }

  /** Lists the snapshots of `project`, optionally only those carrying all the given tags. */
  async listSnapshots(input: ListSnapshotsInput, options: CallOptions = {}): Promise<ListSnapshotsPage> {
    const { settings, clients } = this.#ready();
    const pageSize = input.pageSize === undefined || input.pageSize === 0 ? MAX_SNAPSHOT_PAGE_SIZE : input.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_SNAPSHOT_PAGE_SIZE) {
      throw new StowageError(Code.InvalidArgument, `pageSize must be 0 to ${String(MAX_SNAPSHOT_PAGE_SIZE)}, got ${String(pageSize)}`);
    }
    const tagFilter = input.tagFilter ?? {};
    const filter = labelFilter(tagFilter);
    const digest = createHash("sha256").update(JSON.stringify(Object.entries(tagFilter).sort())).digest("base64url").slice(0, 16);
    const gceToken = decodeToken(input.pageToken, digest);
    const [items, , response] = await this.#call(options.signal, async (o) => {
      try {
        return await clients.snapshots.list(
          {
            project: settings.project,
            maxResults: Math.min(pageSize, GCE_MAX_RESULTS),
            ...(filter === undefined ? {} : { filter }),
            ...(gceToken === undefined ? {} : { pageToken: gceToken }),
          },
          { ...o, autoPaginate: false },
        );
      } catch (error) {
        if (gceToken !== undefined && (error as { httpStatusCode?: unknown }).httpStatusCode === 400) {
          throw new StowageError(Code.InvalidArgument, "the page token is not valid; restart the listing without one", { reason: Reason.InvalidPageToken, cause: error });
        }
        throw toPdError(error, { operation: "list snapshots" });
      }
    });
    const wanted = Object.entries(tagFilter);
    const snapshots = items
      .filter((s) => s.status !== "DELETING")
      .map((s) => this.#toSnapshot(s))
      .filter((s) => wanted.every(([k, v]) => s.tags[k] === v));
    const next = response.nextPageToken ?? "";
    return { snapshots, nextPageToken: next === "" ? "" : encodeToken(next, digest) };
  }

  /** Deletes a snapshot and waits for the deletion; a missing one is success. */
  async deleteSnapshot(snapshotId: string, options: CallOptions = {}): Promise<void> {
    const { settings, clients } = this.#ready();
    checkSnapshotId(snapshotId);
    const context = { operation: `delete snapshot ${JSON.stringify(snapshotId)}`, snapshotId };
    const requestId = randomUUID();
    const op = await this.#call(options.signal, async (o) => {
      try {
        return (await clients.snapshots.delete({ project: settings.project, snapshot: snapshotId, requestId }, o))[0].latestResponse as IOperation;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        if (errorReason(error) === "resourceNotReady") {
          throw new StowageError(Code.FailedPrecondition, `snapshot ${snapshotId} cannot be deleted while Compute Engine is still creating it; retry once getSnapshot reports it ready or failed`, {
            reason: Reason.SnapshotNotReady,
            metadata: { snapshot_id: snapshotId },
            cause: error,
          });
        }
        throw toPdError(error, context);
      }
    });
    if (op === undefined) return;
    try {
      await this.#follow(op, settings.project, context, options.signal);
    } catch (error) {
      if (error instanceof StowageError && error.code === Code.NotFound) return;
      throw error;
    }
  }

  /**
   * Creates a disk from a READY snapshot and waits for its operation. Type and IOPS come from the
   * caller, else from the snapshot's source disk; the zone from the caller, else the source disk's.
   */
  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options: CallOptions = {}): Promise<string> {
    const { settings, clients } = this.#ready();
    const signal = options.signal;
    checkSnapshotId(input.snapshotId);
    const snapshot = await this.#getSnapshot(input.snapshotId, signal);
    if (snapshot === undefined || snapshot.status === "DELETING") throw snapshotNotFound(input.snapshotId);
    if (snapshot.status !== "READY") {
      throw new StowageError(Code.FailedPrecondition, `snapshot ${input.snapshotId} is ${snapshot.status ?? "not ready"}, not READY`, {
        reason: Reason.SnapshotNotReady,
        metadata: { snapshot_id: input.snapshotId },
      });
    }
    const where = await this.#restoreLocation(input.zone, snapshot, signal);
    const sourceType = snapshot.labels?.[SOURCE_DISK_LABELS.type];
    const requestedType = lastSegment((input.volumeType ?? "").trim());
    const type = requestedType !== "" ? requestedType : sourceType;
    const sameType = requestedType === "" || requestedType === sourceType;
    const iops = input.iops ?? (sameType ? int(snapshot.labels?.[SOURCE_DISK_LABELS.iops]) || undefined : undefined);
    const throughput = sameType ? int(snapshot.labels?.[SOURCE_DISK_LABELS.throughput]) || undefined : undefined;
    if (input.iops !== undefined && (type === undefined || !takesIops(type))) {
      throw new StowageError(Code.InvalidArgument, `disk type ${JSON.stringify(type ?? "pd-standard")} does not take provisioned IOPS; only pd-extreme and Hyperdisk types do`);
    }
    const name = `restore-${randomUUID()}`;
    const snapshotLabels = Object.fromEntries(Object.entries(snapshot.labels ?? {}).filter(([k]) => !INTERNAL_LABELS.has(k)));
    const labels = { ...snapshotLabels, ...settings.labels, ...tagsToLabels(input.tags ?? {}) };
    if (Object.keys(labels).length > MAX_LABELS) throw new StowageError(Code.InvalidArgument, `the disk would carry ${String(Object.keys(labels).length)} labels; Compute Engine allows ${String(MAX_LABELS)}`);
    const tags = { ...(descriptionTags(snapshot.description) ?? {}), ...input.tags };
    const disk: IDisk = {
      name,
      sourceSnapshot: snapshot.selfLink ?? `projects/${settings.project}/global/snapshots/${input.snapshotId}`,
      description: JSON.stringify(tags),
      labels,
      ...(type === undefined ? {} : { type: `projects/${settings.volumeProject}/${where.scope}/${where.location}/diskTypes/${type}` }),
      ...(iops !== undefined && type !== undefined && takesIops(type) ? { provisionedIops: iops } : {}),
      ...(throughput !== undefined && type?.startsWith("hyperdisk-") === true ? { provisionedThroughput: throughput } : {}),
      ...(where.scope === "regions" ? { replicaZones: where.replicaZones.map((z) => `projects/${settings.volumeProject}/zones/${z}`) } : {}),
    };
    const context = { operation: `create disk ${name} from snapshot ${JSON.stringify(input.snapshotId)}`, snapshotId: input.snapshotId, volumeId: name };
    const requestId = randomUUID();
    const op = await this.#call(signal, async (o) => {
      try {
        const [lro] =
          where.scope === "zones"
            ? await clients.disks.insert({ project: settings.volumeProject, zone: where.location, requestId, diskResource: disk }, o)
            : await clients.regionDisks.insert({ project: settings.volumeProject, region: where.location, requestId, diskResource: disk }, o);
        return lro.latestResponse as IOperation;
      } catch (error) {
        throw toPdError(error, context);
      }
    });
    await this.#follow(op, settings.volumeProject, context, signal);
    return name;
  }

  /** The location of a restored disk: the caller's zone, else the snapshot's source disk's. */
  async #restoreLocation(zone: string | undefined, snapshot: ISnapshot, signal: AbortSignal | undefined): Promise<DiskLocation> {
    if ((zone ?? "").trim() !== "") {
      const where = parseDiskLocation(zone);
      if (where.scope === "regions" && where.replicaZones.length !== 2) {
        throw new StowageError(Code.InvalidArgument, `a regional disk needs two replica zones; give the zone as zone__zone (e.g. ${where.location}-a__${where.location}-b)`);
      }
      return where;
    }
    const source = linkLocation(snapshot.sourceDisk);
    if (source === undefined) throw new StowageError(Code.InvalidArgument, `snapshot ${snapshot.name ?? ""} names no source disk; give the zone of the new disk`);
    if (source.scope === "zones") return { ...source, replicaZones: [] };
    let disk: IDisk;
    try {
      disk = await this.#getDisk(lastSegment(snapshot.sourceDisk), { ...source, replicaZones: [] }, signal);
    } catch (error) {
      if (error instanceof StowageError && error.reason === Reason.VolumeNotFound) {
        throw new StowageError(Code.InvalidArgument, `the regional source disk of snapshot ${snapshot.name ?? ""} is gone; give the zone of the new disk as zone__zone`);
      }
      throw error;
    }
    return { ...source, replicaZones: (disk.replicaZones ?? []).map(lastSegment) };
  }

  /** Reports a disk's type, provisioned IOPS (pd-extreme and Hyperdisk), zone and size. */
  async getVolumeInfo(input: VolumeRef, options: CallOptions = {}): Promise<Volume> {
    this.#ready();
    checkVolumeId(input.volumeId);
    const where = await this.#where(input.volumeId, input.zone, options.signal);
    const disk = await this.#getDisk(input.volumeId, where, options.signal);
    const type = lastSegment(disk.type);
    const iops = int(disk.provisionedIops);
    const zone = where.scope === "zones" ? where.location : (disk.replicaZones ?? []).map(lastSegment).join("__") || where.location;
    return {
      volumeId: disk.name ?? input.volumeId,
      volumeType: type,
      iops: takesIops(type) && iops > 0 ? iops : undefined,
      zone,
      sizeBytes: int(disk.sizeGb) * GiB,
    };
  }

  /** Deletes a disk and waits for the deletion; a missing one is success, an attached one fails with FAILED_PRECONDITION. */
  async deleteVolume(input: VolumeRef, options: CallOptions = {}): Promise<void> {
    const { settings, clients } = this.#ready();
    checkVolumeId(input.volumeId);
    let where: DiskLocation;
    let disk: IDisk;
    try {
      where = await this.#where(input.volumeId, input.zone, options.signal);
      disk = await this.#getDisk(input.volumeId, where, options.signal);
    } catch (error) {
      if (error instanceof StowageError && error.reason === Reason.VolumeNotFound) return;
      throw error;
    }
    if ((disk.users?.length ?? 0) > 0) {
      throw new StowageError(Code.FailedPrecondition, `disk ${input.volumeId} is attached to ${(disk.users ?? []).map(lastSegment).join(", ")}; detach it first`, { metadata: { volume_id: input.volumeId } });
    }
    const context = { operation: `delete disk ${JSON.stringify(input.volumeId)}`, volumeId: input.volumeId };
    const requestId = randomUUID();
    const op = await this.#call(options.signal, async (o) => {
      try {
        const [lro] =
          where.scope === "zones"
            ? await clients.disks.delete({ project: settings.volumeProject, zone: where.location, disk: input.volumeId, requestId }, o)
            : await clients.regionDisks.delete({ project: settings.volumeProject, region: where.location, disk: input.volumeId, requestId }, o);
        return lro.latestResponse as IOperation;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw toPdError(error, context);
      }
    });
    if (op === undefined) return;
    try {
      await this.#follow(op, settings.volumeProject, context, options.signal);
    } catch (error) {
      if (error instanceof StowageError && error.code === Code.NotFound) return;
      throw error;
    }
  }

  /** The disk name of an in-tree `gcePersistentDisk` or `pd.csi.storage.gke.io` PersistentVolume, or "" for others. */
  async getVolumeId(persistentVolume: unknown): Promise<string> {
    return getPdVolumeId(persistentVolume);
  }

  /** A copy of the PersistentVolume pointing at another disk (a CSI handle moves to `volumeProject`). */
  async setVolumeId(persistentVolume: unknown, volumeId: string): Promise<unknown> {
    return setPdVolumeId(persistentVolume, volumeId, this.#state?.settings.volumeProject);
  }
}

/** The project in an operation's self link, else the project the request named. */
function projectOf(op: IOperation, project: string): string {
  return /\/projects\/([^/]+)\//.exec(op.selfLink ?? "")?.[1] ?? project;
}

function encodeToken(gceToken: string, digest: string): string {
  return Buffer.from(JSON.stringify({ t: gceToken, f: digest })).toString("base64url");
}

function decodeToken(token: string | undefined, digest: string): string | undefined {
  if (token === undefined || token === "") return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const fields = parsed as { t?: unknown; f?: unknown } | undefined;
  if (typeof fields?.t !== "string" || fields.t === "" || fields.f !== digest) {
    throw new StowageError(Code.InvalidArgument, "the page token is not valid for this listing (unknown, or issued for another tag filter); restart the listing without one", {
      reason: Reason.InvalidPageToken,
    });
  }
  return fields.t;
}
