/**
 * The TypeScript face of the contract. Plugin implementations implement {@link ObjectStore} and
 * {@link BlockStore}; hosts hand out clients with the very same interfaces, so an in-process
 * implementation and a remote plugin are interchangeable.
 *
 * @packageDocumentation
 */
import type { Readable } from "node:stream";

/** Options every call accepts. */
export interface CallOptions {
  /**
   * Cancels the call. On the plugin side the SDK always passes a signal that fires when the
   * caller cancels, the deadline passes or the plugin shuts down; implementations MUST stop work
   * and release resources when it fires.
   */
  readonly signal?: AbortSignal | undefined;
  /** Deadline for the call, in milliseconds from now (host side). */
  readonly timeoutMs?: number | undefined;
}

/** A plugin's configuration: the string map given to `init`. */
export type PluginConfig = Readonly<Record<string, string>>;

/** A byte stream: any async iterable of byte chunks (Node `Readable` streams are). */
export type ByteSource = AsyncIterable<Uint8Array>;

/** Attributes of a stored object. */
export interface ObjectInfo {
  /** Full key. */
  readonly key: string;
  /**
   * Size in bytes. Stowage plugins always report it; `-1` means unknown and comes only from a host
   * protocol adapter whose protocol carries no sizes, today Velero's (contract 7.5).
   */
  readonly size: number;
  /** Entity tag, opaque; empty when the store has none. */
  readonly etag: string;
  /** Last modification time, when known. */
  readonly lastModified?: Date | undefined;
  /** MIME type; empty when unknown. */
  readonly contentType: string;
  /** User metadata. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Input of {@link ObjectStore.putObject}. */
export interface PutObjectInput {
  /** Bucket (container). */
  readonly bucket: string;
  /** Object key. */
  readonly key: string;
  /** The body. It is consumed exactly once, with backpressure. */
  readonly body: ByteSource;
  /** Size in bytes when known; a body of another length fails with `INTEGRITY_MISMATCH`. */
  readonly size?: number | undefined;
  /** MIME type. */
  readonly contentType?: string | undefined;
  /** User metadata. */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** Expected SHA-256 of the body (32 bytes); a mismatch fails with `INTEGRITY_MISMATCH`. */
  readonly sha256?: Uint8Array | undefined;
}

/** Result of {@link ObjectStore.putObject}. */
export interface PutObjectResult {
  /** Bytes stored. */
  readonly size: number;
  /** Entity tag; empty when the store has none. */
  readonly etag: string;
  /** SHA-256 of the body, when it was checked. */
  readonly sha256?: Uint8Array | undefined;
}

/** A part of an object. */
export interface ByteRange {
  /** First byte, zero-based. */
  readonly offset: number;
  /** Number of bytes; absent means to the end. A range running past the end is shortened. */
  readonly length?: number | undefined;
}

/** Input of {@link ObjectStore.getObject}. */
export interface GetObjectInput {
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
  /** Part of the object (needs the `RANGED_READS` capability). */
  readonly range?: ByteRange | undefined;
}

/** Result of {@link ObjectStore.getObject}. */
export interface GetObjectOutput {
  /** The object's attributes; `size` is the whole object's size. */
  readonly object: ObjectInfo;
  /** Number of bytes the body yields; `-1` (unknown) only through the Velero adapter (contract 7.5). */
  readonly contentLength: number;
  /** Offset of the first byte of the body. */
  readonly offset: number;
  /**
   * The body. Consume it or destroy it: an abandoned body holds resources until the call's
   * signal fires. Errors after the first byte surface as stream errors.
   */
  readonly body: Readable;
}

/** Names one object. */
export interface ObjectRef {
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
}

/** Input of {@link ObjectStore.listObjects}. */
export interface ListObjectsInput {
  /** Bucket. */
  readonly bucket: string;
  /** Only keys starting with this prefix. */
  readonly prefix?: string | undefined;
  /**
   * Roll keys up into common prefixes at this delimiter. With prefix `a/` and delimiter `/`, the
   * keys `a/x`, `a/b/1` and `a/b/2` list as the object `a/x` and the common prefix `a/b/`.
   */
  readonly delimiter?: string | undefined;
  /** Entries per page, 1 to 1000; absent means the plugin's default. */
  readonly pageSize?: number | undefined;
  /** Resume after the page that returned this token. */
  readonly pageToken?: string | undefined;
  /** Stop after this many pages. */
  readonly maxPages?: number | undefined;
}

/** One page of a listing. */
export interface ListObjectsPage {
  /** Objects, in lexicographic byte order of their keys. */
  readonly objects: readonly ObjectInfo[];
  /** Common prefixes (only with a delimiter), in order. */
  readonly commonPrefixes: readonly string[];
  /** Token of the next page; empty on the last page. */
  readonly nextPageToken: string;
}

/** HTTP method of a signed URL. */
export type SignedUrlMethod = "GET" | "PUT";

/** Input of {@link ObjectStore.createSignedUrl}. */
export interface CreateSignedUrlInput {
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
  /** Method; default GET. */
  readonly method?: SignedUrlMethod | undefined;
  /** Validity in seconds, at least 1; plugins may shorten it (see `expiresAt`). */
  readonly ttlSeconds: number;
}

/** Result of {@link ObjectStore.createSignedUrl}. */
export interface SignedUrl {
  /** The URL. */
  readonly url: string;
  /** When it stops working. */
  readonly expiresAt: Date;
}

/**
 * A store of backup objects. Implemented by ObjectStore plugins; hosts hand out clients with the
 * same interface. Clause numbers refer to `docs/contract.md`.
 */
export interface ObjectStore {
  /** Configures the store (clause 5.1). Unknown keys fail with `INVALID_CONFIG`. */
  init(config: PluginConfig, options?: CallOptions): Promise<void>;
  /** Creates or replaces an object atomically (clause 5.2). */
  putObject(input: PutObjectInput, options?: CallOptions): Promise<PutObjectResult>;
  /** Opens an object for reading (clause 5.3). */
  getObject(input: GetObjectInput, options?: CallOptions): Promise<GetObjectOutput>;
  /** Returns the object's attributes, or `undefined` when it does not exist (clause 5.4). */
  headObject(input: ObjectRef, options?: CallOptions): Promise<ObjectInfo | undefined>;
  /** Lists keys page by page (clause 5.5). */
  listObjects(input: ListObjectsInput, options?: CallOptions): AsyncIterable<ListObjectsPage>;
  /** Deletes an object; a missing object is success (clause 5.6). */
  deleteObject(input: ObjectRef, options?: CallOptions): Promise<void>;
  /** Creates a pre-signed URL (clause 5.7). */
  createSignedUrl(input: CreateSignedUrlInput, options?: CallOptions): Promise<SignedUrl>;
}

/** State of a snapshot. */
export type SnapshotState = "pending" | "ready" | "failed";

/** A volume snapshot. */
export interface Snapshot {
  /** Provider snapshot ID. */
  readonly snapshotId: string;
  /** Source volume ID. */
  readonly volumeId: string;
  /** State. */
  readonly state: SnapshotState;
  /** Progress 0–100 while pending, when known. */
  readonly progressPercent?: number | undefined;
  /** Size of the source volume in bytes (0 when unknown). */
  readonly sizeBytes: number;
  /** Tags. */
  readonly tags: Readonly<Record<string, string>>;
  /** Creation time, when known. */
  readonly createdAt?: Date | undefined;
  /** Zone or region; empty when unknown. */
  readonly zone: string;
  /** Why it failed (state `failed`). */
  readonly message: string;
}

/** A volume. */
export interface Volume {
  /** Volume ID. */
  readonly volumeId: string;
  /** Volume type; empty when unknown. */
  readonly volumeType: string;
  /** Provisioned IOPS, when set. */
  readonly iops?: number | undefined;
  /** Zone; empty when unknown. */
  readonly zone: string;
  /** Size in bytes (0 when unknown). */
  readonly sizeBytes: number;
}

/** Input of {@link BlockStore.createSnapshot}. */
export interface CreateSnapshotInput {
  /** Volume to snapshot. */
  readonly volumeId: string;
  /** Zone of the volume. */
  readonly zone?: string | undefined;
  /** Tags; they win over tags copied from the volume. */
  readonly tags?: Readonly<Record<string, string>> | undefined;
}

/** Input of {@link BlockStore.listSnapshots}. */
export interface ListSnapshotsInput {
  /** Only snapshots carrying all these tags with these values. */
  readonly tagFilter?: Readonly<Record<string, string>> | undefined;
  /** Snapshots per page, 1 to 1000. */
  readonly pageSize?: number | undefined;
  /** Continue after the page that returned this token. */
  readonly pageToken?: string | undefined;
  /**
   * Stop after this many pages when the listing is iterated (host side; 0 or absent: all). A
   * plugin's implementation returns one page per call and ignores it.
   */
  readonly maxPages?: number | undefined;
}

/** One page of snapshots. */
export interface ListSnapshotsPage {
  /** Snapshots. */
  readonly snapshots: readonly Snapshot[];
  /** Token of the next page; empty on the last page. */
  readonly nextPageToken: string;
}

/** Input of {@link BlockStore.createVolumeFromSnapshot}. */
export interface CreateVolumeFromSnapshotInput {
  /** A ready snapshot. */
  readonly snapshotId: string;
  /** Volume type; empty or absent means the provider's default. */
  readonly volumeType?: string | undefined;
  /** Zone of the new volume. */
  readonly zone?: string | undefined;
  /** Provisioned IOPS. */
  readonly iops?: number | undefined;
  /** Tags for the new volume. */
  readonly tags?: Readonly<Record<string, string>> | undefined;
}

/** Names one volume. */
export interface VolumeRef {
  /** Volume ID. */
  readonly volumeId: string;
  /** Zone, when known. */
  readonly zone?: string | undefined;
}

/**
 * A volume snapshotter. Implemented by BlockStore plugins; hosts hand out clients with the same
 * interface. Clause numbers refer to `docs/contract.md`.
 */
export interface BlockStore {
  /** Configures the store (clause 6.1). */
  init(config: PluginConfig, options?: CallOptions): Promise<void>;
  /** Starts a snapshot; usually returns it pending (clause 6.2). */
  createSnapshot(input: CreateSnapshotInput, options?: CallOptions): Promise<Snapshot>;
  /** Reports a snapshot (clause 6.3); a missing one fails with `SNAPSHOT_NOT_FOUND`. */
  getSnapshot(snapshotId: string, options?: CallOptions): Promise<Snapshot>;
  /** Lists one page of snapshots (clause 6.4). */
  listSnapshots(input: ListSnapshotsInput, options?: CallOptions): Promise<ListSnapshotsPage>;
  /** Deletes a snapshot; a missing one is success (clause 6.5). */
  deleteSnapshot(snapshotId: string, options?: CallOptions): Promise<void>;
  /** Creates a volume from a ready snapshot and returns its ID (clause 6.6). */
  createVolumeFromSnapshot(input: CreateVolumeFromSnapshotInput, options?: CallOptions): Promise<string>;
  /** Reports a volume (clause 6.7). */
  getVolumeInfo(input: VolumeRef, options?: CallOptions): Promise<Volume>;
  /** Deletes a volume; a missing one is success (clause 6.8). */
  deleteVolume(input: VolumeRef, options?: CallOptions): Promise<void>;
  /**
   * Extracts this plugin's volume ID from a PersistentVolume object (parsed JSON), or returns ""
   * when the PV is not this plugin's (clause 6.9).
   */
  getVolumeId(persistentVolume: unknown, options?: CallOptions): Promise<string>;
  /** Returns a copy of the PersistentVolume with its volume ID replaced (clause 6.10). */
  setVolumeId(persistentVolume: unknown, volumeId: string, options?: CallOptions): Promise<unknown>;
}

/** Plugin kinds. */
export type PluginKind = "object-store" | "block-store";

/** Optional behaviours a plugin announces. */
export type Capability =
  | "RANGED_READS"
  | "SIGNED_GET_URLS"
  | "SIGNED_PUT_URLS"
  | "OBJECT_METADATA"
  | "SNAPSHOT_PROGRESS"
  | "LIST_SNAPSHOTS"
  | "DELETE_VOLUME";

/** Documents one configuration key. */
export interface ConfigKeySpec {
  /** Key name. */
  readonly name: string;
  /** What it does. */
  readonly description?: string | undefined;
  /** Init fails when it is missing. */
  readonly required?: boolean | undefined;
  /** Its value is a secret and is never logged. */
  readonly secret?: boolean | undefined;
}

/** What a host learns about one plugin. */
export interface PluginDescriptor {
  /** Name, for example `stowage.io/local`. */
  readonly name: string;
  /** Kind. */
  readonly kind: PluginKind;
  /** Capabilities. */
  readonly capabilities: readonly Capability[];
  /** One-line description. */
  readonly description: string;
  /** Accepted configuration keys. */
  readonly configKeys: readonly ConfigKeySpec[];
}
