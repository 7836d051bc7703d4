/**
 * The value syntaxes every plugin's configuration shares: one for byte sizes, one for durations,
 * and the `INVALID_CONFIG` error about one key. Used by {@link defineConfig}'s value builders and
 * by plugins that read a value with their own rules (a lenient size, say).
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import { Code, Reason, StowageError } from "../errors.js";
import type { PluginConfig } from "../types.js";

/**
 * An `INVALID_ARGUMENT`/`INVALID_CONFIG` error about one configuration key (metadata `key`). The
 * message must say what is wrong and what to set instead.
 */
export function invalidConfig(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, ...(cause === undefined ? {} : { cause }) });
}

/** A trimmed configuration value, or `undefined` when the key is absent or its value empty. */
export function configString(config: PluginConfig, key: string): string | undefined {
  return trimmed(config[key]);
}

/** `value` trimmed, or `undefined` when absent or empty. */
export function trimmed(value: string | undefined): string | undefined {
  const text = (value ?? "").trim();
  return text === "" ? undefined : text;
}

/**
 * Reads a `caCert` value: PEM text (as backup servers pass it) is returned as it is, anything else is the
 * path of a PEM file, read now. A file that cannot be read or holds no PEM block fails with
 * `INVALID_CONFIG` naming `key`.
 */
export async function readCaCert(value: string | undefined, key = "caCert"): Promise<string | undefined> {
  if (value === undefined) return undefined;
  if (value.includes("-----BEGIN")) return value;
  let pem: string;
  try {
    pem = await readFile(value, "utf8");
  } catch (error) {
    throw invalidConfig(key, `${key} must be PEM text or the path of a PEM file; cannot read ${JSON.stringify(value)}`, error);
  }
  if (!pem.includes("-----BEGIN")) throw invalidConfig(key, `${key} file ${JSON.stringify(value)} holds no PEM certificate`);
  return pem;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024,
  ki: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a byte size: a whole number with a binary unit, `B`, `KiB`/`Ki`/`K`, `MiB`/`Mi`/`M` or
 * `GiB`/`Gi`/`G` (any letter case, spaces allowed before the unit: `8MiB`, `8 mi`, `512K`), or a
 * bare number in the key's historical unit: `bareUnit` bytes each (default 1, so `8388608` is
 * bytes; a key that was counted in MiB passes `1024 ** 2`). Every unit is a power of 1024. A bare
 * number is whole when `bareUnit` is 1, and may have a fraction otherwise (rounded to whole bytes).
 * Returns `undefined` when the text is not a size or the number is not a safe integer.
 */
export function parseSize(text: string, bareUnit = 1): number | undefined {
  const value = text.trim();
  if (bareUnit !== 1 && /^\d+\.\d+$/.test(value)) {
    const bytes = Math.round(Number(value) * bareUnit);
    return Number.isSafeInteger(bytes) ? bytes : undefined;
  }
  const match = /^(\d+)\s*([a-z]*)$/i.exec(value);
  if (match === null) return undefined;
  const suffix = (match[2] ?? "").toLowerCase();
  const unit = suffix === "" ? bareUnit : SIZE_UNITS[suffix];
  if (unit === undefined) return undefined;
  const bytes = Number(match[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, "μs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** The unit of a bare number in a duration key, its historical unit: seconds or milliseconds. */
export type BareDurationUnit = "s" | "ms";

/**
 * Parses a duration into milliseconds: a Go/Kubernetes duration (`90s`, `2m`, `1h30m`, `1.5h`,
 * `500ms`; units `ns`, `us`, `ms`, `s`, `m`, `h`), or a bare number taken in the key's historical
 * unit, `bareUnit`: seconds by default (keys once named `…Seconds`, and the upstream plugins'
 * `apiTimeout`), `ms` for keys once named `…Ms`. Returns `undefined` when the text is not a duration.
 *
 * @param bareIntegerOnly - Accept only a whole bare number (keys that were whole seconds or milliseconds).
 */
export function parseDuration(text: string, bareUnit: BareDurationUnit = "s", bareIntegerOnly = false): number | undefined {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) {
    if (bareIntegerOnly && !/^\d+$/.test(value)) return undefined;
    return Number(value) * (bareUnit === "s" ? 1000 : 1);
  }
  if (!/^(\d+(\.\d+)?(ns|us|µs|μs|ms|s|m|h))+$/.test(value)) return undefined;
  let total = 0;
  for (const part of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * (DURATION_UNITS_MS[part[2] ?? "s"] ?? 0);
  return total;
}

/** Formats milliseconds as a short duration (`2m`, `1h30m`, `1.5s`, `250ms`), the syntax {@link parseDuration} reads. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms < 1000 || ms % 1000 !== 0) return ms % 1000 === 0 || ms < 1000 ? `${String(ms)}ms` : `${String(ms / 1000)}s`;
  let seconds = ms / 1000;
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  return `${hours > 0 ? `${String(hours)}h` : ""}${minutes > 0 ? `${String(minutes)}m` : ""}${seconds > 0 ? `${String(seconds)}s` : ""}`;
}

/** Formats a byte count in the size syntax, with the largest binary unit that divides it (`8MiB`, `256KiB`, `1000`). */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${String(bytes / size)}${unit}`;
  }
  return String(bytes);
}
