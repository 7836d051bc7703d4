/**
 * Configuration of the local BlockStore: the keys `init` accepts and their parsing.
 *
 * @packageDocumentation
 */
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { configInteger, validateConfig } from "@stowage/sdk/plugin";
import { resolve } from "node:path";
import { FILE_CONFIG_KEYS, parseFileSettings, type FileSettings } from "../shared/config.js";

/** The configuration keys of the local BlockStore. */
export const BLOCK_STORE_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "root", required: true, description: "Directory holding volumes/ and snapshots/." },
  { name: "credentialsFile", description: "Accepted and ignored." },
  {
    name: "copyDelayMs",
    description:
      "Artificial delay in milliseconds per MiB copied into a snapshot or a restored volume (default 0), to watch copies in progress (tests and demonstrations).",
  },
  ...FILE_CONFIG_KEYS,
];

/** The parsed configuration. */
export interface BlockStoreSettings {
  /** Absolute path of the root directory, as configured. */
  readonly root: string;
  /** Delay per MiB of snapshot or restore copy, in milliseconds. */
  readonly copyDelayMs: number;
  /** Modes of created files and directories, temporary-file reclaiming. */
  readonly files: FileSettings;
}

/** Validates and parses an `init` configuration; problems fail with `INVALID_CONFIG`. */
export function parseBlockStoreConfig(config: PluginConfig): BlockStoreSettings {
  validateConfig(config, BLOCK_STORE_CONFIG_KEYS);
  return { root: resolve(config.root ?? ""), copyDelayMs: configInteger(config, "copyDelayMs", 0), files: parseFileSettings(config) };
}
