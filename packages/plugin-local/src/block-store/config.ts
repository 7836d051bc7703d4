/**
 * Configuration of the local BlockStore: the keys `init` accepts and their parsing.
 *
 * @packageDocumentation
 */
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { configInteger, validateConfig } from "@stowage/sdk/plugin";
import { requireRootDirectory } from "../shared/config.js";

/** The configuration keys of the local BlockStore. */
export const BLOCK_STORE_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "root", required: true, description: "Directory holding volumes/ and snapshots/." },
  { name: "credentialsFile", description: "Accepted and ignored." },
  {
    name: "copyDelayMs",
    description: "Artificial delay in milliseconds per MiB copied into a snapshot (default 0), to watch snapshots while pending.",
  },
];

/** The parsed configuration. */
export interface BlockStoreSettings {
  /** Absolute path of the root directory. */
  readonly root: string;
  /** Delay per MiB of snapshot copy, in milliseconds. */
  readonly copyDelayMs: number;
}

/** Validates and parses an `init` configuration; problems fail with `INVALID_CONFIG`. */
export async function parseBlockStoreConfig(config: PluginConfig): Promise<BlockStoreSettings> {
  validateConfig(config, BLOCK_STORE_CONFIG_KEYS);
  const root = await requireRootDirectory(config.root ?? "");
  return { root, copyDelayMs: configInteger(config, "copyDelayMs", 0) };
}
