/**
 * Storage locations, Velero-style: a YAML list of named places to keep backups, each naming an
 * ObjectStore provider (a plugin), a bucket, an optional key prefix, and the provider's config.
 *
 * ```yaml
 * - name: primary
 *   provider: stowage.io/local
 *   bucket: backups
 *   prefix: cluster-a
 *   config: { root: /var/lib/backups, createBuckets: "true", objectLock: "true" }
 *   protection: { retain: 30d, mode: compliance }
 * ```
 *
 * With `protection`, every backup written there is protected (contract 5.9) for `retain` (`<n>d`,
 * `<n>h`, `<n>m` or `<n>s`) in `mode` (`governance`, the default, or `compliance`), and the
 * server refuses to start unless the provider can protect objects in the bucket.
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import type { RetentionMode } from "@stowage/sdk";
import { parse } from "yaml";

/** How long, and how, the backups of a location are protected. */
export interface LocationProtection {
  /** Retention period in seconds from the backup's time. */
  readonly retainSeconds: number;
  /** Retention mode. */
  readonly mode: RetentionMode;
}

/** One storage location. */
export interface StorageLocation {
  /** Unique name. */
  readonly name: string;
  /** The ObjectStore plugin, for example `stowage.io/local`. */
  readonly provider: string;
  /** Bucket the backups go to. */
  readonly bucket: string;
  /** Key prefix inside the bucket ("" for none; no leading or trailing slash needed). */
  readonly prefix: string;
  /** The provider's configuration for Init. */
  readonly config: Readonly<Record<string, string>>;
  /** Protect every backup written here; absent: backups are not protected. */
  readonly protection?: LocationProtection | undefined;
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { d: 86_400, h: 3600, m: 60, s: 1 };
const KEYS = ["name", "provider", "bucket", "prefix", "config", "protection"];

function parseProtection(path: string, name: string, value: unknown): LocationProtection | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) fail(path, `location ${name}: protection must be a map { retain, mode }`);
  const { retain, mode, ...rest } = value as Record<string, unknown>;
  if (Object.keys(rest).length > 0) fail(path, `location ${name}: protection has unknown keys [${Object.keys(rest).join(", ")}]; valid keys are [mode, retain]`);
  const period = typeof retain === "string" ? /^(\d+)([dhms])$/.exec(retain) : null;
  if (period === null || Number(period[1]) < 1) fail(path, `location ${name}: protection.retain must be a period such as 30d, 12h, 90m or 60s, got ${JSON.stringify(retain)}`);
  const chosen = mode ?? "governance";
  if (chosen !== "governance" && chosen !== "compliance") fail(path, `location ${name}: protection.mode must be governance or compliance, got ${JSON.stringify(mode)}`);
  return { retainSeconds: Number(period[1]) * (UNIT_SECONDS[period[2] ?? "s"] ?? 1), mode: chosen };
}

function fail(path: string, message: string): never {
  throw new Error(`${path}: ${message}`);
}

/** Reads and checks a locations file. */
export async function loadLocations(path: string): Promise<StorageLocation[]> {
  const value: unknown = parse(await readFile(path, "utf8"));
  if (!Array.isArray(value)) fail(path, "expected a list of storage locations");
  const names = new Set<string>();
  return value.map((item: unknown, i): StorageLocation => {
    if (typeof item !== "object" || item === null) fail(path, `entry ${String(i + 1)} is not a map`);
    const entry = item as Record<string, unknown>;
    const unknown = Object.keys(entry).filter((k) => !KEYS.includes(k));
    if (unknown.length > 0) fail(path, `entry ${String(i + 1)} has unknown keys [${unknown.join(", ")}]; valid keys are [${KEYS.join(", ")}]`);
    const { name, provider, bucket, prefix, config, protection } = entry;
    if (typeof name !== "string" || name === "") fail(path, `entry ${String(i + 1)} needs a name`);
    if (names.has(name)) fail(path, `two locations are named ${JSON.stringify(name)}`);
    names.add(name);
    if (typeof provider !== "string" || provider === "") fail(path, `location ${name} needs a provider`);
    if (typeof bucket !== "string" || bucket === "") fail(path, `location ${name} needs a bucket`);
    if (prefix !== undefined && typeof prefix !== "string") fail(path, `location ${name}: prefix must be a string`);
    if (config !== undefined && (typeof config !== "object" || config === null)) fail(path, `location ${name}: config must be a map`);
    const strings: Record<string, string> = {};
    for (const [k, v] of Object.entries((config ?? {}) as Record<string, unknown>)) {
      if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") fail(path, `location ${name}: config.${k} must be a string`);
      strings[k] = String(v);
    }
    const protect = parseProtection(path, name, protection);
    return { name, provider, bucket, prefix: (prefix ?? "").replace(/^\/+|\/+$/g, ""), config: strings, ...(protect === undefined ? {} : { protection: protect }) };
  });
}
