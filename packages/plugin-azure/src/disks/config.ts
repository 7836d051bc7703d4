/**
 * Configuration of the Managed Disks BlockStore: the keys `init` accepts, their parsing, and the
 * Resource Manager clients built from them.
 *
 * @packageDocumentation
 */
import type { TokenCredential } from "@azure/core-auth";
import { ComputeManagementClient } from "@azure/arm-compute";
import { Code, Reason, StowageError, type ConfigKeySpec, type PluginConfig } from "@stowage/sdk";
import {
  backendTimeoutDeclarations,
  backendTimeouts,
  configString,
  custom,
  defineConfig,
  duration,
  flag,
  invalidConfig,
  parseDuration as sdkParseDuration,
  readCaCert,
  text,
  type BackendTimeouts,
} from "@stowage/sdk/plugin";
import { armClientOptions, armClientSettings, httpsUrl } from "../shared/arm.js";
import { createTokenCredential, loadCredentialsFile, resolveCloud, type AzureCloud, type EnvironmentMap } from "../shared/credentials.js";
import { timedHttpClient, type TimedHttpClient } from "../shared/http-client.js";

/** Default `apiTimeout`: how long a snapshot, restore or delete may take, as in Velero. */
export const DEFAULT_API_TIMEOUT_MS = 2 * 60_000;
/** Default `pollInterval`: pause between polls of a long-running operation, as in Velero. */
export const DEFAULT_POLL_INTERVAL_MS = 5_000;

/** The configuration of the Managed Disks BlockStore, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const DISKS_CONFIG = defineConfig({
  subscriptionId: {
    docs: "Subscription of new snapshots",
    default: "`AZURE_SUBSCRIPTION_ID`", value: text(), description: "Subscription of the snapshots. Default: AZURE_SUBSCRIPTION_ID of the credentials file." },
  resourceGroup: {
    docs: "Resource group of new snapshots (and of listings)",
    default: "`AZURE_RESOURCE_GROUP`", value: text(), description: "Resource group of the snapshots. Default: AZURE_RESOURCE_GROUP of the credentials file." },
  apiTimeout: {
    docs: "Longest wait for one call, including Azure's long-running operation; a Go duration (`90s`, `2m`, `1h30m`, `500ms`) or plain seconds",
    default: "`2m`",
    value: duration({ default: DEFAULT_API_TIMEOUT_MS, min: 1000, outOfRange: tooShort(1000) }),
    description: "Longest wait for a snapshot, restore or delete operation, as a duration (90s, 2m, 1h30m). Default 2m.",
  },
  incremental: {
    docs: "`true` for incremental snapshots, `false` for full ones",
    default: "unset (Azure's default: full)", value: flag(), description: "true for incremental snapshots, false for full ones. Default: the API's default (full)." },
  tags: {
    docs: "Extra snapshot tags, `k1=v1,k2=v2`",
    value: custom({ syntax: "k1=v1,k2=v2", parse: (value) => parseTags(value) }),
    description: "Extra tags for every snapshot, as k1=v1,k2=v2. The caller's tags win over them, they win over the disk's.",
  },
  credentialsFile: {
    docs: "Dotenv file (Velero's format). **Must** set `AZURE_SUBSCRIPTION_ID` and `AZURE_RESOURCE_GROUP`: where the cluster's disks are, and where restored disks go. Also `AZURE_CLOUD_NAME` and the identity (below). An explicit file that cannot be read fails `init`; a missing file named only by `$AZURE_CREDENTIALS_FILE` counts as empty.",
    default: "`$AZURE_CREDENTIALS_FILE`",
    value: text(),
    description:
      "dotenv credentials file: AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP (where the cluster's disks are, required), AZURE_CLOUD_NAME, and AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET or a client certificate. Default $AZURE_CREDENTIALS_FILE.",
  },
  resourceManagerEndpoint: {
    docs: "Resource Manager endpoint, `https` only (private clouds, tests)",
    default: "the cloud's", value: httpsUrl(), description: "Resource Manager endpoint override (https), for private clouds and tests. Default: the cloud's." },
  activeDirectoryAuthorityURI: {
    docs: "Entra ID authority host, `https` only; a host that is not a known cloud's gets MSAL instance discovery turned off",
    default: "the cloud's", value: httpsUrl(), description: "Entra ID authority host override (https), for private clouds and tests. Default: the cloud's." },
  caCert: {
    docs: "Extra CA certificates (PEM text or a PEM file path) trusted for Resource Manager and Entra ID", value: text(), description: "Extra CA certificates (PEM text or the path of a PEM file) trusted for Resource Manager and Entra ID." },
  pollInterval: {
    docs: "Pause between polls of a long-running operation (tests use `20ms`)",
    default: "`5s`",
    value: duration({ default: DEFAULT_POLL_INTERVAL_MS, min: 10, outOfRange: tooShort(10) }),
    description: "Pause between polls of a long-running operation, as a duration (e.g. 500ms). Default 5s.",
  },
  // Per request to Resource Manager and Entra ID (each attempt); apiTimeout bounds the whole operation.
  ...backendTimeoutDeclarations(undefined, {
    connectTimeout: "Every Resource Manager and Entra ID request: longest wait for a connection. Default 10.",
    requestTimeout: "Every Resource Manager and Entra ID request: longest wait for each try's answer (apiTimeout bounds the whole operation). Default 120.",
    idleTimeout: "Every Resource Manager and Entra ID request: longest silence on the connection. Default 60.",
  }),
});

/** The configuration keys of the Managed Disks BlockStore. */
export const DISKS_CONFIG_KEYS: readonly ConfigKeySpec[] = DISKS_CONFIG.keys;

function tooShort(minMs: number): (key: string, value: string) => string {
  return (key, value) => `${key} ${JSON.stringify(value)} is too short; use at least ${String(minMs)}ms`;
}

/** The parsed configuration. */
export interface DisksSettings {
  /** Token credential used by every client. */
  readonly credential: TokenCredential;
  /** The cloud (after `activeDirectoryAuthorityURI`). */
  readonly cloud: AzureCloud;
  /** Resource Manager endpoint, without a trailing slash. */
  readonly endpoint: string;
  /** Subscription of the cluster's disks (credentials file). */
  readonly diskSubscriptionId: string;
  /** Resource group of the cluster's disks and of restored disks (credentials file). */
  readonly diskResourceGroup: string;
  /** Subscription of new snapshots. */
  readonly snapshotSubscriptionId: string;
  /** Resource group of new snapshots. */
  readonly snapshotResourceGroup: string;
  /** `apiTimeout` in milliseconds. */
  readonly apiTimeoutMs: number;
  /** `apiTimeout` as configured (for messages). */
  readonly apiTimeoutText: string;
  /** `pollInterval` in milliseconds. */
  readonly pollIntervalMs: number;
  /** `incremental`, or `undefined` for the API default. */
  readonly incremental: boolean | undefined;
  /** `tags`. */
  readonly tags: Readonly<Record<string, string>>;
  /** Connect, request (per attempt) and idle timeouts of every request. */
  readonly timeouts: BackendTimeouts;
  /** The HTTP client of every Resource Manager and Entra ID request. */
  readonly httpClient: TimedHttpClient;
  /** Returns the Compute client of a subscription (one per subscription, cached). */
  client(subscriptionId: string): ComputeManagementClient;
}

/** Options of {@link parseDisksConfig}. */
export interface ParseDisksConfigOptions {
  /** Environment for `$AZURE_CREDENTIALS_FILE` and workload identity; default `process.env` (only read). */
  readonly env?: EnvironmentMap | undefined;
  /** A token credential to use instead of one built from the credentials file (embedders). */
  readonly tokenCredential?: TokenCredential | undefined;
  /** Retries of throttled or failed requests; default 3. */
  readonly maxRetries?: number | undefined;
}

/**
 * Parses a Go-style duration (`90s`, `2m`, `1h30m`, `1.5h`, `500ms`) into milliseconds. A bare
 * number is taken as seconds. Returns `undefined` when the text is not a duration. Kept for callers
 * of the old API: it is `parseDuration` of `@stowage/sdk/plugin`, the one duration syntax of every plugin.
 */
export function parseDuration(text: string): number | undefined {
  return sdkParseDuration(text, "s");
}

/**
 * Parses `k1=v1,k2=v2` (the azuredisk-csi-driver format): entries separated by commas, key and
 * value by the first `=`, both trimmed; an entry without `=` or with an empty key is an error.
 */
export function parseTags(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined || text.trim() === "") return out;
  for (const entry of text.split(",")) {
    if (entry.trim() === "") continue;
    const eq = entry.indexOf("=");
    const key = eq < 0 ? "" : entry.slice(0, eq).trim();
    if (eq < 0 || key === "") throw invalidConfig("tags", `tags entry ${JSON.stringify(entry.trim())} is not key=value; use e.g. tags=team=storage,env=prod`);
    out[key] = entry.slice(eq + 1).trim();
  }
  return out;
}

/** Validates an `init` configuration, reads the credentials file and prepares the clients; problems fail with `INVALID_CONFIG`. */
export async function parseDisksConfig(config: PluginConfig, options: ParseDisksConfigOptions = {}): Promise<DisksSettings> {
  const cfg = DISKS_CONFIG.parse(config);
  const env = options.env ?? process.env;
  const { apiTimeout: apiTimeoutMs, pollInterval: pollIntervalMs, incremental, tags } = cfg;
  const timeouts = backendTimeouts(cfg);
  const ca = await readCaCert(cfg.caCert);
  const authority = cfg.activeDirectoryAuthorityURI;
  const endpointOverride = cfg.resourceManagerEndpoint;

  const values = await loadCredentialsFile(cfg.credentialsFile, env);
  const cloud = resolveCloud(values.AZURE_CLOUD_NAME, authority);
  const diskSubscriptionId = (values.AZURE_SUBSCRIPTION_ID ?? "").trim();
  const diskResourceGroup = (values.AZURE_RESOURCE_GROUP ?? "").trim();
  const missing = [diskSubscriptionId === "" ? "AZURE_SUBSCRIPTION_ID" : "", diskResourceGroup === "" ? "AZURE_RESOURCE_GROUP" : ""].filter((k) => k !== "");
  if (missing.length > 0) {
    const where = cfg.credentialsFile ?? env.AZURE_CREDENTIALS_FILE;
    throw new StowageError(
      Code.InvalidArgument,
      `the credentials file ${where === undefined || where === "" ? "(none configured: set credentialsFile or AZURE_CREDENTIALS_FILE)" : JSON.stringify(where)} must set ${missing.join(" and ")}: they locate the cluster's disks`,
      { reason: Reason.InvalidConfig, metadata: { key: "credentialsFile", missing_keys: missing.join(",") } },
    );
  }
  const httpClient = timedHttpClient({ timeouts, caCert: ca, perAttemptTimeout: true });
  const credential = options.tokenCredential ?? createTokenCredential(values, { authorityHost: cloud.authorityHost, env, caCert: ca, httpClient });
  const arm = armClientSettings(cloud, { endpointOverride, maxRetries: options.maxRetries, caCert: ca, httpClient });
  const endpoint = arm.endpoint;
  const clients = new Map<string, ComputeManagementClient>();
  return {
    credential,
    cloud,
    endpoint,
    diskSubscriptionId,
    diskResourceGroup,
    snapshotSubscriptionId: cfg.subscriptionId ?? diskSubscriptionId,
    snapshotResourceGroup: cfg.resourceGroup ?? diskResourceGroup,
    apiTimeoutMs,
    apiTimeoutText: configString(config, "apiTimeout") ?? "2m",
    pollIntervalMs,
    incremental,
    tags,
    timeouts,
    httpClient,
    client(subscriptionId) {
      const key = subscriptionId.toLowerCase();
      let client = clients.get(key);
      if (client === undefined) {
        client = new ComputeManagementClient(credential, subscriptionId, armClientOptions(arm));
        clients.set(key, client);
      }
      return client;
    },
  };
}
