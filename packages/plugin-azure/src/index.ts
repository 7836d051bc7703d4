/**
 * `@stowage/plugin-azure`: Stowage's Azure plugins, both named `stowage.io/azure`: a Blob Storage ObjectStore and a Managed Disks BlockStore.
 *
 * The `stowage-plugin-azure` executable serves both.
 *
 * @packageDocumentation
 */
export { AZURE_PLUGIN_NAME, azurePlugins } from "./plugins.js";

// --- Blob (ObjectStore) exports: owned by the ObjectStore work ---
export { azureObjectStorePlugin } from "./plugins.js";
export { BlobObjectStore, MAX_SIGNED_URL_TTL_SECONDS, MAX_LIST_PAGE_SIZE, SAS_VERSION, encodeMetadata, decodeMetadata, type BlobObjectStoreOptions } from "./blob/blob-object-store.js";
export {
  BLOB_CONFIG,
  BLOB_CONFIG_KEYS,
  DEFAULT_BLOCK_SIZE,
  MAX_CONFIG_BLOCK_SIZE,
  MAX_AZURE_BLOCK_SIZE,
  MAX_BLOCKS,
  DEFAULT_UPLOAD_CONCURRENCY,
  MAX_UPLOAD_CONCURRENCY,
  configureBlobStore,
  parseBlockSize,
  type BlobAuthKind,
  type BlobStoreSettings,
  type ConfigureBlobStoreOptions,
} from "./blob/config.js";
export {
  LIST_KEYS_ACTION,
  discoverBlobEndpoint,
  exchangeAccountKey,
  resolveBlobEndpoint,
  storageManagementClient,
  type BlobEndpointSource,
  type ResolveBlobEndpointOptions,
  type ResolvedBlobEndpoint,
  type StorageAccountLocation,
} from "./blob/account-arm.js";
export { abortedError, azureErrorCode, azureHttpStatus, isAbortError, isNotFound, toStowageError, type ErrorContext } from "./shared/errors.js";

// --- Managed Disks (BlockStore) exports: owned by the BlockStore work ---
export { azureBlockStorePlugin } from "./plugins.js";
export { ManagedDisksBlockStore, MAX_SNAPSHOT_PAGE_SIZE, IOPS_SKUS, type ManagedDisksBlockStoreOptions } from "./disks/managed-disks-block-store.js";
export {
  DISKS_CONFIG,
  DISKS_CONFIG_KEYS,
  DEFAULT_API_TIMEOUT_MS,
  DEFAULT_POLL_INTERVAL_MS,
  parseDisksConfig,
  parseDuration,
  parseTags,
  type DisksSettings,
  type ParseDisksConfigOptions,
} from "./disks/config.js";
export { AZURE_DISK_CSI_DRIVER, getAzureDiskVolumeId, setAzureDiskVolumeId, volumeIdOf, type DiskLocation } from "./disks/persistent-volumes.js";
export { formatResourceId, parseResourceId, resolveResourceId, RESOURCE_NAME, type ComputeResourceId } from "./disks/ids.js";
export { TAG_NAMES_TAG, azureTagName, encodeTags, decodeTags, matchesTagFilter } from "./disks/tags.js";
export {
  AZURE_CLOUDS,
  createTokenCredential,
  isKnownAuthorityHost,
  loadCredentialsFile,
  parseDotenv,
  resolveCloud,
  tokenCredentialKind,
  type AzureCloud,
  type EnvironmentMap,
  type TokenCredentialKind,
  type TokenCredentialOptions,
} from "./shared/credentials.js";
