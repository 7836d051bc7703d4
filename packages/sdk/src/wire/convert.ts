/**
 * Conversions between the public TypeScript types (types.ts) and the generated wire messages.
 * int64 fields are bigint on the wire and number in the API (sizes stay far below 2^53).
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, StowageError } from "../errors.js";
import { Capability as WireCapability, PluginKind as WirePluginKind, type PluginDescriptor as WireDescriptor, PluginDescriptorSchema } from "../gen/stowage/v1/plugin_info_pb.js";
import {
  ObjectInfoSchema,
  ObjectProtectionSchema,
  RetentionMode as WireRetentionMode,
  SignedURLMethod,
  type ObjectInfo as WireObjectInfo,
  type ObjectProtection as WireObjectProtection,
  type Retention as WireRetention,
} from "../gen/stowage/v1/object_store_pb.js";
import { SnapshotSchema, SnapshotState as WireSnapshotState, VolumeSchema, type Snapshot as WireSnapshot, type Volume as WireVolume } from "../gen/stowage/v1/block_store_pb.js";
import type {
  Capability,
  ObjectInfo,
  ObjectProtection,
  PluginDescriptor,
  PluginKind,
  ProtectionInput,
  Retention,
  RetentionMode,
  SignedUrlMethod,
  Snapshot,
  SnapshotState,
  Volume,
} from "../types.js";

/** bigint from the wire to number, refusing values beyond 2^53. */
export function toNumber(value: bigint): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new StowageError(Code.OutOfRange, `integer ${value.toString()} is too large`);
  return n;
}

function dateOf(ts: Timestamp | undefined): Date | undefined {
  return ts === undefined ? undefined : timestampDate(ts);
}

/** ObjectInfo to the wire. */
export function objectInfoToWire(info: ObjectInfo): WireObjectInfo {
  return create(ObjectInfoSchema, {
    key: info.key,
    size: BigInt(info.size),
    etag: info.etag,
    ...(info.lastModified === undefined ? {} : { lastModified: timestampFromDate(info.lastModified) }),
    contentType: info.contentType,
    metadata: { ...info.metadata },
    ...(info.protection === undefined ? {} : { protection: protectionToWire(info.protection) }),
  });
}

/** ObjectInfo from the wire. */
export function objectInfoFromWire(info: WireObjectInfo): ObjectInfo {
  return {
    key: info.key,
    size: toNumber(info.size),
    etag: info.etag,
    lastModified: dateOf(info.lastModified),
    contentType: info.contentType,
    metadata: info.metadata,
    ...(info.protection === undefined ? {} : { protection: protectionFromWire(info.protection) }),
  };
}

/** Retention mode to the wire. */
export function retentionModeToWire(mode: RetentionMode): WireRetentionMode {
  return mode === "compliance" ? WireRetentionMode.COMPLIANCE : WireRetentionMode.GOVERNANCE;
}

/** Retention mode from the wire; UNSPECIFIED and unknown values are refused (clause 5.9.4). */
export function retentionModeFromWire(mode: WireRetentionMode): RetentionMode {
  if (mode === WireRetentionMode.GOVERNANCE) return "governance";
  if (mode === WireRetentionMode.COMPLIANCE) return "compliance";
  throw new StowageError(Code.InvalidArgument, `retention mode must be GOVERNANCE or COMPLIANCE, got ${String(mode)}`);
}

/** Retention to the wire. */
export function retentionToWire(retention: Retention): { mode: WireRetentionMode; retainUntil: Timestamp } {
  return { mode: retentionModeToWire(retention.mode), retainUntil: timestampFromDate(retention.retainUntil) };
}

/** Retention from the wire, or undefined when absent; a retention without a time is refused. */
export function retentionFromWire(retention: WireRetention | undefined): Retention | undefined {
  if (retention === undefined) return undefined;
  if (retention.retainUntil === undefined) throw new StowageError(Code.InvalidArgument, "a retention needs retain_until");
  return { mode: retentionModeFromWire(retention.mode), retainUntil: timestampDate(retention.retainUntil) };
}

/** Protection (stored, or asked for in a put) to the wire. */
export function protectionToWire(protection: ObjectProtection | ProtectionInput): WireObjectProtection {
  return create(ObjectProtectionSchema, {
    ...(protection.retention === undefined ? {} : { retention: retentionToWire(protection.retention) }),
    legalHold: protection.legalHold === true,
  });
}

/** Protection from the wire. */
export function protectionFromWire(protection: WireObjectProtection): ObjectProtection {
  const retention = retentionFromWire(protection.retention);
  return { ...(retention === undefined ? {} : { retention }), legalHold: protection.legalHold };
}

/** Signed URL method to the wire. */
export function signedUrlMethodToWire(method: SignedUrlMethod | undefined): SignedURLMethod {
  return method === "PUT" ? SignedURLMethod.SIGNED_URL_METHOD_PUT : SignedURLMethod.SIGNED_URL_METHOD_GET;
}

/** Signed URL method from the wire (UNSPECIFIED means GET). */
export function signedUrlMethodFromWire(method: SignedURLMethod): SignedUrlMethod {
  if (method === SignedURLMethod.SIGNED_URL_METHOD_PUT) return "PUT";
  if (method === SignedURLMethod.SIGNED_URL_METHOD_GET || method === SignedURLMethod.SIGNED_URL_METHOD_UNSPECIFIED) return "GET";
  throw new StowageError(Code.InvalidArgument, `unknown signed URL method ${String(method)}`);
}

const SNAPSHOT_STATES: Record<SnapshotState, WireSnapshotState> = {
  pending: WireSnapshotState.PENDING,
  ready: WireSnapshotState.READY,
  failed: WireSnapshotState.FAILED,
};

/** Snapshot to the wire. */
export function snapshotToWire(s: Snapshot): WireSnapshot {
  return create(SnapshotSchema, {
    snapshotId: s.snapshotId,
    volumeId: s.volumeId,
    state: SNAPSHOT_STATES[s.state],
    ...(s.progressPercent === undefined ? {} : { progressPercent: Math.round(s.progressPercent) }),
    sizeBytes: BigInt(s.sizeBytes),
    tags: { ...s.tags },
    ...(s.createdAt === undefined ? {} : { createdAt: timestampFromDate(s.createdAt) }),
    zone: s.zone,
    message: s.message,
  });
}

/** Snapshot from the wire. */
export function snapshotFromWire(s: WireSnapshot | undefined): Snapshot {
  if (s === undefined) throw new StowageError(Code.Internal, "plugin returned no snapshot");
  const state = (Object.keys(SNAPSHOT_STATES) as SnapshotState[]).find((k) => SNAPSHOT_STATES[k] === s.state);
  if (state === undefined) throw new StowageError(Code.Internal, `plugin returned snapshot ${s.snapshotId} with no valid state`);
  return {
    snapshotId: s.snapshotId,
    volumeId: s.volumeId,
    state,
    progressPercent: s.progressPercent,
    sizeBytes: toNumber(s.sizeBytes),
    tags: s.tags,
    createdAt: dateOf(s.createdAt),
    zone: s.zone,
    message: s.message,
  };
}

/** Volume to the wire. */
export function volumeToWire(v: Volume): WireVolume {
  return create(VolumeSchema, {
    volumeId: v.volumeId,
    volumeType: v.volumeType,
    ...(v.iops === undefined ? {} : { iops: BigInt(v.iops) }),
    zone: v.zone,
    sizeBytes: BigInt(v.sizeBytes),
  });
}

/** Volume from the wire. */
export function volumeFromWire(v: WireVolume | undefined): Volume {
  if (v === undefined) throw new StowageError(Code.Internal, "plugin returned no volume");
  return {
    volumeId: v.volumeId,
    volumeType: v.volumeType,
    iops: v.iops === undefined ? undefined : toNumber(v.iops),
    zone: v.zone,
    sizeBytes: toNumber(v.sizeBytes),
  };
}

const CAPABILITIES: Record<Capability, WireCapability> = {
  RANGED_READS: WireCapability.RANGED_READS,
  SIGNED_GET_URLS: WireCapability.SIGNED_GET_URLS,
  SIGNED_PUT_URLS: WireCapability.SIGNED_PUT_URLS,
  OBJECT_METADATA: WireCapability.OBJECT_METADATA,
  SNAPSHOT_PROGRESS: WireCapability.SNAPSHOT_PROGRESS,
  LIST_SNAPSHOTS: WireCapability.LIST_SNAPSHOTS,
  DELETE_VOLUME: WireCapability.DELETE_VOLUME,
  DIRECT_TRANSFER: WireCapability.DIRECT_TRANSFER,
  OBJECT_LOCK: WireCapability.OBJECT_LOCK,
};

/** Plugin kind to the wire. */
export function kindToWire(kind: PluginKind): WirePluginKind {
  return kind === "object-store" ? WirePluginKind.OBJECT_STORE : WirePluginKind.BLOCK_STORE;
}

/** Plugin kind from the wire; undefined for kinds this SDK does not know. */
export function kindFromWire(kind: WirePluginKind): PluginKind | undefined {
  if (kind === WirePluginKind.OBJECT_STORE) return "object-store";
  if (kind === WirePluginKind.BLOCK_STORE) return "block-store";
  return undefined;
}

/** Descriptor to the wire. */
export function descriptorToWire(d: PluginDescriptor): WireDescriptor {
  return create(PluginDescriptorSchema, {
    name: d.name,
    kind: kindToWire(d.kind),
    capabilities: d.capabilities.map((c) => CAPABILITIES[c]),
    description: d.description,
    configKeys: d.configKeys.map((k) => ({ name: k.name, description: k.description ?? "", required: k.required ?? false, secret: k.secret ?? false })),
  });
}

/** Descriptor from the wire; unknown capabilities are ignored (clause 8). */
export function descriptorFromWire(d: WireDescriptor, kind: PluginKind): PluginDescriptor {
  const caps = (Object.keys(CAPABILITIES) as Capability[]).filter((c) => d.capabilities.includes(CAPABILITIES[c]));
  return {
    name: d.name,
    kind,
    capabilities: caps,
    description: d.description,
    configKeys: d.configKeys.map((k) => ({ name: k.name, description: k.description, required: k.required, secret: k.secret })),
  };
}
