/**
 * Configuration of the Blob ObjectStore: the keys `init` accepts (Velero-compatible names), their
 * parsing, and the `@azure/storage-blob` client built from them.
 *
 * @packageDocumentation
 */
import type { TokenCredential } from "@azure/core-auth";
import { BlobServiceClient, StorageSharedKeyCredential, AnonymousCredential, StorageRetryPolicyType, type StoragePipelineOptions } from "@azure/storage-blob";
import { Code, Reason, StowageError, type ConfigKeySpec, type Logger, type PluginConfig } from "@stowage/sdk";
import {
  backendTimeoutDeclarations,
  backendTimeouts,
  createBackendAgents,
  custom,
  defineConfig,
  flag,
  integer,
  invalidConfig,
  parseSize,
  readCaCert,
  requestDeadline,
  text,
  type BackendAgents,
  type BackendTimeouts,
} from "@stowage/sdk/plugin";
import type { Agent } from "node:http";
import { rootCertificates } from "node:tls";
import { armClientSettings, httpsUrl } from "../shared/arm.js";
import { createTokenCredential, loadCredentialsFile, resolveCloud } from "../shared/credentials.js";
import { timedHttpClient, type TimedHttpClient } from "../shared/http-client.js";
import type { StorageManagementClient } from "@azure/arm-storage";
import { discoverBlobEndpoint, exchangeAccountKey, resolveBlobEndpoint, storageManagementClient, type BlobEndpointSource, type StorageAccountLocation } from "./account-arm.js";

const MiB = 1024 * 1024;
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

/** The configuration of the Blob ObjectStore (`stowage.io/azure`), declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const BLOB_CONFIG = defineConfig({
  bucket: {
    docs: "The container (calls name their container themselves; accepted for Velero compatibility)", value: text(), description: "The container. Calls name their container themselves; accepted for Velero compatibility." },
  prefix: {
    docs: "Accepted and ignored (the caller applies it to keys)", value: text(), description: "Accepted and ignored (the caller applies the prefix to keys itself)." },
  storageAccount: {
    docs: "Storage account name (3–24 lower-case letters and digits; `devstoreaccount1` for Azurite)", value: text(), description: "Storage account name.", required: true },
  storageAccountURI: {
    docs: "Blob endpoint; for Azurite `http://127.0.0.1:<port>/devstoreaccount1`. No query string (a SAS goes in the credentials file). Without it, see **Endpoint** below",
    default: "discovered, else `https://<storageAccount>.blob.<cloud suffix>`",
    value: text(),
    description:
      "Blob endpoint, e.g. https://acct.blob.core.windows.net or http://127.0.0.1:10000/devstoreaccount1 (Azurite). Default: with useAAD or the ListKeys exchange, the account's primary blob endpoint as Resource Manager reports it; otherwise, or when that fails, https://<storageAccount>.blob.<cloud's storage suffix>.",
  },
  storageAccountKeyEnvVar: {
    docs: "Name of the credentials-file entry holding the account key (Velero semantics: despite the name, it is looked up in the credentials file first, then in the process environment) → shared-key auth",
    value: text(),
    description: "Name of the entry in the credentials file (or, failing that, the process environment) that holds the storage account key: shared-key auth.",
  },
  useAAD: {
    docs: "`true`: Entra ID token auth (service principal, workload identity or managed identity, chosen from the credentials file); signed URLs become user delegation SAS",
    default: "`false`", value: flag(false), description: "true to authenticate with Entra ID (service principal, workload identity or managed identity from the credentials file). Default false." },
  activeDirectoryAuthorityURI: {
    docs: "Entra ID authority host for sovereign or private clouds",
    default: "per cloud", value: text(), description: "Entra ID authority host for sovereign or private clouds, e.g. https://login.microsoftonline.us/." },
  resourceGroup: {
    docs: "Resource group of the account, for the same",
    default: "`AZURE_RESOURCE_GROUP` of the credentials file",
    value: text(),
    description: "Resource group of the account, for the ListKeys exchange and blob endpoint discovery through Resource Manager. Default: AZURE_RESOURCE_GROUP of the credentials file.",
  },
  subscriptionId: {
    docs: "Subscription of the account, for the `ListKeys` exchange and endpoint discovery",
    default: "`AZURE_SUBSCRIPTION_ID` of the credentials file", value: text(), description: "Subscription of the account (see resourceGroup). Default: AZURE_SUBSCRIPTION_ID of the credentials file." },
  resourceManagerEndpoint: {
    docs: "Resource Manager endpoint (https) for those two calls; for sovereign or private clouds and tests",
    default: "per cloud",
    value: httpsUrl(),
    description: "Resource Manager endpoint override (https) for the ListKeys exchange and endpoint discovery, for sovereign or private clouds and tests. Default: the cloud's.",
  },
  blockSize: {
    // Read leniently, as Velero does (see parseBlockSize): a bad value warns and takes the default.
    value: custom({ syntax: "size", defaultText: "8MiB", parse: (value) => value }),
    aliases: ["blockSizeInBytes"],
    default: "`8MiB`",
    description: `Block size of staged uploads, in bytes (or with a KiB/MiB suffix); blockSizeInBytes, Velero's name, is an alias. Default 8 MiB; non-numeric or ≤ 0 → default with a warning; > 100 MiB → 100 MiB with a warning. An object can have at most ${MAX_BLOCKS} blocks.`,
    docs: `Block size of staged uploads: a size (\`16MiB\`, or bytes; the shared size syntax); \`blockSizeInBytes\` is Velero's name for it. Velero's leniency: not a size or ≤ 0 → default with a warning; > 100 MiB → 100 MiB with a warning. An object can have at most ${MAX_BLOCKS} blocks.`,
  },
  uploadConcurrency: {
    docs: "Blocks staged at once per put, 1–64",
    default: "`4`",
    value: integer({ default: DEFAULT_UPLOAD_CONCURRENCY, min: 1, max: MAX_UPLOAD_CONCURRENCY }),
    description: `Blocks staged at once per upload, 1 to ${MAX_UPLOAD_CONCURRENCY}; default ${DEFAULT_UPLOAD_CONCURRENCY}. Memory per upload is about blockSize × (uploadConcurrency + 1).`,
  },
  directTransfer: {
    docs: "`false`: decline every direct-transfer plan (contract 5.8), so the host streams bodies through the plugin with `PutObject`/`GetObject`. With `true`, plans are signed with the account key (service SAS) or, with `useAAD`, a user delegation key; SAS-token auth always declines. See **Direct transfer** below",
    default: "`true`",
    value: flag(true),
    description:
      "false to decline every direct-transfer plan (contract 5.8), so the host streams object bodies through the plugin. Default true: the host reads and writes blobs itself with SAS-signed requests (account key or user delegation key; SAS-token auth declines).",
  },
  // requestTimeout bounds each service call (a staged block, the commit, a head, a delete, one
  // list page, a read until its response starts), retries included.
  ...backendTimeoutDeclarations(undefined, {
    connectTimeout: "Longest wait for a connection (TCP and TLS) to Blob Storage, Resource Manager and Entra ID. Default 10.",
    requestTimeout: "Deadline of each service call, retries included; of each try for Resource Manager and Entra ID. Default 120.",
    idleTimeout: "Longest a request, or a get's body while the reader waits, may move no byte. Default 60.",
  }),
  maxRetries: {
    docs: "Retries of 500/503 answers and network errors, exponential backoff (first retry at once, then 0.8 s, 2.4 s, …)",
    default: "`3`", value: integer({ default: 3, max: 20 }), description: "Retries of a failed request (503, 500, network errors), exponential backoff. Default 3." },
  caCert: {
    docs: "PEM certificate authorities (text, or a file path) trusted in addition to the system roots", value: text(), description: "PEM certificate authorities (the text, or a file path) trusted in addition to the system roots." },
  credentialsFile: {
    docs: "Dotenv credentials file: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`, `AZURE_CLOUD_NAME`, `AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`, the account-key entry, `AZURE_STORAGE_SAS_TOKEN`",
    default: "`$AZURE_CREDENTIALS_FILE`",
    value: text(),
    description:
      "dotenv credentials file (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, AZURE_CLOUD_NAME, AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, account key entries, AZURE_STORAGE_SAS_TOKEN). Default $AZURE_CREDENTIALS_FILE.",
  },
});

/** The keys of the Blob ObjectStore (`stowage.io/azure`). */
export const BLOB_CONFIG_KEYS: readonly ConfigKeySpec[] = BLOB_CONFIG.keys;

/**
 * How the data plane is authenticated: `shared-key` (key from the credentials file), `sas`,
 * `entra-id` (`useAAD`), or `listkeys` (shared key obtained through Resource Manager ListKeys).
 */
export type BlobAuthKind = "shared-key" | "sas" | "entra-id" | "listkeys";

/** Everything the Blob ObjectStore needs once configured. */
export interface BlobStoreSettings {
  /** The service client of all data calls. */
  readonly service: BlobServiceClient;
  /** The account name. */
  readonly accountName: string;
  /** The blob endpoint, without a trailing slash or query. */
  readonly endpoint: string;
  /** How the endpoint was found: `storageAccountURI`, Resource Manager, or the cloud's default. */
  readonly endpointSource: BlobEndpointSource;
  /** How requests are authenticated. */
  readonly auth: BlobAuthKind;
  /** The shared key credential (shared-key and ListKeys auth): signs service SAS URLs. */
  readonly sharedKey: StorageSharedKeyCredential | undefined;
  /** Block size of staged uploads. */
  readonly blockSize: number;
  /** Blocks staged at once. */
  readonly uploadConcurrency: number;
  /** Whether direct-transfer plans are signed (`directTransfer`); `false` declines them all. */
  readonly directTransfer: boolean;
  /** Connect, request (per service call, retries included) and idle timeouts. */
  readonly timeouts: BackendTimeouts;
  /** The connections of the Blob requests; closed by `close()`. */
  readonly agents: BackendAgents;
  /** The HTTP client of the Resource Manager and Entra ID requests. */
  readonly armHttpClient: TimedHttpClient;
}

/** Options of `configureBlobStore`. */
export interface ConfigureBlobStoreOptions {
  /** Receives warnings about lenient values (`blockSize`). */
  readonly logger?: Logger | undefined;
  /** The cancellation signal of `init`. */
  readonly signal?: AbortSignal | undefined;
  /** Environment for `$AZURE_CREDENTIALS_FILE` and the key fallback; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /**
   * A token credential to use instead of one built from the credentials file, for `useAAD` and
   * for the Resource Manager calls (ListKeys, endpoint discovery) (tests, embedders).
   */
  readonly tokenCredential?: TokenCredential | undefined;
  /** Base delay between retries in milliseconds; default 800. */
  readonly retryDelayMs?: number | undefined;
}

/**
 * Parses `blockSize` (or Velero's `blockSizeInBytes`) with Velero's leniency: absent → default;
 * non-numeric or ≤ 0 → default with a warning; above {@link MAX_CONFIG_BLOCK_SIZE} → clamped with a
 * warning. Accepts the shared size syntax (`parseSize` of `@stowage/sdk/plugin`: bytes, or a
 * KiB/MiB/GiB suffix).
 *
 * @param key - The name the configuration gave the value, for the warnings.
 */
export function parseBlockSize(raw: string | undefined, logger?: Logger, key = "blockSize"): number {
  const value = (raw ?? "").trim();
  if (value === "") return DEFAULT_BLOCK_SIZE;
  const bytes = parseSize(value);
  if (bytes === undefined || bytes <= 0) {
    logger?.warn({ [key]: value, used: DEFAULT_BLOCK_SIZE }, `${key} is not a positive number of bytes; using the default`);
    return DEFAULT_BLOCK_SIZE;
  }
  if (bytes > MAX_CONFIG_BLOCK_SIZE) {
    logger?.warn({ [key]: value, used: MAX_CONFIG_BLOCK_SIZE }, `${key} is above 100 MiB; clamped to 100 MiB to bound memory`);
    return MAX_CONFIG_BLOCK_SIZE;
  }
  return bytes;
}

/** Validates a blob endpoint (http or https, no query) and strips trailing slashes. */
function normaliseEndpoint(raw: string, accountName: string): string {
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
 *
 * 1. `storageAccountKeyEnvVar` → shared key from that credentials-file entry;
 * 2. `useAAD=true` → Entra ID token credential (user delegation SAS for signed URLs);
 * 3. a SAS token in the credentials file as `AZURE_STORAGE_SAS_TOKEN` (Stowage's addition);
 * 4. otherwise Velero's default: the identity of the credentials file lists the account's keys
 *    through Resource Manager (ListKeys, first key with `Full` permissions) → shared key. This
 *    needs the subscription (`subscriptionId` or `AZURE_SUBSCRIPTION_ID`) and resource group
 *    (`resourceGroup` or `AZURE_RESOURCE_GROUP`).
 *
 * The endpoint is `storageAccountURI` if set; else, with 2 and 4 (when the subscription and resource
 * group are known), the primary blob endpoint Resource Manager reports; else, or when that call
 * fails (logged at debug level), `https://<account>.blob.<cloud's storage suffix>`.
 */
export async function configureBlobStore(config: PluginConfig, options: ConfigureBlobStoreOptions = {}): Promise<BlobStoreSettings> {
  const cfg = BLOB_CONFIG.parse(config);
  options.signal?.throwIfAborted();
  const env = options.env ?? process.env;
  const accountName = cfg.storageAccount ?? "";
  if (!/^[a-z0-9]{3,24}$/.test(accountName)) {
    throw invalidConfig("storageAccount", `storageAccount ${JSON.stringify(accountName)} is not a storage account name (3–24 lower-case letters and digits)`);
  }
  const uploadConcurrency = cfg.uploadConcurrency;
  const timeouts = backendTimeouts(cfg);
  const maxRetries = cfg.maxRetries;
  const useAAD = cfg.useAAD;
  const blockSize = parseBlockSize(cfg.blockSize, options.logger, (config.blockSize ?? "").trim() === "" && config.blockSizeInBytes !== undefined ? "blockSizeInBytes" : "blockSize");
  const ca = await readCaCert(cfg.caCert);
  const configuredEndpoint = cfg.storageAccountURI === undefined ? undefined : normaliseEndpoint(cfg.storageAccountURI, accountName);
  const resourceManagerEndpoint = cfg.resourceManagerEndpoint;

  // An explicit credentialsFile must exist; $AZURE_CREDENTIALS_FILE may be absent (Velero's rule).
  const credentialsPath = cfg.credentialsFile ?? env.AZURE_CREDENTIALS_FILE;
  const values = await loadCredentialsFile(cfg.credentialsFile, env);
  const authority = cfg.activeDirectoryAuthorityURI;
  const cloud = resolveCloud(values.AZURE_CLOUD_NAME, authority);
  const agents = createBackendAgents({ timeouts, https: ca === undefined ? undefined : { ca: [...rootCertificates, ca] } });
  // Resource Manager and Entra ID requests are bounded one by one (their calls are the SDKs').
  const armHttpClient = timedHttpClient({ timeouts, caCert: ca, perAttemptTimeout: true });
  const arm = armClientSettings(cloud, { endpointOverride: resourceManagerEndpoint, maxRetries, retryDelayMs: options.retryDelayMs, caCert: ca, httpClient: armHttpClient });
  const subscriptionId = cfg.subscriptionId ?? ((values.AZURE_SUBSCRIPTION_ID ?? "").trim() || undefined);
  const resourceGroup = cfg.resourceGroup ?? ((values.AZURE_RESOURCE_GROUP ?? "").trim() || undefined);
  const location: StorageAccountLocation | undefined =
    subscriptionId === undefined || resourceGroup === undefined ? undefined : { subscriptionId, resourceGroup, accountName };
  const fileName = credentialsPath === undefined || credentialsPath === "" ? "(none configured: set credentialsFile or AZURE_CREDENTIALS_FILE)" : JSON.stringify(credentialsPath);
  const tokenCredential = (): TokenCredential => {
    try {
      // caCert also covers the token endpoint (private clouds behind the same CA).
      return options.tokenCredential ?? createTokenCredential(values, { authorityHost: authority, env, caCert: ca, httpClient: armHttpClient });
    } catch (error) {
      if (error instanceof StowageError) throw error;
      throw invalidConfig(useAAD ? "useAAD" : "credentialsFile", `cannot build an Entra ID credential from the credentials file: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  };
  // Resource Manager calls made during init get the same deadline as a data call.
  const armSignal = (what: string): AbortSignal => requestDeadline(options.signal, timeouts.requestTimeoutMs, what).signal;

  const keyName = cfg.storageAccountKeyEnvVar;
  let credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredential;
  let auth: BlobAuthKind;
  let sharedKey: StorageSharedKeyCredential | undefined;
  let sasToken: string | undefined;
  // With an identity, Resource Manager may know the account's real endpoint (Azure DNS zones).
  let armClient: StorageManagementClient | undefined;
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
    credential = tokenCredential();
    if (location !== undefined) armClient = storageManagementClient(credential, location.subscriptionId, arm);
    auth = "entra-id";
  } else if ((values.AZURE_STORAGE_SAS_TOKEN ?? "").trim() !== "") {
    sasToken = (values.AZURE_STORAGE_SAS_TOKEN ?? "").trim().replace(/^\?/, "");
    credential = new AnonymousCredential();
    auth = "sas";
  } else {
    if (location === undefined) {
      const key = subscriptionId === undefined ? "subscriptionId" : "resourceGroup";
      const entry = subscriptionId === undefined ? "AZURE_SUBSCRIPTION_ID" : "AZURE_RESOURCE_GROUP";
      throw invalidConfig(
        key,
        `no storageAccountKeyEnvVar, useAAD or AZURE_STORAGE_SAS_TOKEN is set, so the plugin would exchange the credentials file's identity for the account key through Resource Manager (ListKeys), ` +
          `which needs the account's ${key === "subscriptionId" ? "subscription" : "resource group"}: set ${key} in the configuration or ${entry} in the credentials file ${fileName}. ` +
          "Or avoid the exchange: set storageAccountKeyEnvVar to the name of a credentials-file entry holding the account key, or set useAAD=true with an Entra ID identity",
      );
    }
    armClient = storageManagementClient(tokenCredential(), location.subscriptionId, arm);
    const key = await exchangeAccountKey(armClient, location, armSignal("list storage account keys"));
    try {
      sharedKey = new StorageSharedKeyCredential(accountName, key);
    } catch (error) {
      throw new StowageError(Code.Internal, `the key Resource Manager returned for storage account ${JSON.stringify(accountName)} is not base64`, { reason: Reason.Internal, cause: error });
    }
    credential = sharedKey;
    auth = "listkeys";
  }

  const discoverWith = armClient;
  const { endpoint, source: endpointSource } = await resolveBlobEndpoint({
    accountName,
    storageEndpointSuffix: cloud.storageEndpointSuffix,
    configured: configuredEndpoint,
    discover: discoverWith === undefined || location === undefined ? undefined : () => discoverBlobEndpoint(discoverWith, location, armSignal("get storage account properties")),
    normalise: (url) => normaliseEndpoint(url, accountName),
    logger: options.logger,
  });
  options.signal?.throwIfAborted();
  const url = sasToken === undefined ? endpoint : `${endpoint}?${sasToken}`;

  // The agent carries the CA and the connect and idle timeouts (core-rest-pipeline's agentPolicy).
  const pipelineOptions: StoragePipelineOptions & { agent: Agent } = {
    agent: agents.forUrl(endpoint),
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
  return { service, accountName, endpoint, endpointSource, auth, sharedKey, blockSize, uploadConcurrency, directTransfer: cfg.directTransfer, timeouts, agents, armHttpClient };
}
