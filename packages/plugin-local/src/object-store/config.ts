/**
 * Configuration of the local ObjectStore: the keys `init` accepts and their parsing.
 *
 * @packageDocumentation
 */
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { configBoolean, configInteger, validateConfig } from "@stowage/sdk/plugin";
import { invalidConfig, requireRootDirectory } from "../shared/config.js";

/** The configuration keys of the local ObjectStore. */
export const OBJECT_STORE_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "root", required: true, description: "Directory holding one sub-directory per bucket." },
  { name: "bucket", description: "Accepted and ignored (Velero passes the bucket in every call)." },
  { name: "prefix", description: "Accepted and ignored (Velero applies the prefix to keys itself)." },
  { name: "caCert", description: "Accepted and ignored." },
  { name: "credentialsFile", description: "Accepted and ignored." },
  { name: "createBuckets", description: "true to create a missing bucket directory on its first put (default false)." },
  { name: "fsync", description: "false to skip flushing objects to stable storage before a put returns (default true)." },
  { name: "signedUrlAddress", description: "host:port the signed-URL HTTP server binds (default 127.0.0.1:0, a free port)." },
  { name: "signedUrlBase", description: "Public base URL put in signed URLs instead of the bound address, e.g. https://backups.example.com." },
  { name: "maxSignedUrlTtlSeconds", description: "Longest validity of a signed URL in seconds (default 604800, 7 days)." },
];

/** Default of `maxSignedUrlTtlSeconds`: seven days. */
export const DEFAULT_MAX_SIGNED_URL_TTL_SECONDS = 604_800;

/** The parsed configuration. */
export interface ObjectStoreSettings {
  /** Absolute path of the root directory. */
  readonly root: string;
  /** Create missing bucket directories on put. */
  readonly createBuckets: boolean;
  /** Flush data and directories before a put returns. */
  readonly fsync: boolean;
  /** Host the signed-URL server binds. */
  readonly signedUrlHost: string;
  /** Port the signed-URL server binds (0: any free port). */
  readonly signedUrlPort: number;
  /** Base URL of signed URLs, when set; otherwise the bound address. */
  readonly signedUrlBase: string | undefined;
  /** Longest signed-URL validity in seconds. */
  readonly maxSignedUrlTtlSeconds: number;
}

/**
 * Validates and parses an `init` configuration. Unknown keys, a missing or non-directory root and
 * malformed values fail with `INVALID_CONFIG`.
 */
export async function parseObjectStoreConfig(config: PluginConfig): Promise<ObjectStoreSettings> {
  validateConfig(config, OBJECT_STORE_CONFIG_KEYS);
  const root = await requireRootDirectory(config.root ?? "");
  const { host, port } = parseAddress(config.signedUrlAddress ?? "");
  const maxSignedUrlTtlSeconds = configInteger(config, "maxSignedUrlTtlSeconds", DEFAULT_MAX_SIGNED_URL_TTL_SECONDS);
  if (maxSignedUrlTtlSeconds < 1) throw invalidConfig("maxSignedUrlTtlSeconds", "maxSignedUrlTtlSeconds must be at least 1");
  return {
    root,
    createBuckets: configBoolean(config, "createBuckets", false),
    fsync: configBoolean(config, "fsync", true),
    signedUrlHost: host,
    signedUrlPort: port,
    signedUrlBase: parseBase(config.signedUrlBase ?? ""),
    maxSignedUrlTtlSeconds,
  };
}

/** Parses `host:port` or `[ipv6]:port`; empty means `127.0.0.1:0`. */
function parseAddress(value: string): { host: string; port: number } {
  if (value.trim() === "") return { host: "127.0.0.1", port: 0 };
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value.trim());
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port <= 65_535)) {
    throw invalidConfig("signedUrlAddress", `signedUrlAddress ${JSON.stringify(value)} must look like host:port, e.g. 127.0.0.1:8089 or [::1]:0`);
  }
  return { host, port };
}

/** Parses the optional public base URL: an absolute http(s) URL without query or fragment. */
function parseBase(value: string): string | undefined {
  if (value.trim() === "") return undefined;
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch (error) {
    throw invalidConfig("signedUrlBase", `signedUrlBase ${JSON.stringify(value)} is not a URL`, error);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
    throw invalidConfig("signedUrlBase", `signedUrlBase ${JSON.stringify(value)} must be an http or https URL without query or fragment`);
  }
  return url.href.replace(/\/+$/, "");
}
