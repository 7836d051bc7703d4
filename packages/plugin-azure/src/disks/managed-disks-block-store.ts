/**
 * The Managed Disks BlockStore: Azure snapshots of managed disks, and disks restored from them,
 * through `@azure/arm-compute`.
 *
 * @packageDocumentation
 */
import type { Disk, Snapshot as AzureSnapshot } from "@azure/arm-compute";
import type { TokenCredential } from "@azure/core-auth";
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
import { redactConfig } from "@stowage/sdk/plugin";
import { createHash, randomUUID } from "node:crypto";
import { abortedError, azureErrorCode, isNotFound, toStowageError } from "../shared/errors.js";
import type { EnvironmentMap } from "../shared/credentials.js";
import { DISKS_CONFIG_KEYS, parseDisksConfig, type DisksSettings } from "./config.js";
import { formatResourceId, parseResourceId, resolveResourceId, type ComputeResourceId } from "./ids.js";
import { getAzureDiskVolumeId, setAzureDiskVolumeId, volumeIdOf, type DiskLocation } from "./persistent-volumes.js";
import { decodeTags, encodeTags, matchesTagFilter } from "./tags.js";

const GiB = 1024 ** 3;
/** Default and largest page of {@link ManagedDisksBlockStore.listSnapshots}. */
export const MAX_SNAPSHOT_PAGE_SIZE = 1000;
/** Disk SKUs whose IOPS are provisioned (and can be requested on restore). */
export const IOPS_SKUS: readonly string[] = ["UltraSSD_LRS", "PremiumV2_LRS"];
/** Longest disk-name prefix of a snapshot name (`<prefix>-<uuid>` fits Azure's 80 characters). */
const SNAPSHOT_PREFIX_MAX = 80 - 37;

/** Options of {@link ManagedDisksBlockStore}. */
export interface ManagedDisksBlockStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
  /** Environment for `$AZURE_CREDENTIALS_FILE` and workload identity; default `process.env` (only read). */
  readonly env?: EnvironmentMap | undefined;
  /** A token credential to use instead of one built from the credentials file (embedders). */
  readonly tokenCredential?: TokenCredential | undefined;
  /** Retries of throttled or failed requests; default 3. */
  readonly maxRetries?: number | undefined;
}

/** A call's cancellation: the caller's signal combined with `apiTimeout`. */
interface Deadline {
  readonly signal: AbortSignal;
  readonly caller: AbortSignal | undefined;
  readonly timeout: AbortSignal;
}

/**
 * A BlockStore on Azure managed disks.
 *
 * - Snapshot IDs are full ARM snapshot IDs. Volume IDs are disk names for disks in the credentials
 *   file's subscription and resource group, full ARM disk IDs for others; both forms are accepted.
 * - `createSnapshot`, `createVolumeFromSnapshot`, `deleteSnapshot` and `deleteVolume` follow
 *   Azure's long-running operation until the resource is provisioned (or gone), polling every
 *   `pollInterval`, for at most `apiTimeout`. An incremental snapshot may still be copying in the
 *   background then: it stays `pending` with `completionPercent` as progress until 100.
 * - Snapshot tags: the disk's, then the configured `tags`, then the caller's (the caller wins);
 *   names with `/` are stored with `-`, the originals are recorded and given back.
 * - Deleting a missing snapshot or disk succeeds; an attached disk is not deleted.
 */
export class ManagedDisksBlockStore implements BlockStore {
  readonly #logger: Logger;
  readonly #options: ManagedDisksBlockStoreOptions;
  #settings: DisksSettings | undefined;

  /** @param options - Logger, environment and credential overrides. */
  constructor(options: ManagedDisksBlockStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#options = options;
  }

  /** Validates the configuration and reads the credentials file; see the package README for the keys. */
  async init(config: PluginConfig): Promise<void> {
    const settings = await parseDisksConfig(config, {
      env: this.#options.env,
      tokenCredential: this.#options.tokenCredential,
      maxRetries: this.#options.maxRetries,
    });
    // Calls still running keep the previous client; its idle connections close with the process.
    this.#settings = settings;
    this.#logger.info({ config: redactConfig(config, DISKS_CONFIG_KEYS) }, "initialised");
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#settings?.httpClient.destroy();
    this.#settings = undefined;
  }

  #ready(): DisksSettings {
    if (this.#settings === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the Managed Disks block store is not initialised; call init first", { reason: Reason.NotInitialized });
    }
    return this.#settings;
  }

  #home(settings: DisksSettings): DiskLocation {
    return { subscriptionId: settings.diskSubscriptionId, resourceGroup: settings.diskResourceGroup };
  }

  #deadline(settings: DisksSettings, caller: AbortSignal | undefined): Deadline {
    const timeout = AbortSignal.timeout(settings.apiTimeoutMs);
    return { signal: caller === undefined ? timeout : AbortSignal.any([caller, timeout]), caller, timeout };
  }

  /** Maps a failure; aborts become CANCELLED/DEADLINE_EXCEEDED, `apiTimeout` gets its own advice. */
  #fail(error: unknown, deadline: Deadline, operation: string, resource: Record<string, string>, advice: string, notFound?: Reason): StowageError {
    if (error instanceof StowageError) return error;
    if (deadline.caller?.aborted === true) return abortedError(deadline.caller, operation, error);
    if (deadline.timeout.aborted) {
      const settings = this.#ready();
      return new StowageError(Code.DeadlineExceeded, `${operation} did not finish within apiTimeout (${settings.apiTimeoutText}); ${advice}`, {
        reason: Reason.DeadlineExceeded,
        metadata: resource,
        cause: error,
      });
    }
    const failed = /^The long-running operation has failed\.?\s*(?:([^.\s]+)\.\s*)?(.*)$/s.exec(error instanceof Error ? error.message : "");
    if (failed !== null) {
      const code = failed[1] ?? "";
      // The operation's error code decides the status, as for a failed request (QuotaExceeded → RESOURCE_EXHAUSTED).
      const mapped = toStowageError({ name: "RestError", code, message: failed[2] ?? "" }, { operation, resource });
      return new StowageError(mapped.code, `${operation} failed in Azure: ${code === "" ? "" : `${code}: `}${failed[2] ?? "the operation failed"}`, {
        ...(mapped.reason === undefined ? {} : { reason: mapped.reason }),
        metadata: { ...resource, azure_code: code },
        cause: error,
      });
    }
    return toStowageError(error, { operation, resource, ...(notFound === undefined ? {} : { notFound }) });
  }

  async #getDisk(settings: DisksSettings, volumeId: string, deadline: Deadline): Promise<{ ref: ComputeResourceId; disk: Disk }> {
    const ref = resolveResourceId("disks", volumeId, this.#home(settings));
    try {
      const disk = await settings.client(ref.subscriptionId).disks.get(ref.resourceGroup, ref.name, { abortSignal: deadline.signal });
      return { ref, disk };
    } catch (error) {
      if (isNotFound(error) && deadline.caller?.aborted !== true) throw volumeNotFound(volumeId);
      throw this.#fail(error, deadline, `get disk ${volumeId}`, { volume_id: volumeId }, "check the network path to Resource Manager or raise apiTimeout");
    }
  }

  async #getSnapshot(settings: DisksSettings, snapshotId: string, deadline: Deadline): Promise<{ ref: ComputeResourceId; snapshot: AzureSnapshot }> {
    const ref = resolveResourceId("snapshots", snapshotId, { subscriptionId: settings.snapshotSubscriptionId, resourceGroup: settings.snapshotResourceGroup });
    try {
      const snapshot = await settings.client(ref.subscriptionId).snapshots.get(ref.resourceGroup, ref.name, { abortSignal: deadline.signal });
      return { ref, snapshot };
    } catch (error) {
      if (isNotFound(error) && deadline.caller?.aborted !== true) throw snapshotNotFound(snapshotId);
      throw this.#fail(error, deadline, `get snapshot ${snapshotId}`, { snapshot_id: snapshotId }, "check the network path to Resource Manager or raise apiTimeout");
    }
  }

  /**
   * Snapshots a disk and waits for Azure's operation (at most `apiTimeout`); the snapshot is
   * `ready`, or `pending` with progress while an incremental copy continues.
   */
  async createSnapshot(input: CreateSnapshotInput, options: CallOptions = {}): Promise<Snapshot> {
    const settings = this.#ready();
    const deadline = this.#deadline(settings, options.signal);
    const { ref: diskRef, disk } = await this.#getDisk(settings, input.volumeId, deadline);
    const name = `${diskRef.name.slice(0, SNAPSHOT_PREFIX_MAX)}-${randomUUID()}`;
    const snapshotRef = { subscriptionId: settings.snapshotSubscriptionId, resourceGroup: settings.snapshotResourceGroup, name };
    const snapshotId = formatResourceId("snapshots", snapshotRef);
    const tags = encodeTags({ ...decodeTags(disk.tags), ...settings.tags, ...input.tags });
    const operation = `create snapshot ${snapshotId} of disk ${input.volumeId}`;
    try {
      const poller = settings.client(snapshotRef.subscriptionId).snapshots.createOrUpdate(
        snapshotRef.resourceGroup,
        name,
        {
          location: disk.location,
          tags,
          creationData: { createOption: "Copy", sourceResourceId: disk.id ?? formatResourceId("disks", diskRef) },
          ...(settings.incremental === undefined ? {} : { incremental: settings.incremental }),
        },
        { abortSignal: deadline.signal, updateIntervalInMs: settings.pollIntervalMs },
      );
      const created = await poller.pollUntilDone({ abortSignal: deadline.signal });
      this.#logger.info({ snapshotId, volumeId: input.volumeId }, "snapshot created");
      return this.#toSnapshot(settings, created, snapshotId);
    } catch (error) {
      if (azureErrorCode(error) === "ResourceGroupNotFound") {
        throw new StowageError(
          Code.FailedPrecondition,
          `resource group ${JSON.stringify(snapshotRef.resourceGroup)} of the snapshots does not exist in subscription ${snapshotRef.subscriptionId}; create it or fix the "resourceGroup" setting`,
          { metadata: { volume_id: input.volumeId }, cause: error },
        );
      }
      throw this.#fail(
        error,
        deadline,
        operation,
        { volume_id: input.volumeId, snapshot_id: snapshotId },
        `the snapshot may still be created: look for it with GetSnapshot or ListSnapshots by tag before retrying, and raise apiTimeout for large disks`,
      );
    }
  }

  /** Reports a snapshot: `pending` (with `completionPercent` as progress), `ready` or `failed`. */
  async getSnapshot(snapshotId: string, options: CallOptions = {}): Promise<Snapshot> {
    const settings = this.#ready();
    const { snapshot } = await this.#getSnapshot(settings, snapshotId, this.#deadline(settings, options.signal));
    return this.#toSnapshot(settings, snapshot, snapshotId);
  }

  /** Lists the snapshots of the configured resource group, optionally only those carrying all the given tags. */
  async listSnapshots(input: ListSnapshotsInput, options: CallOptions = {}): Promise<ListSnapshotsPage> {
    const settings = this.#ready();
    const pageSize = input.pageSize === undefined || input.pageSize === 0 ? MAX_SNAPSHOT_PAGE_SIZE : input.pageSize;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_SNAPSHOT_PAGE_SIZE) {
      throw new StowageError(Code.InvalidArgument, `pageSize must be 0 to ${String(MAX_SNAPSHOT_PAGE_SIZE)}, got ${String(input.pageSize)}`);
    }
    const filter = input.tagFilter ?? {};
    const filterHash = createHash("sha256")
      .update(JSON.stringify(Object.entries(filter).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
      .digest("base64url")
      .slice(0, 16);
    const listPrefix = `${settings.endpoint}/subscriptions/${settings.snapshotSubscriptionId}/resourceGroups/${settings.snapshotResourceGroup}/providers/Microsoft.Compute/snapshots`;
    let { link, skip } = decodeListToken(input.pageToken, filterHash, listPrefix);
    const deadline = this.#deadline(settings, options.signal);
    const client = settings.client(settings.snapshotSubscriptionId);
    const snapshots: Snapshot[] = [];
    try {
      for (;;) {
        const pages = client.snapshots.listByResourceGroup(settings.snapshotResourceGroup, { abortSignal: deadline.signal }).byPage(link === undefined ? undefined : { continuationToken: link });
        const result: IteratorResult<AzureSnapshot[] & { continuationToken?: string }> = await pages.next();
        const page = result.done === true ? undefined : result.value;
        const items: AzureSnapshot[] = page ?? [];
        const next = page?.continuationToken;
        for (let i = skip; i < items.length; i++) {
          const item = items[i];
          if (item === undefined || !matchesTagFilter(item.tags, filter)) continue;
          snapshots.push(this.#toSnapshot(settings, item, item.id ?? ""));
          if (snapshots.length === pageSize) {
            const more = i + 1 < items.length ? encodeListToken({ link, skip: i + 1, filterHash }) : next !== undefined && next !== "" ? encodeListToken({ link: next, skip: 0, filterHash }) : "";
            return { snapshots, nextPageToken: more };
          }
        }
        if (next === undefined || next === "") return { snapshots, nextPageToken: "" };
        link = next;
        skip = 0;
      }
    } catch (error) {
      if (azureErrorCode(error) === "InvalidSkipToken") throw new StowageError(Code.InvalidArgument, "the page token is not valid (expired); restart the listing", { reason: Reason.InvalidPageToken, cause: error });
      if (azureErrorCode(error) === "ResourceGroupNotFound") return { snapshots: [], nextPageToken: "" };
      throw this.#fail(error, deadline, "list snapshots", {}, "list with a smaller pageSize or raise apiTimeout");
    }
  }

  /** Deletes a snapshot and waits for Azure's operation; a missing one is success. */
  async deleteSnapshot(snapshotId: string, options: CallOptions = {}): Promise<void> {
    const settings = this.#ready();
    const ref = resolveResourceId("snapshots", snapshotId, { subscriptionId: settings.snapshotSubscriptionId, resourceGroup: settings.snapshotResourceGroup });
    const deadline = this.#deadline(settings, options.signal);
    try {
      await settings
        .client(ref.subscriptionId)
        .snapshots.delete(ref.resourceGroup, ref.name, { abortSignal: deadline.signal, updateIntervalInMs: settings.pollIntervalMs })
        .pollUntilDone({ abortSignal: deadline.signal });
    } catch (error) {
      if (isNotFound(error) && deadline.caller?.aborted !== true && !deadline.timeout.aborted) return;
      if (azureErrorCode(error) === "Conflict") {
        throw new StowageError(Code.FailedPrecondition, `snapshot ${snapshotId} is busy (another operation, such as its creation, is running); retry once GetSnapshot reports it READY or FAILED`, {
          reason: Reason.SnapshotNotReady,
          metadata: { snapshot_id: snapshotId },
          cause: error,
        });
      }
      throw this.#fail(error, deadline, `delete snapshot ${snapshotId}`, { snapshot_id: snapshotId }, "the deletion may still complete: check with GetSnapshot and retry DeleteSnapshot");
    }
  }

  /**
   * Creates disk `restore-<uuid>` from a ready snapshot in the credentials file's resource group
   * and waits for it (at most `apiTimeout`). The SKU is `volumeType` (default: Azure's); the zone is
   * the number at the end of `zone` (`westeurope-2` → `2`), not used for zone-redundant SKUs; IOPS
   * only for UltraSSD_LRS and PremiumV2_LRS. Returns the disk name.
   */
  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options: CallOptions = {}): Promise<string> {
    const settings = this.#ready();
    const deadline = this.#deadline(settings, options.signal);
    const { snapshot } = await this.#getSnapshot(settings, input.snapshotId, deadline);
    const state = this.#toSnapshot(settings, snapshot, input.snapshotId);
    if (state.state !== "ready") {
      throw new StowageError(
        Code.FailedPrecondition,
        state.state === "failed"
          ? `snapshot ${input.snapshotId} FAILED (${state.message}); take a new snapshot`
          : `snapshot ${input.snapshotId} is still PENDING${state.progressPercent === undefined ? "" : ` (${String(state.progressPercent)}% copied)`}; poll GetSnapshot until READY, then retry`,
        { reason: Reason.SnapshotNotReady, metadata: { snapshot_id: input.snapshotId } },
      );
    }
    const location = snapshot.location;
    const sku = nonEmpty(input.volumeType);
    const zone = this.#restoreZone(input.zone, location, sku);
    if (input.iops !== undefined && (sku === undefined || !IOPS_SKUS.includes(sku))) {
      throw new StowageError(Code.InvalidArgument, `iops can be set only for ${IOPS_SKUS.join(" and ")} disks, not ${sku ?? "the default type"}; omit iops or choose one of those volume types`);
    }
    const diskRef = { subscriptionId: settings.diskSubscriptionId, resourceGroup: settings.diskResourceGroup, name: `restore-${randomUUID()}` };
    const volumeId = volumeIdOf(diskRef, this.#home(settings));
    const tags = encodeTags(input.tags ?? {});
    try {
      await settings
        .client(diskRef.subscriptionId)
        .disks.createOrUpdate(
          diskRef.resourceGroup,
          diskRef.name,
          {
            location,
            tags,
            ...(sku === undefined ? {} : { sku: { name: sku } }),
            ...(zone === undefined ? {} : { zones: [zone] }),
            creationData: { createOption: "Copy", sourceResourceId: snapshot.id ?? formatResourceId("snapshots", resolveResourceId("snapshots", input.snapshotId, { subscriptionId: settings.snapshotSubscriptionId, resourceGroup: settings.snapshotResourceGroup })) },
            ...(input.iops === undefined ? {} : { diskIopsReadWrite: input.iops }),
          },
          { abortSignal: deadline.signal, updateIntervalInMs: settings.pollIntervalMs },
        )
        .pollUntilDone({ abortSignal: deadline.signal });
      this.#logger.info({ volumeId, snapshotId: input.snapshotId }, "disk restored");
      return volumeId;
    } catch (error) {
      if (azureErrorCode(error) === "ResourceGroupNotFound") {
        throw new StowageError(
          Code.FailedPrecondition,
          `resource group ${JSON.stringify(diskRef.resourceGroup)} for restored disks (AZURE_RESOURCE_GROUP of the credentials file) does not exist in subscription ${diskRef.subscriptionId}; fix the credentials file`,
          { metadata: { snapshot_id: input.snapshotId }, cause: error },
        );
      }
      throw this.#fail(
        error,
        deadline,
        `create disk ${diskRef.name} from snapshot ${input.snapshotId}`,
        { snapshot_id: input.snapshotId, volume_id: volumeId },
        `the disk may still be created: check disk ${volumeId}, delete it if unwanted, and raise apiTimeout for large disks`,
        Reason.SnapshotNotFound,
      );
    }
  }

  #restoreZone(zone: string | undefined, location: string | undefined, sku: string | undefined): string | undefined {
    const text = (zone ?? "").trim();
    if (text === "" || text === "0") return undefined;
    const match = /^(?:(.+)-)?([1-9])$/.exec(text);
    if (match === null) {
      if (location !== undefined && normaliseRegion(text) === normaliseRegion(location)) return undefined;
      throw new StowageError(Code.InvalidArgument, `zone ${JSON.stringify(text)} is not an Azure zone; use <region>-<n> (e.g. westeurope-1), <n>, or leave it empty`);
    }
    const region = match[1];
    if (region !== undefined && location !== undefined && normaliseRegion(region) !== normaliseRegion(location)) {
      throw new StowageError(Code.InvalidArgument, `zone ${JSON.stringify(text)} is not in the snapshot's region ${location}; disks are restored in the snapshot's region`);
    }
    if (sku?.endsWith("_ZRS") === true) return undefined;
    return match[2];
  }

  /** Reports a disk's SKU, provisioned IOPS (UltraSSD_LRS, PremiumV2_LRS), zone (`<region>-<n>`) and size. */
  async getVolumeInfo(input: VolumeRef, options: CallOptions = {}): Promise<Volume> {
    const settings = this.#ready();
    const { disk } = await this.#getDisk(settings, input.volumeId, this.#deadline(settings, options.signal));
    const sku = disk.sku?.name ?? "";
    const zone = disk.zones?.[0];
    const iops = IOPS_SKUS.includes(sku) && typeof disk.diskIopsReadWrite === "number" && disk.diskIopsReadWrite > 0 ? disk.diskIopsReadWrite : undefined;
    return {
      volumeId: input.volumeId,
      volumeType: sku,
      ...(iops === undefined ? {} : { iops }),
      zone: zone === undefined || zone === "" ? "" : `${disk.location}-${zone}`,
      sizeBytes: disk.diskSizeBytes ?? (disk.diskSizeGB ?? 0) * GiB,
    };
  }

  /** Deletes a disk and waits for Azure's operation; a missing disk is success, an attached one is refused. */
  async deleteVolume(input: VolumeRef, options: CallOptions = {}): Promise<void> {
    const settings = this.#ready();
    const deadline = this.#deadline(settings, options.signal);
    let found: { ref: ComputeResourceId; disk: Disk };
    try {
      found = await this.#getDisk(settings, input.volumeId, deadline);
    } catch (error) {
      if (error instanceof StowageError && error.reason === Reason.VolumeNotFound) return;
      throw error;
    }
    if ((found.disk.managedBy ?? "") !== "") {
      throw new StowageError(Code.FailedPrecondition, `disk ${input.volumeId} is attached to ${found.disk.managedBy ?? ""}; detach it first`, { metadata: { volume_id: input.volumeId } });
    }
    try {
      await settings
        .client(found.ref.subscriptionId)
        .disks.delete(found.ref.resourceGroup, found.ref.name, { abortSignal: deadline.signal, updateIntervalInMs: settings.pollIntervalMs })
        .pollUntilDone({ abortSignal: deadline.signal });
    } catch (error) {
      if (isNotFound(error) && deadline.caller?.aborted !== true && !deadline.timeout.aborted) return;
      if (azureErrorCode(error) === "OperationNotAllowed") {
        throw new StowageError(Code.FailedPrecondition, `disk ${input.volumeId} cannot be deleted now (in use): ${error instanceof Error ? error.message : String(error)}`, { metadata: { volume_id: input.volumeId }, cause: error });
      }
      throw this.#fail(error, deadline, `delete disk ${input.volumeId}`, { volume_id: input.volumeId }, "the deletion may still complete: retry DeleteVolume later");
    }
  }

  /** The volume ID of an in-tree `azureDisk` or `disk.csi.azure.com` PersistentVolume, or "" for others. */
  async getVolumeId(persistentVolume: unknown): Promise<string> {
    return getAzureDiskVolumeId(persistentVolume, this.#home(this.#ready()));
  }

  /** A copy of the PersistentVolume pointing at another disk. */
  async setVolumeId(persistentVolume: unknown, volumeId: string): Promise<unknown> {
    return setAzureDiskVolumeId(persistentVolume, volumeId, this.#home(this.#ready()));
  }

  #toSnapshot(settings: DisksSettings, snapshot: AzureSnapshot, fallbackId: string): Snapshot {
    const source = snapshot.creationData?.sourceResourceId ?? "";
    const sourceDisk = parseResourceId("disks", source);
    const volumeId = sourceDisk === undefined ? source : volumeIdOf(sourceDisk, this.#home(settings));
    const provisioning = (snapshot.provisioningState ?? "").toLowerCase();
    const copyError = snapshot.copyCompletionError;
    const percent = typeof snapshot.completionPercent === "number" ? Math.max(0, Math.min(100, Math.floor(snapshot.completionPercent))) : undefined;
    let state: Snapshot["state"];
    let message = "";
    if (provisioning === "failed" || copyError !== undefined) {
      state = "failed";
      message = copyError === undefined ? "Azure reports provisioningState Failed for the snapshot" : `${copyError.errorCode}: ${copyError.errorMessage}`;
    } else if (provisioning === "succeeded" && (percent === undefined || percent >= 100)) {
      state = "ready";
    } else {
      state = "pending";
    }
    return {
      snapshotId: snapshot.id ?? fallbackId,
      volumeId,
      state,
      ...(state === "pending" && percent !== undefined ? { progressPercent: percent } : {}),
      sizeBytes: snapshot.diskSizeBytes ?? (snapshot.diskSizeGB ?? 0) * GiB,
      tags: decodeTags(snapshot.tags),
      createdAt: snapshot.timeCreated,
      zone: snapshot.location,
      message,
    };
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function normaliseRegion(region: string): string {
  return region.replace(/\s+/g, "").toLowerCase();
}

interface ListPosition {
  readonly link: string | undefined;
  readonly skip: number;
  readonly filterHash: string;
}

function encodeListToken(position: ListPosition): string {
  return Buffer.from(JSON.stringify({ l: position.link ?? "", s: position.skip, f: position.filterHash })).toString("base64url");
}

function decodeListToken(token: string | undefined, filterHash: string, listPrefix: string): { link: string | undefined; skip: number } {
  if (token === undefined || token === "") return { link: undefined, skip: 0 };
  const invalid = (why: string): StowageError => new StowageError(Code.InvalidArgument, `the page token is not valid (${why}); restart the listing without a token`, { reason: Reason.InvalidPageToken });
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw invalid("not a token of this plugin");
  }
  const fields = parsed as { l?: unknown; s?: unknown; f?: unknown } | null;
  if (fields === null || typeof fields.l !== "string" || typeof fields.s !== "number" || !Number.isInteger(fields.s) || fields.s < 0 || typeof fields.f !== "string") {
    throw invalid("not a token of this plugin");
  }
  if (fields.f !== filterHash) throw invalid("it belongs to a listing with another tag filter");
  // The link is followed with the bearer token: it must point at this listing, nowhere else.
  if (fields.l !== "" && !fields.l.toLowerCase().startsWith(`${listPrefix.toLowerCase()}?`)) throw invalid("it belongs to another listing");
  return { link: fields.l === "" ? undefined : fields.l, skip: fields.s };
}
