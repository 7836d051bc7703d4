/**
 * The EBS BlockStore: EC2 snapshots of EBS volumes, and volumes restored from them.
 *
 * @packageDocumentation
 */
import type { Snapshot as Ec2Snapshot, Tag, Volume as Ec2Volume, VolumeType } from "@aws-sdk/client-ec2";
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
import { awsErrorCode, toStowageError } from "../shared/errors.js";
import { EBS_CONFIG_KEYS, parseEbsConfig, type EbsSettings } from "./config.js";
import { getEbsVolumeId, setEbsVolumeId } from "./persistent-volumes.js";

const GiB = 1024 * 1024 * 1024;
/** Tags recording the source volume's performance settings on each snapshot, for restores. */
export const SOURCE_VOLUME_TAGS = {
  /** The source volume's type (gp3, io2, ...). */
  type: "stowage.io/source-volume-type",
  /** The source volume's provisioned IOPS. */
  iops: "stowage.io/source-volume-iops",
  /** The source volume's throughput in MiB/s (gp3). */
  throughput: "stowage.io/source-volume-throughput",
} as const;
/** Default and largest page of {@link EbsBlockStore.listSnapshots}. */
export const MAX_SNAPSHOT_PAGE_SIZE = 1000;

/** Options of {@link EbsBlockStore}. */
export interface EbsBlockStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
}

/**
 * A BlockStore on Amazon EBS.
 *
 * - Snapshots carry the volume's tags merged with the caller's (the caller wins), plus the source
 *   volume's type, IOPS and throughput, so restored volumes keep them (gp3 included).
 * - Neither `createSnapshot` nor `createVolumeFromSnapshot` waits: poll `getSnapshot`, which maps
 *   EC2's `pending`/`completed`/`error` states and its `Progress` percentage.
 * - Deleting a missing snapshot or volume succeeds.
 */
export class EbsBlockStore implements BlockStore {
  readonly #logger: Logger;
  #settings: EbsSettings | undefined;

  /** @param options - Logger. */
  constructor(options: EbsBlockStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
  }

  /** Validates the configuration and builds the EC2 client; see the package README for the keys. */
  async init(config: PluginConfig): Promise<void> {
    const settings = await parseEbsConfig(config);
    this.#settings?.client.destroy();
    this.#settings = settings;
    this.#logger.info({ config: redactConfig(config, EBS_CONFIG_KEYS) }, "initialised");
  }

  /** Releases the HTTP connections. */
  close(): void {
    this.#settings?.client.destroy();
    this.#settings = undefined;
  }

  /** Sends one EC2 request under the caller's signal and `requestTimeout`. */
  #send<T>(signal: AbortSignal | undefined, what: string, request: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    return withRequestTimeout(signal, this.#ready().timeouts.requestTimeoutMs, what, request);
  }

  #ready(): EbsSettings {
    if (this.#settings === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the EBS block store is not initialised; call init first", { reason: Reason.NotInitialized });
    }
    return this.#settings;
  }

  async #describeVolume(volumeId: string, signal: AbortSignal | undefined): Promise<Ec2Volume> {
    const { client, sdk } = this.#ready();
    try {
      const out = await this.#send(signal, "DescribeVolumes", (abortSignal) => client.send(new sdk.DescribeVolumesCommand({ VolumeIds: [volumeId] }), { abortSignal }));
      const volume = out.Volumes?.[0];
      if (volume === undefined || out.Volumes?.length !== 1) throw volumeNotFound(volumeId);
      return volume;
    } catch (error) {
      if (awsErrorCode(error) === "InvalidVolume.NotFound" || awsErrorCode(error) === "InvalidVolumeID.Malformed") throw volumeNotFound(volumeId);
      throw toStowageError(error, { operation: `describe volume ${volumeId}` });
    }
  }

  async #describeSnapshot(snapshotId: string, signal: AbortSignal | undefined): Promise<Ec2Snapshot> {
    const { client, sdk } = this.#ready();
    try {
      const out = await this.#send(signal, "DescribeSnapshots", (abortSignal) => client.send(new sdk.DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }), { abortSignal }));
      const snapshot = out.Snapshots?.[0];
      if (snapshot === undefined) throw snapshotNotFound(snapshotId);
      return snapshot;
    } catch (error) {
      if (isSnapshotNotFound(error)) throw snapshotNotFound(snapshotId);
      throw toStowageError(error, { operation: `describe snapshot ${snapshotId}` });
    }
  }

  /** Starts a snapshot of the volume and returns it (usually pending). */
  async createSnapshot(input: CreateSnapshotInput, options: CallOptions = {}): Promise<Snapshot> {
    const { client, sdk } = this.#ready();
    const volume = await this.#describeVolume(input.volumeId, options.signal);
    const tags: Record<string, string> = { ...tagMap(volume.Tags) };
    if (volume.VolumeType !== undefined) tags[SOURCE_VOLUME_TAGS.type] = volume.VolumeType;
    if (volume.Iops !== undefined) tags[SOURCE_VOLUME_TAGS.iops] = String(volume.Iops);
    if (volume.Throughput !== undefined) tags[SOURCE_VOLUME_TAGS.throughput] = String(volume.Throughput);
    Object.assign(tags, input.tags);
    try {
      const command = new sdk.CreateSnapshotCommand({
        VolumeId: input.volumeId,
        TagSpecifications: [{ ResourceType: "snapshot", Tags: tagList(tags) }],
      });
      const out = await this.#send(options.signal, "CreateSnapshot", (abortSignal) => client.send(command, { abortSignal }));
      return toSnapshot({ ...out, Tags: out.Tags ?? tagList(tags) }, volume.AvailabilityZone ?? "");
    } catch (error) {
      throw toStowageError(error, { operation: `create snapshot of ${input.volumeId}` });
    }
  }

  /** Reports a snapshot: pending with progress, ready, or failed. */
  async getSnapshot(snapshotId: string, options: CallOptions = {}): Promise<Snapshot> {
    return toSnapshot(await this.#describeSnapshot(snapshotId, options.signal), "");
  }

  /** Lists this account's snapshots, optionally only those carrying all the given tags. */
  async listSnapshots(input: ListSnapshotsInput, options: CallOptions = {}): Promise<ListSnapshotsPage> {
    const { client, sdk } = this.#ready();
    const pageSize = input.pageSize ?? MAX_SNAPSHOT_PAGE_SIZE;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_SNAPSHOT_PAGE_SIZE) {
      throw new StowageError(Code.InvalidArgument, `pageSize must be 1 to ${MAX_SNAPSHOT_PAGE_SIZE}, got ${pageSize}`);
    }
    const filters = Object.entries(input.tagFilter ?? {}).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
    const position = decodeSnapshotToken(input.pageToken);
    let out;
    try {
      const command = new sdk.DescribeSnapshotsCommand({
        OwnerIds: ["self"],
        ...(filters.length === 0 ? {} : { Filters: filters }),
        // EC2 pages hold at least 5 snapshots; smaller pages are cut from them (see the token).
        MaxResults: Math.max(5, pageSize),
        ...(position.ec2Token === undefined ? {} : { NextToken: position.ec2Token }),
      });
      out = await this.#send(options.signal, "DescribeSnapshots", (abortSignal) => client.send(command, { abortSignal }));
    } catch (error) {
      if (awsErrorCode(error) === "InvalidParameterValue" && position.ec2Token !== undefined) {
        throw new StowageError(Code.InvalidArgument, "the page token is not valid", { reason: Reason.InvalidPageToken, cause: error });
      }
      throw toStowageError(error, { operation: "list snapshots", signal: options.signal });
    }
    const all = out.Snapshots ?? [];
    const end = position.skip + pageSize;
    const snapshots = all.slice(position.skip, end).map((s) => toSnapshot(s, ""));
    let nextPageToken = "";
    if (end < all.length) nextPageToken = encodeSnapshotToken({ ec2Token: position.ec2Token, skip: end });
    else if (out.NextToken !== undefined && out.NextToken !== "") nextPageToken = encodeSnapshotToken({ ec2Token: out.NextToken, skip: 0 });
    return { snapshots, nextPageToken };
  }

  /** Deletes a snapshot; a missing one is success. */
  async deleteSnapshot(snapshotId: string, options: CallOptions = {}): Promise<void> {
    const { client, sdk } = this.#ready();
    try {
      await this.#send(options.signal, "DeleteSnapshot", (abortSignal) => client.send(new sdk.DeleteSnapshotCommand({ SnapshotId: snapshotId }), { abortSignal }));
    } catch (error) {
      if (isSnapshotNotFound(error)) return;
      throw toStowageError(error, { operation: `delete snapshot ${snapshotId}` });
    }
  }

  /**
   * Creates a volume from a completed snapshot. Type, IOPS and throughput come from the caller, else
   * from the snapshot's source volume; the zone from the caller, else the source volume's.
   */
  async createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options: CallOptions = {}): Promise<string> {
    const { client, sdk, ebsKmsKeyId } = this.#ready();
    const snapshot = await this.#describeSnapshot(input.snapshotId, options.signal);
    if (snapshot.State !== "completed") {
      throw new StowageError(Code.FailedPrecondition, `snapshot ${input.snapshotId} is ${snapshot.State ?? "not ready"}, not completed`, {
        reason: Reason.SnapshotNotReady,
        metadata: { snapshot_id: input.snapshotId },
      });
    }
    const tags = tagMap(snapshot.Tags);
    let source: Ec2Volume | undefined;
    const needSource = tags[SOURCE_VOLUME_TAGS.type] === undefined || (input.zone ?? "") === "";
    if (needSource && snapshot.VolumeId !== undefined) {
      source = await this.#describeVolume(snapshot.VolumeId, options.signal).catch(() => undefined);
    }
    const volumeType = nonEmpty(input.volumeType) ?? tags[SOURCE_VOLUME_TAGS.type] ?? source?.VolumeType;
    const sameType = nonEmpty(input.volumeType) === undefined || input.volumeType === (tags[SOURCE_VOLUME_TAGS.type] ?? source?.VolumeType);
    const iops = input.iops ?? (sameType ? numberOrUndefined(tags[SOURCE_VOLUME_TAGS.iops]) ?? source?.Iops : undefined);
    const throughput = sameType ? (numberOrUndefined(tags[SOURCE_VOLUME_TAGS.throughput]) ?? source?.Throughput) : undefined;
    const zone = nonEmpty(input.zone) ?? source?.AvailabilityZone;
    if (zone === undefined) {
      throw new StowageError(Code.InvalidArgument, `no zone given for the volume restored from ${input.snapshotId}, and its source volume is gone`);
    }
    const takesIops = volumeType === "io1" || volumeType === "io2" || volumeType === "gp3";
    const volumeTags = { ...input.tags };
    try {
      const command = new sdk.CreateVolumeCommand({
        SnapshotId: input.snapshotId,
        AvailabilityZone: zone,
        ...(volumeType === undefined ? {} : { VolumeType: volumeType as VolumeType }),
        ...(takesIops && iops !== undefined ? { Iops: iops } : {}),
        ...(volumeType === "gp3" && throughput !== undefined ? { Throughput: throughput } : {}),
        ...(ebsKmsKeyId === undefined ? (snapshot.Encrypted === true ? { Encrypted: true } : {}) : { Encrypted: true, KmsKeyId: ebsKmsKeyId }),
        ...(Object.keys(volumeTags).length === 0 ? {} : { TagSpecifications: [{ ResourceType: "volume", Tags: tagList(volumeTags) }] }),
      });
      const out = await this.#send(options.signal, "CreateVolume", (abortSignal) => client.send(command, { abortSignal }));
      return out.VolumeId ?? "";
    } catch (error) {
      throw toStowageError(error, { operation: `create volume from ${input.snapshotId}` });
    }
  }

  /** Reports a volume's type, IOPS, zone and size. */
  async getVolumeInfo(input: VolumeRef, options: CallOptions = {}): Promise<Volume> {
    const volume = await this.#describeVolume(input.volumeId, options.signal);
    return {
      volumeId: volume.VolumeId ?? input.volumeId,
      volumeType: volume.VolumeType ?? "",
      iops: volume.Iops,
      zone: volume.AvailabilityZone ?? "",
      sizeBytes: (volume.Size ?? 0) * GiB,
    };
  }

  /** Deletes a volume; a missing one is success. */
  async deleteVolume(input: VolumeRef, options: CallOptions = {}): Promise<void> {
    const { client, sdk } = this.#ready();
    try {
      await this.#send(options.signal, "DeleteVolume", (abortSignal) => client.send(new sdk.DeleteVolumeCommand({ VolumeId: input.volumeId }), { abortSignal }));
    } catch (error) {
      if (awsErrorCode(error) === "InvalidVolume.NotFound") return;
      throw toStowageError(error, { operation: `delete volume ${input.volumeId}` });
    }
  }

  /** The EBS volume ID of an in-tree or `ebs.csi.aws.com` PersistentVolume, or "" for others. */
  async getVolumeId(persistentVolume: unknown): Promise<string> {
    return getEbsVolumeId(persistentVolume);
  }

  /** A copy of the PersistentVolume pointing at another EBS volume. */
  async setVolumeId(persistentVolume: unknown, volumeId: string): Promise<unknown> {
    return setEbsVolumeId(persistentVolume, volumeId);
  }
}

interface SnapshotPosition {
  readonly ec2Token: string | undefined;
  readonly skip: number;
}

function encodeSnapshotToken(position: SnapshotPosition): string {
  return Buffer.from(JSON.stringify({ t: position.ec2Token ?? "", s: position.skip })).toString("base64url");
}

function decodeSnapshotToken(token: string | undefined): SnapshotPosition {
  if (token === undefined || token === "") return { ec2Token: undefined, skip: 0 };
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const fields = parsed as { t?: unknown; s?: unknown } | undefined;
  if (typeof fields?.t !== "string" || typeof fields.s !== "number" || !Number.isInteger(fields.s) || fields.s < 0) {
    throw new StowageError(Code.InvalidArgument, "the page token is not valid", { reason: Reason.InvalidPageToken });
  }
  return { ec2Token: fields.t === "" ? undefined : fields.t, skip: fields.s };
}

function isSnapshotNotFound(error: unknown): boolean {
  const code = awsErrorCode(error);
  return code === "InvalidSnapshot.NotFound" || code === "InvalidSnapshotID.Malformed";
}

/** Maps an EC2 snapshot to the contract's. */
export function toSnapshot(snapshot: Ec2Snapshot, zone: string): Snapshot {
  const state = snapshot.State === "completed" ? "ready" : snapshot.State === "error" ? "failed" : "pending";
  const progress = /^(\d{1,3})(?:\.\d+)?%?$/.exec(snapshot.Progress ?? "");
  return {
    snapshotId: snapshot.SnapshotId ?? "",
    volumeId: snapshot.VolumeId ?? "",
    state,
    ...(state === "pending" && progress !== null ? { progressPercent: Math.min(100, Number(progress[1])) } : {}),
    sizeBytes: (snapshot.VolumeSize ?? 0) * GiB,
    tags: tagMap(snapshot.Tags),
    createdAt: snapshot.StartTime,
    zone,
    message: state === "failed" ? (snapshot.StateMessage ?? "the snapshot failed") : "",
  };
}

function tagMap(tags: readonly Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? "";
  return out;
}

function tagList(tags: Readonly<Record<string, string>>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

function numberOrUndefined(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}
