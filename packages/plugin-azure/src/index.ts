/**
 * `@stowage/plugin-azure`: Stowage's Azure plugins, both named `stowage.io/azure`: a Blob Storage ObjectStore and a Managed Disks BlockStore.
 *
 * The `stowage-plugin-azure` executable serves both (its path: `import.meta.resolve("@stowage/plugin-azure/main")`).
 *
 * @packageDocumentation
 */
export { AZURE_PLUGIN_NAME, azurePlugins, azureObjectStorePlugin, azureBlockStorePlugin } from "./plugins.js";
export { BlobObjectStore, type BlobObjectStoreOptions } from "./blob/blob-object-store.js";
export { BLOB_CONFIG, BLOB_CONFIG_KEYS, type ConfigureBlobStoreOptions } from "./blob/config.js";
export { ManagedDisksBlockStore, type ManagedDisksBlockStoreOptions } from "./disks/managed-disks-block-store.js";
export { DISKS_CONFIG, DISKS_CONFIG_KEYS } from "./disks/config.js";
export type { EnvironmentMap } from "./shared/credentials.js";
