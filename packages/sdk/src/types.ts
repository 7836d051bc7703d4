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
  /**
   * The object's protection (capability `OBJECT_LOCK`, clause 5.9.3). Head and get report it and
   * absent there means unprotected; listings may leave it out.
   */
  readonly protection?: ObjectProtection | undefined;
}

/**
 * Who may weaken a retention before it ends (clause 5.9.2): `governance`, a caller with the store's
 * bypass permission who says so (`bypassGovernance`); `compliance`, nobody.
 */
export type RetentionMode = "governance" | "compliance";

/** Keeps an object's content until a time (clause 5.9.2). */
export interface Retention {
  /** Who may weaken it. */
  readonly mode: RetentionMode;
  /** Until when the content is kept. */
  readonly retainUntil: Date;
}

/** What keeps an object's content from being deleted or replaced (clause 5.9.2). */
export interface ObjectProtection {
  /** Retention; absent means none. One whose `retainUntil` has passed no longer protects. */
  readonly retention?: Retention | undefined;
  /** A legal hold protects until it is released, whatever the retention. */
  readonly legalHold: boolean;
}

/** Protection asked for in {@link PutObjectInput.protection}. */
export interface ProtectionInput {
  /** Retention; `retainUntil` must be in the future. */
  readonly retention?: Retention | undefined;
  /** Place a legal hold. */
  readonly legalHold?: boolean | undefined;
}

/** Names one object, for a call that may override a governance retention. */
export interface DeleteObjectInput extends ObjectRef {
  /** Delete even under a governance retention, where the store allows this caller (clause 5.9.6). */
  readonly bypassGovernance?: boolean | undefined;
}

/** The retention a store gives every new object that names none (clause 5.9.11). */
export interface DefaultRetention {
  /** Its mode. */
  readonly mode: RetentionMode;
  /** Its length from the object's creation, in seconds (a year is 365 days). */
  readonly periodSeconds: number;
}

/** A bucket's protection (clause 5.9.11). */
export interface BucketProtection {
  /** Whether objects in this bucket can be protected. */
  readonly lockable: boolean;
  /** The retention the store gives every new object that names none, when the plugin can see it. */
  readonly defaultRetention?: DefaultRetention | undefined;
  /** How protection is enforced, for operators (for example "the store (S3 Object Lock)"). */
  readonly enforcedBy: string;
}

/** Input of {@link ObjectLock.setRetention}. */
export interface SetRetentionInput extends ObjectRef {
  /** The new retention; absent removes it (governance only, with `bypassGovernance`). */
  readonly retention?: Retention | undefined;
  /** Allow shortening, removing or changing a governance retention (clause 5.9.9). */
  readonly bypassGovernance?: boolean | undefined;
}

/** Input of {@link ObjectLock.setLegalHold}. */
export interface SetLegalHoldInput extends ObjectRef {
  /** Whether the hold is on; `false` releases it. */
  readonly legalHold: boolean;
}

/**
 * Object protection (capability `OBJECT_LOCK`, clause 5.9): retention and legal holds that keep an
 * object's content from being deleted or replaced. Host clients expose it when the plugin
 * announces the capability.
 */
export interface ObjectLock {
  /** Whether a bucket can hold protected objects, and its default retention (clause 5.9.11). */
  getBucketProtection(input: { readonly bucket: string }, options?: CallOptions): Promise<BucketProtection>;
  /** Sets, extends or (where the mode allows) shortens or removes a retention (clause 5.9.9). */
  setRetention(input: SetRetentionInput, options?: CallOptions): Promise<ObjectProtection>;
  /** Places or releases a legal hold (clause 5.9.10). */
  setLegalHold(input: SetLegalHoldInput, options?: CallOptions): Promise<ObjectProtection>;
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
  /** Store the object protected, atomically (capability `OBJECT_LOCK`, clause 5.9.4). */
  readonly protection?: ProtectionInput | undefined;
  /** Replace an object under governance retention, where the store allows this caller (clause 5.9.7). */
  readonly bypassGovernance?: boolean | undefined;
  /**
   * Returns the body again from its first byte. With it, a host whose retries are on may try the
   * put again after a retryable failure (the plugin stored nothing); without it a put is never
   * retried, because its body cannot be read twice.
   */
  readonly retryBody?: (() => ByteSource) | undefined;
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

/** An HTTP request the host sends to the store itself (direct transfer, clause 5.8). */
export interface HttpRequestSpec {
  /** `GET` or `PUT`. */
  readonly method: "GET" | "PUT";
  /** Absolute `https:` or `http:` URL; a signed query string makes it a secret. */
  readonly url: string;
  /** Headers to send, names in lower case; values may be secrets (an SSE-C key). */
  readonly headers: Readonly<Record<string, string>>;
}

/** A plugin's refusal to plan a transfer; the host then uses `putObject` or `getObject`. */
export interface TransferDeclined {
  /** Why, for logs, for example `the configuration sets directTransfer: false`. */
  readonly declined: string;
}

/** How the host reads one version of an object straight from the store (clause 5.8.2). */
export interface GetPlan {
  /** The object's attributes; `size` is the whole object's size. */
  readonly object: ObjectInfo;
  /** Number of bytes to read. */
  readonly contentLength: number;
  /** Position of the first of them in the object. */
  readonly offset: number;
  /** A GET of that version of the object, to which the host adds a `Range` header; absent only when `contentLength` is 0. */
  readonly request?: HttpRequestSpec | undefined;
  /** When `request` stops working. */
  readonly expiresAt: Date;
}

/** Checksum the host computes for each part of an upload and the store verifies. */
export type PartChecksum = "none" | "sha256" | "md5" | "crc32";

/** Input of {@link DirectTransfer.beginPut}: a put whose body the host sends itself. */
export interface BeginPutInput {
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
  /** Body size in bytes. */
  readonly size: number;
  /** MIME type. */
  readonly contentType?: string | undefined;
  /** User metadata. */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** Expected SHA-256 of the body (32 bytes). */
  readonly sha256?: Uint8Array | undefined;
}

/** How the host cuts a body into parts (clause 5.8.3). */
export interface PutPlan {
  /** The plugin's name for the upload, opaque to the host. */
  readonly uploadId: string;
  /** Size of every part but the last; the body has `max(1, ceil(size / partSize))` parts, numbered from 1. */
  readonly partSize: number;
  /** Checksum the host computes for each part. */
  readonly partChecksum: PartChecksum;
  /** Parts the host may send at once: 0 for any number, 1 for strictly in order. */
  readonly maxParallelParts: number;
  /** When the upload stops accepting parts. */
  readonly expiresAt: Date;
}

/** Names one upload of {@link DirectTransfer}. */
export interface UploadRef {
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
  /** {@link PutPlan.uploadId}. */
  readonly uploadId: string;
}

/** Input of {@link DirectTransfer.signPart}. */
export interface SignPartInput extends UploadRef {
  /** Part number, from 1. */
  readonly partNumber: number;
  /** Position of the part's first byte in the body. */
  readonly offset: number;
  /** Part size in bytes. */
  readonly size: number;
  /** The part's checksum, of the kind {@link PutPlan.partChecksum} names; empty for none. */
  readonly checksum: Uint8Array;
}

/** A signed request that sends one part. */
export interface SignedPart {
  /** The request; its body is the part's bytes. */
  readonly request: HttpRequestSpec;
  /** When it stops working. */
  readonly expiresAt: Date;
}

/** One part the store accepted. */
export interface CompletedPart {
  /** Part number. */
  readonly partNumber: number;
  /** Part size in bytes. */
  readonly size: number;
  /** The store's `ETag` response header, verbatim; empty when there was none. */
  readonly etag: string;
  /** The checksum the part was signed with; empty when the plan names none. */
  readonly checksum: Uint8Array;
}

/** Input of {@link DirectTransfer.completePut}. */
export interface CompletePutInput extends UploadRef {
  /** Every part, in part-number order. */
  readonly parts: readonly CompletedPart[];
  /** Body size in bytes, as given to `beginPut`. */
  readonly size: number;
  /** SHA-256 of the body the host sent (32 bytes); computed, and present, when `beginPut` was given one to verify. */
  readonly sha256?: Uint8Array | undefined;
}

/**
 * Direct transfer (capability `DIRECT_TRANSFER`, clause 5.8): the plugin signs requests and the
 * host moves object bodies between itself and the store, so they never pass through the plugin.
 * Every method may be called concurrently for different uploads.
 */
export interface DirectTransfer {
  /** Plans a read, with the checks of `getObject` (clause 5.3), or declines. */
  planGet(input: GetObjectInput, options?: CallOptions): Promise<GetPlan | TransferDeclined>;
  /** Starts an upload, or declines. */
  beginPut(input: BeginPutInput, options?: CallOptions): Promise<PutPlan | TransferDeclined>;
  /** Signs the request that sends one part. */
  signPart(input: SignPartInput, options?: CallOptions): Promise<SignedPart>;
  /** Makes the parts the object, after checking them (clause 5.8.4). */
  completePut(input: CompletePutInput, options?: CallOptions): Promise<PutObjectResult>;
  /** Abandons an upload; an unknown or finished upload is success. */
  abortPut(input: UploadRef, options?: CallOptions): Promise<void>;
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
  /** Deletes an object; a missing object is success (clause 5.6); a protected one fails with `OBJECT_LOCKED` (clause 5.9.6). */
  deleteObject(input: DeleteObjectInput, options?: CallOptions): Promise<void>;
  /** Creates a pre-signed URL (clause 5.7). */
  createSignedUrl(input: CreateSignedUrlInput, options?: CallOptions): Promise<SignedUrl>;
  /**
   * Direct transfer, in plugins that announce `DIRECT_TRANSFER` (clause 5.8). Host clients use it
   * inside `putObject` and `getObject` and do not expose it.
   */
  readonly directTransfer?: DirectTransfer | undefined;
  /** Object protection, in plugins that announce `OBJECT_LOCK` (clause 5.9). */
  readonly objectLock?: ObjectLock | undefined;
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
  | "DELETE_VOLUME"
  | "DIRECT_TRANSFER"
  | "OBJECT_LOCK";

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
