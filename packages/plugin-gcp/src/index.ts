/**
 * `@stowage/plugin-gcp`: Stowage's Google Cloud plugins, both named `stowage.io/gcp`: a Cloud Storage ObjectStore and a Persistent Disk BlockStore.
 *
 * The `stowage-plugin-gcp` executable serves both.
 *
 * @packageDocumentation
 */
export { GCP_PLUGIN_NAME, gcpPlugins } from "./plugins.js";

// --- Cloud Storage (ObjectStore) exports: owned by the ObjectStore work ---
export { gcpObjectStorePlugin } from "./plugins.js";
export { GcsObjectStore, MAX_SIGNED_URL_TTL_SECONDS, MAX_LIST_PAGE_SIZE as MAX_GCS_LIST_PAGE_SIZE, compareUtf8, type GcsObjectStoreOptions } from "./gcs/gcs-object-store.js";
export { GCS_CONFIG, GCS_CONFIG_KEYS, CHUNK_GRANULARITY, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, parseChunkSize, chooseSigner, configureGcs, signingFailure, type GcsStoreSettings, type UrlSigner, type KeyUrlSigner, type SignBlobUrlSigner, type NoUrlSigner } from "./gcs/config.js";
export { toStowageError, isNotFound, isAbortError, httpStatus, errorReason, errnoOf, type GoogleErrorContext } from "./shared/errors.js";
export {
  loadGoogleCredentials,
  parseCredentialsJson,
  impersonatedEmail,
  CREDENTIAL_FILE_TYPES,
  METADATA_SERVER_CREDENTIALS,
  CLOUD_PLATFORM_SCOPE,
  type GoogleCredentials,
  type GoogleCredentialSettings,
} from "./shared/credentials.js";

// --- Persistent Disk (BlockStore) exports: owned by the BlockStore work ---
export { gcpBlockStorePlugin } from "./plugins.js";
export { PdBlockStore, MAX_SNAPSHOT_PAGE_SIZE, SOURCE_DISK_LABELS, parseDiskLocation, snapshotName, type DiskLocation, type PdBlockStoreOptions } from "./pd/pd-block-store.js";
export { PD_CONFIG, PD_CONFIG_KEYS, COMPUTE_SCOPE, parsePdConfig, parseEndpoint, parseLabels, type PdSettings, type ComputeClientOptions, type ComputeEndpoint } from "./pd/config.js";
export { PD_CSI_DRIVER, PD_CSI_DRIVERS, DISK_NAME_RE, getPdVolumeId, setPdVolumeId, parseVolumeHandle, type VolumeHandle } from "./pd/persistent-volumes.js";
export { labelKey, labelValue, tagsToLabels, labelFilter, descriptionTags } from "./pd/labels.js";
export { toPdError, operationError, isNotFound as isComputeNotFound, httpStatus as computeHttpStatus, errorReason as computeErrorReason, type PdErrorContext, type FailedOperation, type OperationErrorEntry, type OperationErrors } from "./pd/errors.js";
