/**
 * Configuration of the Blob ObjectStore: the keys `init` accepts (Velero-compatible names), their
 * parsing, and the `@azure/storage-blob` client built from them.
 *
 * @packageDocumentation
 */
import type { TokenCredential } from "@azure/core-auth";
import { BlobServiceClient, StorageSharedKeyCredential, AnonymousCredential, StorageRetryPolicyType, type StoragePipelineOptions } from "@azure/storage-blob";
import { Code, Reason, StowageError, type ConfigKeySpec, type Logger, type PluginConfig } from "@stowage/sdk";
import { configBoolean, configInteger, validateConfig } from "@stowage/sdk/plugin";
import { readFile } from "node:fs/promises";
import { rootCertificates } from "node:tls";
import { createTokenCredential, loadCredentialsFile, resolveCloud } from "../shared/credentials.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Default block size of staged uploads: 8 MiB (objects up to 8 MiB × 50,000 ≈ 390 GiB). */
export const DEFAULT_BLOCK_SIZE = 8 * MiB;
/** Largest configurable block size: 100 MiB (larger values are clamped, as Velero does). */
export const MAX_CONFIG_BLOCK_SIZE = 100 * MiB;
/** Largest block Azure accepts: 4000 MiB. */
export const MAX_AZURE_BLOCK_SIZE = 4000 * MiB;
/** Most blocks in one block blob. */
export const MAX_BLOCKS = 50_000;
/** Default number of blocks staged at once per upload. */
export const DEFAULT_UPLOAD_CONCURRENCY = 4;
/** Largest `uploadConcurrency`. */
export const MAX_UPLOAD_CONCURRENCY = 64;
/** Default deadline of one service call (each staged block, commit, head, delete, list page), in seconds. */
export const DEFAULT_REQUEST_TIMEOUT_SECONDS = 120;

/** The keys of the Blob ObjectStore (`stowage.io/azure`). */
export const BLOB_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "bucket", description: "The container. Calls name their container themselves; accepted for Velero compatibility." },
  { name: "prefix", description: "Accepted and ignored (the caller applies the prefix to keys itself)." },
  { name: "storageAccount", description: "Storage account name.", required: true },
  {
    name: "storageAccountURI",
    description: "Blob endpoint, e.g. https://acct.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1 (Azurite). Default: https://<storageAccount>.blob.<cloud's storage suffix>.",
  },
  {
    name: "storageAccountKeyEnvVar",
    description: "Name of the entry in the credentials file (or, failing that, the process environment) that holds the storage account key: shared-key auth.",
  },
  { name: "useAAD", description: "true to authenticate with Entra ID (service principal, workload identity or managed identity from the credentials file). Default false." },
  { name: "activeDirectoryAuthorityURI", description: "Entra ID authority host for sovereign or private clouds, e.g. https://login.microsoftonline.us/." },
  { name: "resourceGroup", description: "Resource group of the account; accepted for Velero compatibility (only ARM key exchange needs it, which this plugin does not do)." },
  { name: "subscriptionId", description: "Subscription of the account; accepted for Velero compatibility (see resourceGroup)." },
  {
    name: "blockSizeInBytes",
    description: `Block size of staged uploads, in bytes (or with a KiB/MiB suffix). Default 8 MiB; non-numeric or ≤ 0 → default with a warning; > 100 MiB → 100 MiB with a warning. An object can have at most ${MAX_BLOCKS} blocks.`,
  },
  { name: "uploadConcurrency", description: `Blocks staged at once per upload, 1 to ${MAX_UPLOAD_CONCURRENCY}; default ${DEFAULT_UPLOAD_CONCURRENCY}. Memory per upload is about blockSizeInBytes × (uploadConcurrency + 1).` },
  { name: "requestTimeoutSeconds", description: `Deadline in seconds of each service call (a staged block, the commit, a head, a delete, one list page, a read until its response starts), retries included; also the longest a read's body may wait for the server mid-way. Default ${DEFAULT_REQUEST_TIMEOUT_SECONDS}.` },
  { name: "maxRetries", description: "Retries of a failed request (503, 500, network errors), exponential backoff. Default 3." },
  { name: "caCert", description: "PEM certificate authorities (the text, or a file path) trusted in addition to the system roots." },
  { name: "credentialsFile", description: "dotenv credentials file (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_CLOUD_NAME, account key entries, AZURE_STORAGE_SAS_TOKEN). Default $AZURE_CREDENTIALS_FILE." },
];

/** How the data plane is authenticated. */
export type BlobAuthKind = "shared-key" | "sas" | "entra-id";

/** Everything the Blob ObjectStore needs once configured. */
export interface BlobStoreSettings {
  /** The service client of all data calls. */
  readonly service: BlobServiceClient;
  /** The account name. */
  readonly accountName: string;
  /** The blob endpoint, without a trailing slash or query. */
  readonly endpoint: string;
  /** How requests are authenticated. */
  readonly auth: BlobAuthKind;
  /** The shared key credential (shared-key auth): signs service SAS URLs. */
  readonly sharedKey: StorageSharedKeyCredential | undefined;
  /** Block size of staged uploads. */
  readonly blockSize: number;
  /** Blocks staged at once. */
  readonly uploadConcurrency: number;
  /** Deadline of one service call, in milliseconds. */
  readonly requestTimeoutMs: number;
}

/** Options of {@link configureBlobStore}. */
export interface ConfigureBlobStoreOptions {
  /** Receives warnings about lenient values (`blockSizeInBytes`). */
  readonly logger?: Logger | undefined;
  /** The cancellation signal of `init`. */
  readonly signal?: AbortSignal | undefined;
  /** Environment for `$AZURE_CREDENTIALS_FILE` and the key fallback; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * A token credential to use with `useAAD` instead of one built from the credentials file
   * (tests, embedders).
   */
  readonly tokenCredential?: TokenCredential | undefined;
  /** Base delay between retries in milliseconds; default 800. */
  readonly retryDelayMs?: number | undefined;
}

/** An `INVALID_CONFIG` error about one key. */
export function invalidConfig(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, cause });
}

function configString(config: PluginConfig, key: string): string | undefined {
  const value = (config[key] ?? "").trim();
  return value === "" ? undefined : value;
}

/**
 * Parses `blockSizeInBytes` with Velero's leniency: absent → default; non-numeric or ≤ 0 → default
 * with a warning; above {@link MAX_CONFIG_BLOCK_SIZE} → clamped with a warning. Accepts plain
 * bytes or a KiB/MiB suffix.
 */
export function parseBlockSize(raw: string | undefined, logger?: Logger): number {
  const value = (raw ?? "").trim();
  if (value === "") return DEFAULT_BLOCK_SIZE;
  const match = /^(\d+)\s*(B|KiB|K|MiB|M)?$/i.exec(value);
  const unit = (match?.[2] ?? "B").toLowerCase();
  const bytes = match === null ? NaN : Number(match[1]) * (unit.startsWith("m") ? MiB : unit.startsWith("k") ? KiB : 1);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    logger?.warn({ blockSizeInBytes: value, used: DEFAULT_BLOCK_SIZE }, "blockSizeInBytes is not a positive number of bytes; using the default");
    return DEFAULT_BLOCK_SIZE;
  }
  if (bytes > MAX_CONFIG_BLOCK_SIZE) {
    logger?.warn({ blockSizeInBytes: value, used: MAX_CONFIG_BLOCK_SIZE }, "blockSizeInBytes is above 100 MiB; clamped to 100 MiB to bound memory");
    return MAX_CONFIG_BLOCK_SIZE;
  }
  return bytes;
}

async function parseCaCert(config: PluginConfig): Promise<string | undefined> {
  const raw = configString(config, "caCert");
  if (raw === undefined) return undefined;
  if (raw.includes("-----BEGIN")) return raw;
  let text: string;
  try {
    text = await readFile(raw, "utf8");
  } catch (error) {
    throw invalidConfig("caCert", `caCert must be PEM text or the path of a PEM file; cannot read ${JSON.stringify(raw)}`, error);
  }
  if (!text.includes("-----BEGIN")) throw invalidConfig("caCert", `caCert file ${JSON.stringify(raw)} holds no PEM certificate`);
  return text;
}


function parseEndpoint(config: PluginConfig, accountName: string, storageSuffix: string): string {
  const raw = configString(config, "storageAccountURI");
  if (raw === undefined) return `https://${accountName}.blob.${storageSuffix}`;
  let url: URL;
  try {
    url = new URL(raw);
  } catch (error) {
    throw invalidConfig("storageAccountURI", `storageAccountURI ${JSON.stringify(raw)} is not a URL; use e.g. https://${accountName}.blob.core.windows.net`, error);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalidConfig("storageAccountURI", `storageAccountURI ${JSON.stringify(raw)} must use the http or https scheme`);
  }
  if (url.search !== "") {
    throw invalidConfig("storageAccountURI", "storageAccountURI must not carry a query string; put a SAS token in the credentials file as AZURE_STORAGE_SAS_TOKEN");
  }
  return `${url.origin}${url.pathname}`.replace(/\/+$/, "");
}

/**
 * Validates an `init` configuration and builds the Blob client. Authentication, in Velero's order:
 * `storageAccountKeyEnvVar` → shared key; `useAAD=true` → Entra ID token credential (user
 * delegation SAS for signed URLs); otherwise a SAS token from `AZURE_STORAGE_SAS_TOKEN` in the
 * credentials file. Velero's third way, exchanging a key through ARM ListKeys, is not offered:
 * without one of these the call fails with `INVALID_CONFIG` naming the options.
 */
export async function configureBlobStore(config: PluginConfig, options: ConfigureBlobStoreOptions = {}): Promise<BlobStoreSettings> {
  validateConfig(config, BLOB_CONFIG_KEYS);
  options.signal?.throwIfAborted();
  const env = options.env ?? process.env;
  const accountName = configString(config, "storageAccount") ?? "";
  if (!/^[a-z0-9]{3,24}$/.test(accountName)) {
    throw invalidConfig("storageAccount", `storageAccount ${JSON.stringify(accountName)} is not a storage account name (3–24 lower-case letters and digits)`);
  }
  const uploadConcurrency = configInteger(config, "uploadConcurrency", DEFAULT_UPLOAD_CONCURRENCY);
  if (uploadConcurrency < 1 || uploadConcurrency > MAX_UPLOAD_CONCURRENCY) {
    throw invalidConfig("uploadConcurrency", `uploadConcurrency must be 1 to ${MAX_UPLOAD_CONCURRENCY}, got ${uploadConcurrency}`);
  }
  const timeoutSeconds = configInteger(config, "requestTimeoutSeconds", DEFAULT_REQUEST_TIMEOUT_SECONDS);
  if (timeoutSeconds < 1) throw invalidConfig("requestTimeoutSeconds", "requestTimeoutSeconds must be at least 1");
  const maxRetries = configInteger(config, "maxRetries", 3);
  if (maxRetries > 20) throw invalidConfig("maxRetries", `maxRetries must be 0 to 20, got ${maxRetries}`);
  const useAAD = configBoolean(config, "useAAD", false);
  const blockSize = parseBlockSize(config.blockSizeInBytes, options.logger);
  const ca = await parseCaCert(config);

  // An explicit credentialsFile must exist; $AZURE_CREDENTIALS_FILE may be absent (Velero's rule).
  const credentialsPath = configString(config, "credentialsFile") ?? env.AZURE_CREDENTIALS_FILE;
  const values = await loadCredentialsFile(configString(config, "credentialsFile"), env);
  const authority = configString(config, "activeDirectoryAuthorityURI");
  const cloud = resolveCloud(values.AZURE_CLOUD_NAME, authority);
  const endpoint = parseEndpoint(config, accountName, cloud.storageEndpointSuffix.replace(/^\.+/, ""));

  const keyName = configString(config, "storageAccountKeyEnvVar");
  let credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredential;
  let auth: BlobAuthKind;
  let sharedKey: StorageSharedKeyCredential | undefined;
  let url = endpoint;
  if (keyName !== undefined) {
    const key = (values[keyName] ?? env[keyName] ?? "").trim();
    if (key === "") {
      throw invalidConfig(
        "storageAccountKeyEnvVar",
        `storageAccountKeyEnvVar names ${JSON.stringify(keyName)}, but ${credentialsPath === undefined ? "no credentials file is configured and the environment has" : `the credentials file ${JSON.stringify(credentialsPath)} (and the environment) has`} no such entry; add ${keyName}=<account key> to the credentials file`,
      );
    }
    try {
      sharedKey = new StorageSharedKeyCredential(accountName, key);
    } catch (error) {
      throw invalidConfig("storageAccountKeyEnvVar", `the value of ${keyName} is not a base64 storage account key`, error);
    }
    credential = sharedKey;
    auth = "shared-key";
  } else if (useAAD) {
    try {
      // caCert also covers the token endpoint (private clouds behind the same CA).
      credential = options.tokenCredential ?? createTokenCredential(values, { authorityHost: authority, env, caCert: ca });
    } catch (error) {
      if (error instanceof StowageError) throw error;
      throw invalidConfig("useAAD", `cannot build an Entra ID credential from the credentials file: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    auth = "entra-id";
  } else if ((values.AZURE_STORAGE_SAS_TOKEN ?? "").trim() !== "") {
    const token = (values.AZURE_STORAGE_SAS_TOKEN ?? "").trim().replace(/^\?/, "");
    credential = new AnonymousCredential();
    url = `${endpoint}?${token}`;
    auth = "sas";
  } else {
    throw invalidConfig(
      "storageAccountKeyEnvVar",
      "no way to authenticate to the storage account: set storageAccountKeyEnvVar to the name of a credentials-file entry holding the account key, " +
        "or set useAAD=true with an Entra ID identity (service principal in the credentials file, workload identity or managed identity), " +
        "or put a SAS token in the credentials file as AZURE_STORAGE_SAS_TOKEN. Exchanging a key through ARM ListKeys (Velero's fallback) is not supported.",
    );
  }

  // The storage pipeline hands unknown options on to core-rest-pipeline, whose tlsPolicy sets the CA.
  const pipelineOptions: StoragePipelineOptions & { tlsOptions?: { ca: string[] } } = {
    ...(ca === undefined ? {} : { tlsOptions: { ca: [...rootCertificates, ca] } }),
    retryOptions: {
      retryPolicyType: StorageRetryPolicyType.EXPONENTIAL,
      maxTries: maxRetries + 1,
      retryDelayInMs: options.retryDelayMs ?? 800,
      maxRetryDelayInMs: 30_000,
    },
    keepAliveOptions: { enable: true },
    userAgentOptions: { userAgentPrefix: "stowage-plugin-azure" },
  };
  const service = new BlobServiceClient(url, credential, pipelineOptions);
  return { service, accountName, endpoint, auth, sharedKey, blockSize, uploadConcurrency, requestTimeoutMs: timeoutSeconds * 1000 };
}
