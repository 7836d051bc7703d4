/**
 * The plugin definitions served by the `stowage-plugin-gcp` executable.
 *
 * @packageDocumentation
 */
import type { PluginDefinition } from "@stowage/sdk/plugin";
import { defineBlockStore, defineObjectStore } from "@stowage/sdk/plugin";
import { GCS_CONFIG_KEYS } from "./gcs/config.js";
import { GcsObjectStore } from "./gcs/gcs-object-store.js";
import { PD_CONFIG_KEYS } from "./pd/config.js";
import { PdBlockStore } from "./pd/pd-block-store.js";

/** Name of both plugins (one ObjectStore, one BlockStore). */
export const GCP_PLUGIN_NAME = "stowage.io/gcp";

// --- Cloud Storage (ObjectStore) definition ---

/** The Cloud Storage ObjectStore plugin. */
export const gcpObjectStorePlugin = defineObjectStore({
  name: GCP_PLUGIN_NAME,
  description: "Stores backup objects in Google Cloud Storage: resumable uploads verified with CRC32C, ranged reads, V4 signed URLs, direct transfer with signed requests and resumable sessions, object retention and holds.",
  capabilities: ["RANGED_READS", "SIGNED_GET_URLS", "SIGNED_PUT_URLS", "OBJECT_METADATA", "DIRECT_TRANSFER", "OBJECT_LOCK"],
  configKeys: GCS_CONFIG_KEYS,
  create: (context) => new GcsObjectStore({ logger: context.logger }),
});

// --- Persistent Disk (BlockStore) definition ---

/** The Persistent Disk BlockStore plugin. */
export const gcpBlockStorePlugin = defineBlockStore({
  name: GCP_PLUGIN_NAME,
  description: "Snapshots Google Compute Engine Persistent Disks (zonal and regional) and restores disks from them, keeping type and provisioned IOPS.",
  capabilities: ["LIST_SNAPSHOTS", "DELETE_VOLUME"],
  configKeys: PD_CONFIG_KEYS,
  create: (context) => new PdBlockStore({ logger: context.logger }),
});

/** Every plugin the `stowage-plugin-gcp` executable serves. */
export const gcpPlugins: readonly PluginDefinition[] = [gcpObjectStorePlugin, gcpBlockStorePlugin];
