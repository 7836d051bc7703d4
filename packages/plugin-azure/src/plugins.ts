/**
 * The plugin definitions served by the `stowage-plugin-azure` executable.
 *
 * @packageDocumentation
 */
import type { PluginDefinition } from "@stowage/sdk/plugin";
import { defineBlockStore, defineObjectStore } from "@stowage/sdk/plugin";
import { BLOB_CONFIG_KEYS } from "./blob/config.js";
import { BlobObjectStore } from "./blob/blob-object-store.js";
import { DISKS_CONFIG_KEYS } from "./disks/config.js";
import { ManagedDisksBlockStore } from "./disks/managed-disks-block-store.js";

/** Name of both plugins (one ObjectStore, one BlockStore). */
export const AZURE_PLUGIN_NAME = "stowage.io/azure";

// --- Blob (ObjectStore) definition ---

/** The Blob Storage ObjectStore plugin. */
export const azureObjectStorePlugin = defineObjectStore({
  name: AZURE_PLUGIN_NAME,
  description: "Stores backup objects as block blobs in Azure Blob Storage (shared key, SAS or Entra ID auth).",
  capabilities: ["RANGED_READS", "SIGNED_GET_URLS", "OBJECT_METADATA", "DIRECT_TRANSFER", "OBJECT_LOCK"],
  configKeys: BLOB_CONFIG_KEYS,
  create: (context) => new BlobObjectStore({ logger: context.logger }),
});

// --- Managed Disks (BlockStore) definition ---

/** The Managed Disks BlockStore plugin. */
export const azureBlockStorePlugin = defineBlockStore({
  name: AZURE_PLUGIN_NAME,
  description: "Snapshots Azure managed disks (full or incremental) and restores disks from them, waiting for Azure's operations within apiTimeout.",
  capabilities: ["SNAPSHOT_PROGRESS", "LIST_SNAPSHOTS", "DELETE_VOLUME"],
  configKeys: DISKS_CONFIG_KEYS,
  create: (context) => new ManagedDisksBlockStore({ logger: context.logger }),
});

/** Every plugin the `stowage-plugin-azure` executable serves. */
export const azurePlugins: readonly PluginDefinition[] = [azureObjectStorePlugin, azureBlockStorePlugin];
