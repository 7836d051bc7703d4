/**
 * Parsers for option values. Each throws a usage error (exit status 2) that names the option.
 *
 * @packageDocumentation
 */
import { isLogLevel, type ByteRange, type LogLevel, type RetentionMode } from "@stowage/sdk";
import { formatDuration, formatSize, parseDuration, parseSize } from "@stowage/sdk/plugin";
import { usageError } from "./exit.js";

/** Commander collector for repeatable options: appends `value` to the list so far. */
export function collect(value: string, previous: readonly string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Turns repeated `k=v` option values into a record. The value may contain `=`; a later pair
 * overrides an earlier one with the same key.
 *
 * @param pairs - The raw values, for example `["root=/data", "createBuckets=true"]`.
 * @param option - The option's name, used in error messages (for example `--config`).
 */
export function parseKeyValues(pairs: readonly string[] | undefined, option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw usageError(`${option} expects key=value, got ${JSON.stringify(pair)}`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Parses a whole number in `[min, max]`, for options such as `--page-size`. */
export function parseInteger(value: string, option: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^\d+$/.test(value.trim())) throw usageError(`${option} expects a whole number, got ${JSON.stringify(value)}`);
  const n = Number(value.trim());
  if (n < min || n > max) throw usageError(`${option} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/**
 * Parses a duration option (`--ttl`) in the one duration syntax of Stowage's configuration:
 * `90s`, `2m`, `1h30m`, `250ms`, or a bare number in the option's historical unit, seconds. Returns
 * milliseconds in `[minMs, maxMs]`.
 */
export function parseDurationOption(value: string, option: string, minMs: number, maxMs = Number.MAX_SAFE_INTEGER): number {
  const ms = parseDuration(value, "s");
  if (ms === undefined) throw usageError(`${option} expects a duration (e.g. 90s, 1h, 1h30m; a bare number is seconds), got ${JSON.stringify(value)}`);
  if (ms < minMs || ms > maxMs) throw usageError(`${option} must be from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, got ${JSON.stringify(value)}`);
  return ms;
}

/**
 * Parses a size option (`--size`) in the one size syntax of Stowage's configuration: `256MiB`,
 * `1GiB`, `512KiB`, or a bare number in the option's historical unit, `bareUnit` bytes (MiB for
 * `--size`). Returns bytes in `[min, max]`.
 */
export function parseSizeOption(value: string, option: string, bareUnit: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const bytes = parseSize(value, bareUnit);
  const unit = bareUnit === 1024 * 1024 ? "MiB" : bareUnit === 1 ? "bytes" : `${String(bareUnit)}-byte units`;
  if (bytes === undefined) throw usageError(`${option} expects a size (e.g. 256MiB, 1GiB; a bare number is ${unit}), got ${JSON.stringify(value)}`);
  if (bytes < min || bytes > max) throw usageError(`${option} must be from ${formatSize(min)} to ${formatSize(max)}, got ${JSON.stringify(value)}`);
  return bytes;
}

/**
 * Parses a retention time (`--retain-until`, `--until`): an RFC 3339 time
 * (`2027-01-31T00:00:00Z`, or a date, `2027-01-31`, meaning its midnight UTC), or a duration from
 * now (`30d`, `720h`, `90s`). The time must be in the future.
 */
export function parseRetainUntil(value: string, option: string, now: Date = new Date()): Date {
  const text = value.trim();
  let at: Date | undefined;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    if (!Number.isNaN(ms)) at = new Date(ms);
  } else {
    const days = /^(\d+)d$/.exec(text);
    const ms = days === null ? parseDuration(text, "s") : Number(days[1]) * 86_400_000;
    if (ms !== undefined && Number.isSafeInteger(ms)) at = new Date(now.getTime() + ms);
  }
  if (at === undefined) throw usageError(`${option} expects a time (2027-01-31T00:00:00Z) or a duration from now (30d, 720h, 90s), got ${JSON.stringify(value)}`);
  if (at.getTime() <= now.getTime()) throw usageError(`${option} must be in the future, got ${at.toISOString()}`);
  return at;
}

/** Parses `--retention-mode`: `governance` or `compliance`. */
export function parseRetentionMode(value: string): RetentionMode {
  const mode = value.toLowerCase();
  if (mode !== "governance" && mode !== "compliance") throw usageError(`--retention-mode must be governance or compliance, got ${JSON.stringify(value)}`);
  return mode;
}

/**
 * Parses `--range`: `a-b` (bytes a to b, both included, as in HTTP), `a-` (from a to the end).
 */
export function parseRange(value: string): ByteRange {
  const match = /^(\d+)-(\d*)$/.exec(value.trim());
  if (match === null) throw usageError(`--range expects FIRST-LAST or FIRST- (byte offsets, LAST included), got ${JSON.stringify(value)}`);
  const offset = Number(match[1]);
  if (match[2] === undefined || match[2] === "") return { offset };
  const last = Number(match[2]);
  if (last < offset) throw usageError(`--range ${value}: the last byte comes before the first`);
  return { offset, length: last - offset + 1 };
}

/** Parses `--log-level` (`trace`, `debug`, `info`, `warn` or `warning`, `error`). */
export function parseLogLevel(value: string): LogLevel {
  const v = value.toLowerCase() === "warning" ? "warn" : value.toLowerCase();
  if (!isLogLevel(v)) throw usageError(`--log-level must be one of trace, debug, info, warn, error; got ${JSON.stringify(value)}`);
  return v;
}
