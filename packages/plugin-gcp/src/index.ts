/**
 * `@stowage/plugin-gcp`: Stowage's Google Cloud plugins, both named `stowage.io/gcp`: a Cloud Storage ObjectStore and a Persistent Disk BlockStore.
 *
 * The `stowage-plugin-gcp` executable serves both (its path: `import.meta.resolve("@stowage/plugin-gcp/main")`).
 *
 * @packageDocumentation
 */
export { GCP_PLUGIN_NAME, gcpPlugins, gcpObjectStorePlugin, gcpBlockStorePlugin } from "./plugins.js";
export { GcsObjectStore, type GcsObjectStoreOptions } from "./gcs/gcs-object-store.js";
export { GCS_CONFIG, GCS_CONFIG_KEYS } from "./gcs/config.js";
export { PdBlockStore, type PdBlockStoreOptions } from "./pd/pd-block-store.js";
export { PD_CONFIG, PD_CONFIG_KEYS } from "./pd/config.js";
