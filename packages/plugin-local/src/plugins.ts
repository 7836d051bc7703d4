/**
 * The plugin definitions served by the `stowage-plugin-local` executable.
 *
 * @packageDocumentation
 */
import { defineBlockStore, defineObjectStore } from "@stowage/sdk/plugin";
import { BLOCK_STORE_CONFIG_KEYS } from "./block-store/config.js";
import { LocalBlockStore } from "./block-store/local-block-store.js";
import { OBJECT_STORE_CONFIG_KEYS } from "./object-store/config.js";
import { LocalObjectStore } from "./object-store/local-object-store.js";

/** Name of both local plugins (one ObjectStore, one BlockStore). */
export const LOCAL_PLUGIN_NAME = "stowage.io/local";

/** The local ObjectStore plugin: buckets are directories, objects are files. */
export const localObjectStorePlugin = defineObjectStore({
  name: LOCAL_PLUGIN_NAME,
  description: "Stores backup objects as files in a local or mounted directory, one sub-directory per bucket.",
  capabilities: ["RANGED_READS", "SIGNED_GET_URLS", "SIGNED_PUT_URLS", "OBJECT_METADATA", "OBJECT_LOCK"],
  configKeys: OBJECT_STORE_CONFIG_KEYS,
  create: (context) => new LocalObjectStore({ logger: context.logger }),
});

/** The local BlockStore plugin: volumes are files, snapshots are background copies of them. */
export const localBlockStorePlugin = defineBlockStore({
  name: LOCAL_PLUGIN_NAME,
  description: "Snapshots volumes that are files in a local directory, copying them in the background (reflinks when possible).",
  capabilities: ["SNAPSHOT_PROGRESS", "LIST_SNAPSHOTS", "DELETE_VOLUME"],
  configKeys: BLOCK_STORE_CONFIG_KEYS,
  create: (context) => new LocalBlockStore({ logger: context.logger }),
});
