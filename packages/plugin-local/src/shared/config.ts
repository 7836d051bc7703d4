/**
 * Configuration helpers shared by both stores: the root directory, the modes of what they create
 * and the reclaiming of temporary files.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, type ConfigKeySpec, type PluginConfig } from "@stowage/sdk";
import { configInteger } from "@stowage/sdk/plugin";
import { resolve } from "node:path";
import { ConfinedRoot } from "./confined-root.js";
import { errnoCode } from "./fs.js";
import { LEASE_REFRESH_MS } from "./temp-files.js";

/** An `INVALID_CONFIG` error about one key. */
export function invalidConfig(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, cause });
}

/**
 * Opens the `root` setting as a {@link ConfinedRoot} (a link in the configured path is resolved
 * here, once); a missing or non-directory root fails with `INVALID_CONFIG` saying what is wrong.
 */
export async function openRoot(root: string): Promise<ConfinedRoot> {
  const path = resolve(root);
  try {
    return await ConfinedRoot.open(path);
  } catch (error) {
    if (errnoCode(error) === "ENOENT") {
      throw invalidConfig("root", `root directory ${JSON.stringify(path)} does not exist; create it or fix "root"`, error);
    }
    if (errnoCode(error) === "ENOTDIR") throw invalidConfig("root", `root ${JSON.stringify(path)} is not a directory; fix "root"`, error);
    throw invalidConfig("root", `root directory ${JSON.stringify(path)} cannot be used: ${String(error)}`, error);
  }
}

/** Default mode of created directories: private to the plugin's user. */
export const DEFAULT_DIRECTORY_MODE = 0o700;
/** Default mode of created files: private to the plugin's user. */
export const DEFAULT_FILE_MODE = 0o600;
/** Default of `staleTempSeconds`. */
export const DEFAULT_STALE_TEMP_SECONDS = 600;
/** Default of `tempSweepSeconds`. */
export const DEFAULT_TEMP_SWEEP_SECONDS = 60;
/** Smallest `staleTempSeconds`: four refresh periods. */
export const MIN_STALE_TEMP_SECONDS = (4 * LEASE_REFRESH_MS) / 1000;

/** The keys both stores accept about the files they create. */
export const FILE_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  {
    name: "dirMode",
    description: "Permission bits, in octal, of every directory the store creates (default 0700; set exactly, whatever the umask; must include 0700).",
  },
  {
    name: "fileMode",
    description: "Permission bits, in octal, of every file the store creates (default 0600; set exactly, whatever the umask; must include 0600).",
  },
  {
    name: "staleTempSeconds",
    description: `Temporary files of writers on other hosts sharing the root are removed once not refreshed for this long (default ${String(DEFAULT_STALE_TEMP_SECONDS)}, at least ${String(MIN_STALE_TEMP_SECONDS)}).`,
  },
  {
    name: "tempSweepSeconds",
    description: `How often temporary files of dead writers are looked for, besides at init (default ${String(DEFAULT_TEMP_SWEEP_SECONDS)}; 0: only at init).`,
  },
];

/** The parsed file settings. */
export interface FileSettings {
  /** Mode of created directories. */
  readonly dirMode: number;
  /** Mode of created files. */
  readonly fileMode: number;
  /** Age after which remote writers' temporary files are reclaimed, in milliseconds. */
  readonly staleTempMs: number;
  /** Interval of periodic sweeps in milliseconds; 0 for none. */
  readonly sweepIntervalMs: number;
}

/** Parses {@link FILE_CONFIG_KEYS}; bad values fail with `INVALID_CONFIG`. */
export function parseFileSettings(config: PluginConfig): FileSettings {
  const staleTempSeconds = configInteger(config, "staleTempSeconds", DEFAULT_STALE_TEMP_SECONDS);
  if (staleTempSeconds < MIN_STALE_TEMP_SECONDS) {
    throw invalidConfig(
      "staleTempSeconds",
      `staleTempSeconds must be at least ${String(MIN_STALE_TEMP_SECONDS)} (four times the ${String(LEASE_REFRESH_MS / 1000)} s refresh period of live writers), got ${String(staleTempSeconds)}`,
    );
  }
  return {
    dirMode: parseMode(config, "dirMode", DEFAULT_DIRECTORY_MODE, 0o700),
    fileMode: parseMode(config, "fileMode", DEFAULT_FILE_MODE, 0o600),
    staleTempMs: staleTempSeconds * 1000,
    sweepIntervalMs: configInteger(config, "tempSweepSeconds", DEFAULT_TEMP_SWEEP_SECONDS) * 1000,
  };
}

/** Reads permission bits written in octal (`0640`, `640` or `0o640`) that include `required`. */
function parseMode(config: PluginConfig, key: string, defaultValue: number, required: number): number {
  const raw = (config[key] ?? "").trim();
  if (raw === "") return defaultValue;
  const match = /^(?:0o?)?([0-7]{3})$/i.exec(raw);
  const mode = match?.[1] === undefined ? undefined : Number.parseInt(match[1], 8);
  if (mode === undefined || (mode & required) !== required) {
    throw invalidConfig(
      key,
      `${key} must be permission bits in octal that include ${required.toString(8).padStart(4, "0")}, such as ${defaultValue.toString(8).padStart(4, "0")}; got ${JSON.stringify(config[key])}`,
    );
  }
  return mode;
}
