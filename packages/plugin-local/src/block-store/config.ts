/**
 * Configuration of the local BlockStore: the keys `init` accepts and their parsing.
 *
 * @packageDocumentation
 */
import type { PluginConfig } from "@stowage/sdk";
import { defineConfig, duration, text } from "@stowage/sdk/plugin";
import { resolve } from "node:path";
import { FILE_CONFIG, fileSettings, type FileSettings } from "../shared/config.js";

/** The configuration of the local BlockStore, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const BLOCK_STORE_CONFIG = defineConfig({
  root: {
    docs: "Directory holding `volumes/` and `snapshots/`; may be a link, resolved once at `init`", value: text(), required: true, description: "Directory holding volumes/ and snapshots/." },
  credentialsFile: {
    docs: "Accepted and ignored", value: text(), description: "Accepted and ignored." },
  copyDelay: {
    default: "`0`",
    aliases: ["copyDelayMs"],
    value: duration({ default: 0, bareUnit: "ms", bareIntegerOnly: true }),
    description:
      "Artificial delay per MiB copied into a snapshot or a restored volume: a duration (50ms) or whole milliseconds (default 0), to watch copies in progress (tests and demonstrations).",
    docs: "Artificial delay per MiB copied into a snapshot or a restored volume: a duration (`50ms`) or whole milliseconds (default 0), to watch copies in progress (tests and demonstrations).",
  },
  ...FILE_CONFIG.declarations,
});

/** The configuration keys of the local BlockStore. */
export const BLOCK_STORE_CONFIG_KEYS = BLOCK_STORE_CONFIG.keys;

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
  const values = BLOCK_STORE_CONFIG.parse(config);
  return { root: resolve(values.root ?? ""), copyDelayMs: values.copyDelay, files: fileSettings(values) };
}
