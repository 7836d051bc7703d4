/**
 * Configuration of the local ObjectStore: the keys `init` accepts and their parsing.
 *
 * @packageDocumentation
 */
import type { PluginConfig } from "@stowage/sdk";
import { custom, defineConfig, duration, flag, invalidConfig, text } from "@stowage/sdk/plugin";
import { resolve } from "node:path";
import { FILE_CONFIG, fileSettings, type FileSettings } from "../shared/config.js";

/** Fewest bytes of a signing key. */
export const MIN_SIGNING_KEY_BYTES = 32;

/** Default of `maxSignedUrlTtl`, in seconds: seven days. */
export const DEFAULT_MAX_SIGNED_URL_TTL_SECONDS = 604_800;

/** The configuration of the local ObjectStore, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const OBJECT_STORE_CONFIG = defineConfig({
  root: {
    docs: "Directory holding one sub-directory per bucket; may be a link, resolved once at `init`", value: text(), required: true, description: "Directory holding one sub-directory per bucket." },
  bucket: { value: text(), description: "Accepted and ignored (Velero passes the bucket in every call)." },
  prefix: { value: text(), description: "Accepted and ignored (Velero applies the prefix to keys itself)." },
  caCert: { value: text(), description: "Accepted and ignored." },
  credentialsFile: { value: text(), description: "Accepted and ignored." },
  createBuckets: {
    docs: "Opt-in to create a missing bucket directory on its first put (see below)",
    default: "`false`",
    value: flag(false),
    description:
      "Opt-in (contract clause 5.0.3): true to let a put create its missing bucket directory (default false: a missing bucket is BUCKET_NOT_FOUND).",
  },
  objectLock: {
    docs: "Make every bucket lockable: objects can carry a retention or legal hold that the plugin enforces ([Object protection](#object-protection))",
    default: "`false`",
    value: flag(false),
    description:
      "true to make every bucket lockable (contract 5.9): objects can carry a retention or a legal hold, and the plugin itself refuses to delete or overwrite them. It cannot protect against anyone with write access to the directory (or root), against changes of the host's clock, or against the files being deleted outside the plugin. Default false: protection requests fail with BUCKET_NOT_LOCKABLE; protections already stored are still enforced (and can only be changed with objectLock on).",
  },
  fsync: {
    docs: "Flush data and directories before a put returns",
    default: "`true`", value: flag(true), description: "false to skip flushing objects to stable storage before a put returns (default true)." },
  ...FILE_CONFIG.declarations,
  signedUrlAddress: {
    docs: "`host:port` the signed-URL HTTP server binds; a fixed port starts it at `init`",
    default: "`127.0.0.1:0`",
    value: custom({ syntax: "host:port", defaultText: "127.0.0.1:0", parse: (value, key) => parseAddress(key, value) }),
    description: "host:port the signed-URL HTTP server binds (default 127.0.0.1:0, a free port chosen per process). A fixed port starts the server at init.",
  },
  signedUrlBase: {
    docs: "Public base URL put in signed URLs",
    default: "bound address",
    value: custom({ syntax: "http or https URL", parse: (value, key) => parseBase(key, value) }),
    description: "Public base URL put in signed URLs instead of the bound address, e.g. https://backups.example.com.",
  },
  maxSignedUrlTtl: {
    aliases: ["maxSignedUrlTtlSeconds"],
    value: duration({
      default: DEFAULT_MAX_SIGNED_URL_TTL_SECONDS * 1000,
      bareIntegerOnly: true,
      min: 1000,
      outOfRange: (key) => `${key} must be at least 1`,
    }),
    description: "Longest validity of a signed URL: a duration (24h) or whole seconds (default 604800, 7 days).",
    docs: "Longest validity of a signed URL: a duration (`24h`) or whole seconds (default 604800, 7 days).",
  },
  signingKeyFile: {
    docs: "File holding the URL-signing key, created with mode 0600 if missing ([Signed URLs](#signed-urls))",
    default: "(random key per process)",
    value: text(),
    description: `File holding the key that signs URLs (at least ${String(MIN_SIGNING_KEY_BYTES)} bytes, surrounding whitespace ignored); created with mode 0600 and a random key when missing. Default: a random key per process.`,
  },
  signingKey: {
    docs: "The URL-signing key itself; **secret** (never logged)",
    default: "(random key per process)",
    value: text(),
    secret: true,
    description: `The key that signs URLs itself (at least ${String(MIN_SIGNING_KEY_BYTES)} characters); prefer signingKeyFile. Default: a random key per process.`,
  },
});

/** The configuration keys of the local ObjectStore. */
export const OBJECT_STORE_CONFIG_KEYS = OBJECT_STORE_CONFIG.keys;


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
  /** Every bucket is lockable: protected objects can be stored (format 2 files are written). */
  readonly objectLock: boolean;
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
  const values = OBJECT_STORE_CONFIG.parse(config);
  return {
    root: resolve(values.root ?? ""),
    createBuckets: values.createBuckets,
    fsync: values.fsync,
    objectLock: values.objectLock,
    files: fileSettings(values),
    signedUrlHost: values.signedUrlAddress.host,
    signedUrlPort: values.signedUrlAddress.port,
    signedUrlBase: values.signedUrlBase,
    maxSignedUrlTtlSeconds: Math.floor(values.maxSignedUrlTtl / 1000),
    signingKey: signingKeySource(values.signingKeyFile, values.signingKey),
  };
}

/** Parses `host:port` or `[ipv6]:port`; empty means `127.0.0.1:0`. */
function parseAddress(key: string, value: string | undefined): { host: string; port: number } {
  if (value === undefined) return { host: "127.0.0.1", port: 0 };
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !(port <= 65_535)) {
    throw invalidConfig(key, `${key} ${JSON.stringify(value)} must look like host:port, e.g. 127.0.0.1:8089 or [::1]:0`);
  }
  return { host, port };
}

/** Parses the optional public base URL: an absolute http(s) URL without query or fragment. */
function parseBase(key: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw invalidConfig(key, `${key} ${JSON.stringify(value)} is not a URL`, error);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "") {
    throw invalidConfig(key, `${key} ${JSON.stringify(value)} must be an http or https URL without query or fragment`);
  }
  return url.href.replace(/\/+$/, "");
}

/** `signingKeyFile` or `signingKey` (not both); the secret value never appears in errors. */
function signingKeySource(file: string | undefined, inline: string | undefined): SigningKeySource {
  if (file !== undefined && inline !== undefined) throw invalidConfig("signingKey", "set signingKeyFile or signingKey, not both");
  if (file !== undefined) return { kind: "file", path: resolve(file) };
  if (inline === undefined) return { kind: "random" };
  const key = Buffer.from(inline, "utf8");
  if (key.length < MIN_SIGNING_KEY_BYTES) {
    throw invalidConfig("signingKey", `signingKey must hold at least ${String(MIN_SIGNING_KEY_BYTES)} bytes, it holds ${String(key.length)}; use a long random value`);
  }
  return { kind: "inline", key };
}
