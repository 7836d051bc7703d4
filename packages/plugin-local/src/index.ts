/**
 * `@stowage/plugin-local`: Stowage's local-filesystem plugins, both named `stowage.io/local`.
 *
 * - {@link LocalObjectStore}: an ObjectStore whose buckets are directories and objects files.
 * - {@link LocalBlockStore}: a BlockStore whose volumes are files and snapshots copies of them.
 *
 * They serve as Stowage's embedded default plugins and as the model for plugin authors. The
 * `stowage-plugin-local` executable serves both; hosts may also use the classes in-process.
 *
 * @packageDocumentation
 */
export { LOCAL_PLUGIN_NAME, localBlockStorePlugin, localObjectStorePlugin } from "./plugins.js";
export { LocalObjectStore, MAX_LIST_PAGE_SIZE, type LocalObjectStoreOptions } from "./object-store/local-object-store.js";
export { OBJECT_STORE_CONFIG, OBJECT_STORE_CONFIG_KEYS } from "./object-store/config.js";
export { LocalBlockStore, DEFAULT_SNAPSHOT_PAGE_SIZE, MAX_SNAPSHOT_PAGE_SIZE, INTERRUPTED_MESSAGE, type LocalBlockStoreOptions } from "./block-store/local-block-store.js";
export { BLOCK_STORE_CONFIG, BLOCK_STORE_CONFIG_KEYS } from "./block-store/config.js";
export { createLocalVolume, type CreateLocalVolumeOptions, type LocalVolume } from "./block-store/volumes.js";
export { LOCAL_CSI_DRIVER } from "./block-store/persistent-volumes.js";
export { volumeImage as localVolumePath } from "./block-store/layout.js";
