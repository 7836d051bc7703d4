/**
 * `@stowage/sdk`: the contract's TypeScript types and the error class, shared by plugins and hosts.
 * Plugin authors also import `@stowage/sdk/plugin`; backup servers import `@stowage/sdk/host`.
 *
 * @packageDocumentation
 */

// Relevant to everyone.
export { Code, Reason, StowageError, ERROR_DOMAIN, codeName, objectNotFound, bucketNotFound, snapshotNotFound, volumeNotFound, rangePastEnd, putNotStored } from "./errors.js";
export type { StowageErrorOptions } from "./errors.js";
export { isProtected, retentionActive, objectLocked, bucketNotLockable, checkMutable, checkRetentionChange, checkRetention, asksProtection } from "./protection.js";
export type {
  BeginPutInput,
  BlockStore,
  BucketProtection,
  ByteRange,
  ByteSource,
  CallOptions,
  Capability,
  CompletedPart,
  CompletePutInput,
  ConfigKeySpec,
  CreateSignedUrlInput,
  CreateSnapshotInput,
  CreateVolumeFromSnapshotInput,
  DefaultRetention,
  DeleteObjectInput,
  GetObjectInput,
  GetObjectOutput,
  GetPlan,
  HttpRequestSpec,
  DirectTransfer,
  ListObjectsInput,
  ListObjectsPage,
  ListSnapshotsInput,
  ListSnapshotsPage,
  ObjectInfo,
  ObjectLock,
  ObjectProtection,
  ObjectRef,
  ObjectStore,
  PartChecksum,
  PluginConfig,
  PluginDescriptor,
  PluginKind,
  ProtectionInput,
  PutObjectInput,
  PutObjectResult,
  PutPlan,
  Retention,
  RetentionMode,
  SetLegalHoldInput,
  SetRetentionInput,
  SignedPart,
  SignPartInput,
  SignedUrl,
  SignedUrlMethod,
  Snapshot,
  SnapshotState,
  TransferDeclined,
  UploadRef,
  Volume,
  VolumeRef,
} from "./types.js";
export { createHclogLogger, hclogTimestamp, isLogLevel, silentLogger, SecretRedactor, REDACTED, MIN_REDACTED_LENGTH } from "./logging.js";
export type { Logger, LogFn, LogLevel } from "./logging.js";
// What the contract defines once for plugins, hosts and tools: the plugin-name rule and the listing order.
export { checkPluginName, isPluginName } from "./plugin-name.js";
export { compareUtf8 } from "./key-order.js";

// Only relevant to implementers of hosts and plugins in other languages.
export { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, APP_PROTOCOL_VERSION, CORE_PROTOCOL_VERSION, CONTRACT_VERSION, MAX_CHUNK_BYTES } from "./protocol/constants.js";
