/**
 * Configuration of the Managed Disks BlockStore: the keys `init` accepts, their parsing, and the
 * Resource Manager clients built from them.
 *
 * @packageDocumentation
 */
import type { TokenCredential } from "@azure/core-auth";
import { ComputeManagementClient } from "@azure/arm-compute";
import { Code, Reason, StowageError, type ConfigKeySpec, type PluginConfig } from "@stowage/sdk";
import { backendTimeoutConfigKeys, configBoolean, parseBackendTimeouts, validateConfig, type BackendTimeouts } from "@stowage/sdk/plugin";
import { readFile } from "node:fs/promises";
import { armClientOptions, armClientSettings, configHttpsUrl } from "../shared/arm.js";
import { createTokenCredential, loadCredentialsFile, resolveCloud, type AzureCloud, type EnvironmentMap } from "../shared/credentials.js";
import { timedHttpClient, type TimedHttpClient } from "../shared/http-client.js";

/** Default `apiTimeout`: how long a snapshot, restore or delete may take, as in Velero. */
export const DEFAULT_API_TIMEOUT_MS = 2 * 60_000;
/** Default `pollInterval`: pause between polls of a long-running operation, as in Velero. */
export const DEFAULT_POLL_INTERVAL_MS = 5_000;

/** The configuration keys of the Managed Disks BlockStore. */
export const DISKS_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "subscriptionId", description: "Subscription of the snapshots. Default: AZURE_SUBSCRIPTION_ID of the credentials file." },
  { name: "resourceGroup", description: "Resource group of the snapshots. Default: AZURE_RESOURCE_GROUP of the credentials file." },
  {
    name: "apiTimeout",
    description: "Longest wait for a snapshot, restore or delete operation, as a duration (90s, 2m, 1h30m). Default 2m.",
  },
  { name: "incremental", description: "true for incremental snapshots, false for full ones. Default: the API's default (full)." },
  { name: "tags", description: "Extra tags for every snapshot, as k1=v1,k2=v2. The caller's tags win over them, they win over the disk's." },
  {
    name: "credentialsFile",
    description:
      "dotenv credentials file: AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP (where the cluster's disks are, required), AZURE_CLOUD_NAME, and AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET or a client certificate. Default $AZURE_CREDENTIALS_FILE.",
  },
  { name: "resourceManagerEndpoint", description: "Resource Manager endpoint override (https), for private clouds and tests. Default: the cloud's." },
  { name: "activeDirectoryAuthorityURI", description: "Entra ID authority host override (https), for private clouds and tests. Default: the cloud's." },
  { name: "caCert", description: "Extra CA certificates (PEM text or the path of a PEM file) trusted for Resource Manager and Entra ID." },
  { name: "pollInterval", description: "Pause between polls of a long-running operation, as a duration (e.g. 500ms). Default 5s." },
  // Per request to Resource Manager and Entra ID (each attempt); apiTimeout bounds the whole operation.
  ...backendTimeoutConfigKeys(),
];

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

/** An `INVALID_CONFIG` error about one key. */
export function invalidConfig(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, cause });
}

function configString(config: PluginConfig, key: string): string | undefined {
  const value = (config[key] ?? "").trim();
  return value === "" ? undefined : value;
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a Go-style duration (`90s`, `2m`, `1h30m`, `1.5h`, `500ms`) into milliseconds. A bare
 * number is taken as seconds. Returns `undefined` when the text is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  if (!/^(\d+(\.\d+)?(ns|us|µs|μs|ms|s|m|h))+$/.test(value)) return undefined;
  let total = 0;
  for (const part of value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/g)) total += Number(part[1]) * (UNIT_MS[part[2] ?? "s"] ?? 0);
  return total;
}

function configDuration(config: PluginConfig, key: string, defaultMs: number, minMs: number): number {
  const raw = configString(config, key);
  if (raw === undefined) return defaultMs;
  const ms = parseDuration(raw);
  if (ms === undefined) throw invalidConfig(key, `${key} ${JSON.stringify(raw)} is not a duration; use e.g. 90s, 2m or 1h30m`);
  if (ms < minMs) throw invalidConfig(key, `${key} ${JSON.stringify(raw)} is too short; use at least ${String(minMs)}ms`);
  return ms;
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

/** Validates an `init` configuration, reads the credentials file and prepares the clients; problems fail with `INVALID_CONFIG`. */
export async function parseDisksConfig(config: PluginConfig, options: ParseDisksConfigOptions = {}): Promise<DisksSettings> {
  validateConfig(config, DISKS_CONFIG_KEYS);
  const env = options.env ?? process.env;
  const apiTimeoutMs = configDuration(config, "apiTimeout", DEFAULT_API_TIMEOUT_MS, 1000);
  const pollIntervalMs = configDuration(config, "pollInterval", DEFAULT_POLL_INTERVAL_MS, 10);
  const incremental = configString(config, "incremental") === undefined ? undefined : configBoolean(config, "incremental", false);
  const tags = parseTags(config.tags);
  const timeouts = parseBackendTimeouts(config);
  const ca = await parseCaCert(config);
  const authority = configHttpsUrl(config, "activeDirectoryAuthorityURI");
  const endpointOverride = configHttpsUrl(config, "resourceManagerEndpoint");

  const values = await loadCredentialsFile(configString(config, "credentialsFile"), env);
  const cloud = resolveCloud(values.AZURE_CLOUD_NAME, authority);
  const diskSubscriptionId = (values.AZURE_SUBSCRIPTION_ID ?? "").trim();
  const diskResourceGroup = (values.AZURE_RESOURCE_GROUP ?? "").trim();
  const missing = [diskSubscriptionId === "" ? "AZURE_SUBSCRIPTION_ID" : "", diskResourceGroup === "" ? "AZURE_RESOURCE_GROUP" : ""].filter((k) => k !== "");
  if (missing.length > 0) {
    const where = configString(config, "credentialsFile") ?? env.AZURE_CREDENTIALS_FILE;
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
    snapshotSubscriptionId: configString(config, "subscriptionId") ?? diskSubscriptionId,
    snapshotResourceGroup: configString(config, "resourceGroup") ?? diskResourceGroup,
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
