/**
 * Storage locations, Velero-style: a YAML list of named places to keep backups, each naming an
 * ObjectStore provider (a plugin), a bucket, an optional key prefix, and the provider's config.
 *
 * ```yaml
 * - name: primary
 *   provider: stowage.io/local
 *   bucket: backups
 *   prefix: cluster-a
 *   config: { root: /var/lib/backups, createBuckets: "true" }
 * ```
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import { parse } from "yaml";

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
    const unknown = Object.keys(entry).filter((k) => !["name", "provider", "bucket", "prefix", "config"].includes(k));
    if (unknown.length > 0) fail(path, `entry ${String(i + 1)} has unknown keys [${unknown.join(", ")}]; valid keys are [name, provider, bucket, prefix, config]`);
    const { name, provider, bucket, prefix, config } = entry;
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
    return { name, provider, bucket, prefix: (prefix ?? "").replace(/^\/+|\/+$/g, ""), config: strings };
  });
}
