/**
 * Configuration of the local ObjectStore: the keys `init` accepts and their parsing.
 *
 * @packageDocumentation
 */
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { configBoolean, configInteger, validateConfig } from "@stowage/sdk/plugin";
import { resolve } from "node:path";
import { FILE_CONFIG_KEYS, invalidConfig, parseFileSettings, type FileSettings } from "../shared/config.js";

/** Fewest bytes of a signing key. */
export const MIN_SIGNING_KEY_BYTES = 32;

/** The configuration keys of the local ObjectStore. */
export const OBJECT_STORE_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "root", required: true, description: "Directory holding one sub-directory per bucket." },
  { name: "bucket", description: "Accepted and ignored (Velero passes the bucket in every call)." },
  { name: "prefix", description: "Accepted and ignored (Velero applies the prefix to keys itself)." },
  { name: "caCert", description: "Accepted and ignored." },
  { name: "credentialsFile", description: "Accepted and ignored." },
  {
    name: "createBuckets",
    description:
      "Opt-in (contract clause 5.0.3): true to let a put create its missing bucket directory (default false: a missing bucket is BUCKET_NOT_FOUND).",
  },
  { name: "fsync", description: "false to skip flushing objects to stable storage before a put returns (default true)." },
  ...FILE_CONFIG_KEYS,
  {
    name: "signedUrlAddress",
    description: "host:port the signed-URL HTTP server binds (default 127.0.0.1:0, a free port chosen per process). A fixed port starts the server at init.",
  },
  { name: "signedUrlBase", description: "Public base URL put in signed URLs instead of the bound address, e.g. https://backups.example.com." },
  { name: "maxSignedUrlTtlSeconds", description: "Longest validity of a signed URL in seconds (default 604800, 7 days)." },
  {
    name: "signingKeyFile",
    description: `File holding the key that signs URLs (at least ${String(MIN_SIGNING_KEY_BYTES)} bytes, surrounding whitespace ignored); created with mode 0600 and a random key when missing. Default: a random key per process.`,
  },
  {
    name: "signingKey",
    secret: true,
    description: `The key that signs URLs itself (at least ${String(MIN_SIGNING_KEY_BYTES)} characters); prefer signingKeyFile. Default: a random key per process.`,
  },
];

/** Default of `maxSignedUrlTtlSeconds`: seven days. */
export const DEFAULT_MAX_SIGNED_URL_TTL_SECONDS = 604_800;

/** Where the signing key comes from. */
export type SigningKeySource =
  /** A fresh random key for this process: URLs die with it. */
  | { readonly kind: "random" }
  /** A key file, created when missing. */
  | { readonly kind: "file"; readonly path: string }
  /** A key given in the configuration. */
  | { readonly kind: "inline"; readonly key: Buffer };

/** The parsed configuration. */
export interface ObjectStoreSettings {
  /** Absolute path of the root directory, as configured. */
  readonly root: string;
  /** Create missing bucket directories on put. */
  readonly createBuckets: boolean;
  /** Flush data and directories before a put returns. */
  readonly fsync: boolean;
  /** Modes of created files and directories, temporary-file reclaiming. */
  readonly files: FileSettings;
  /** Host the signed-URL server binds. */
  readonly signedUrlHost: string;
  /** Port the signed-URL server binds (0: any free port). */
  readonly signedUrlPort: number;
  /** Base URL of signed URLs, when set; otherwise the bound address. */
  readonly signedUrlBase: string | undefined;
  /** Longest signed-URL validity in seconds. */
  readonly maxSignedUrlTtlSeconds: number;
  /** Where the signing key comes from. */
  readonly signingKey: SigningKeySource;
}

/**
 * Validates and parses an `init` configuration. Unknown keys and malformed values fail with
 * `INVALID_CONFIG`. The root itself is opened (and checked) by the store.
 */
export function parseObjectStoreConfig(config: PluginConfig): ObjectStoreSettings {
  validateConfig(config, OBJECT_STORE_CONFIG_KEYS);
  const { host, port } = parseAddress(config.signedUrlAddress ?? "");
  const maxSignedUrlTtlSeconds = configInteger(config, "maxSignedUrlTtlSeconds", DEFAULT_MAX_SIGNED_URL_TTL_SECONDS);
  if (maxSignedUrlTtlSeconds < 1) throw invalidConfig("maxSignedUrlTtlSeconds", "maxSignedUrlTtlSeconds must be at least 1");
  return {
    root: resolve(config.root ?? ""),
    createBuckets: configBoolean(config, "createBuckets", false),
    fsync: configBoolean(config, "fsync", true),
    files: parseFileSettings(config),
    signedUrlHost: host,
    signedUrlPort: port,
    signedUrlBase: parseBase(config.signedUrlBase ?? ""),
    maxSignedUrlTtlSeconds,
    signingKey: parseSigningKey(config),
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

/** Reads `signingKeyFile` or `signingKey` (not both); the secret value never appears in errors. */
function parseSigningKey(config: PluginConfig): SigningKeySource {
  const file = (config.signingKeyFile ?? "").trim();
  const inline = (config.signingKey ?? "").trim();
  if (file !== "" && inline !== "") throw invalidConfig("signingKey", "set signingKeyFile or signingKey, not both");
  if (file !== "") return { kind: "file", path: resolve(file) };
  if (inline === "") return { kind: "random" };
  const key = Buffer.from(inline, "utf8");
  if (key.length < MIN_SIGNING_KEY_BYTES) {
    throw invalidConfig("signingKey", `signingKey must hold at least ${String(MIN_SIGNING_KEY_BYTES)} bytes, it holds ${String(key.length)}; use a long random value`);
  }
  return { kind: "inline", key };
}
