/**
 * Configuration helpers shared by both stores: the root directory, the modes of what they create
 * and the reclaiming of temporary files.
 *
 * @packageDocumentation
 */
import { custom, defineConfig, duration, invalidConfig, type ConfigValue } from "@stowage/sdk/plugin";
import { resolve } from "node:path";
import { ConfinedRoot } from "./confined-root.js";
import { errnoCode } from "./fs.js";
import { LEASE_REFRESH_MS } from "./temp-files.js";

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
/** Default of `staleTemp`, in seconds. */
export const DEFAULT_STALE_TEMP_SECONDS = 600;
/** Default of `tempSweep`, in seconds. */
export const DEFAULT_TEMP_SWEEP_SECONDS = 60;
/** Smallest `staleTemp`, in seconds: four refresh periods. */
export const MIN_STALE_TEMP_SECONDS = (4 * LEASE_REFRESH_MS) / 1000;

/** Permission bits written in octal (`0640`, `640` or `0o640`) that include `required`. */
function mode(defaultValue: number, required: number): ConfigValue<number> {
  const octal = (n: number): string => n.toString(8).padStart(4, "0");
  return custom({
    syntax: "octal mode",
    defaultText: octal(defaultValue),
    parse: (value, key) => {
      if (value === undefined) return defaultValue;
      const match = /^(?:0o?)?([0-7]{3})$/i.exec(value);
      const bits = match?.[1] === undefined ? undefined : Number.parseInt(match[1], 8);
      if (bits === undefined || (bits & required) !== required) {
        throw invalidConfig(key, `${key} must be permission bits in octal that include ${octal(required)}, such as ${octal(defaultValue)}; got ${JSON.stringify(value)}`);
      }
      return bits;
    },
  });
}

/** The keys both stores accept about the files they create (values in milliseconds for the durations).
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const FILE_CONFIG = defineConfig({
  dirMode: {
    value: mode(DEFAULT_DIRECTORY_MODE, 0o700),
    description: "Permission bits, in octal, of every directory the store creates (default 0700; set exactly, whatever the umask; must include 0700).",
  },
  fileMode: {
    value: mode(DEFAULT_FILE_MODE, 0o600),
    description: "Permission bits, in octal, of every file the store creates (default 0600; set exactly, whatever the umask; must include 0600).",
  },
  staleTemp: {
    aliases: ["staleTempSeconds"],
    value: duration({
      default: DEFAULT_STALE_TEMP_SECONDS * 1000,
      bareIntegerOnly: true,
      min: MIN_STALE_TEMP_SECONDS * 1000,
      outOfRange: (key, value) =>
        `${key} must be at least ${String(MIN_STALE_TEMP_SECONDS)} (four times the ${String(LEASE_REFRESH_MS / 1000)} s refresh period of live writers), got ${value}`,
    }),
    description: `Temporary files of writers on other hosts sharing the root are removed once not refreshed for this long: a duration (10m) or whole seconds (default ${String(DEFAULT_STALE_TEMP_SECONDS)}, at least ${String(MIN_STALE_TEMP_SECONDS)}).`,
    docs: `Temporary files of writers on other hosts sharing the root are removed once not refreshed for this long: a duration (\`10m\`) or whole seconds (default ${String(DEFAULT_STALE_TEMP_SECONDS)}, at least ${String(MIN_STALE_TEMP_SECONDS)} seconds).`,
  },
  tempSweep: {
    aliases: ["tempSweepSeconds"],
    value: duration({ default: DEFAULT_TEMP_SWEEP_SECONDS * 1000, bareIntegerOnly: true }),
    description: `How often temporary files of dead writers are looked for, besides at init: a duration (1m) or whole seconds (default ${String(DEFAULT_TEMP_SWEEP_SECONDS)}; 0: only at init).`,
    docs: `How often temporary files of dead writers are looked for, besides at init: a duration (\`1m\`) or whole seconds (default ${String(DEFAULT_TEMP_SWEEP_SECONDS)}; 0: only at init).`,
  },
});

/** The file keys as `ConfigKeySpec`s. */
export const FILE_CONFIG_KEYS = FILE_CONFIG.keys;

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

/** The file settings from the values a schema that includes {@link FILE_CONFIG}'s declarations parsed. */
export function fileSettings(values: { readonly dirMode: number; readonly fileMode: number; readonly staleTemp: number; readonly tempSweep: number }): FileSettings {
  return { dirMode: values.dirMode, fileMode: values.fileMode, staleTempMs: values.staleTemp, sweepIntervalMs: values.tempSweep };
}
