/**
 * Azure Resource Manager plumbing shared by the Managed Disks BlockStore (`@azure/arm-compute`)
 * and the Blob ObjectStore's key exchange and endpoint discovery (`@azure/arm-storage`): the
 * validated `resourceManagerEndpoint`/`activeDirectoryAuthorityURI` overrides and the client
 * options (endpoint, token scope of the cloud's Resource Manager audience, retries, extra CA).
 *
 * @packageDocumentation
 */
import type { HttpClient } from "@azure/core-rest-pipeline";
import type { PluginConfig } from "@stowage/sdk";
import { readConfigValue, url, type ConfigValue } from "@stowage/sdk/plugin";
import { rootCertificates } from "node:tls";
import type { AzureCloud } from "./credentials.js";

/**
 * An https URL (trailing slashes removed), or `undefined` when the key is absent or blank. A value
 * that is not a URL, or not https (bearer tokens are never sent over plain http), fails with
 * `INVALID_ARGUMENT`/`INVALID_CONFIG` naming the key.
 */
export function httpsUrl(): ConfigValue<string | undefined> {
  return url({
    schemes: ["https"],
    example: "https://management.azure.com",
    badScheme: (key, value) => `${key} ${JSON.stringify(value)} must be an https URL: Azure bearer tokens are never sent over plain http (use caCert for a private CA)`,
  });
}

/** Reads an {@link httpsUrl} from a configuration key. */
export function configHttpsUrl(config: PluginConfig, key: string): string | undefined {
  return readConfigValue(config, key, httpsUrl());
}

/** Settings of the Resource Manager clients of one plugin instance. */
export interface ArmClientSettings {
  /** Resource Manager endpoint, without a trailing slash. */
  readonly endpoint: string;
  /** Token scope: the cloud's Resource Manager audience plus `/.default`. */
  readonly scope: string;
  /** Retries of throttled or failed requests. */
  readonly maxRetries: number;
  /** Base delay between retries in milliseconds; default 800. */
  readonly retryDelayMs?: number | undefined;
  /** Extra PEM certificate authorities trusted in addition to the system roots. */
  readonly caCert?: string | undefined;
  /** The HTTP client (with the plugin's timeouts); it then also carries `caCert`. Default: the SDK's. */
  readonly httpClient?: HttpClient | undefined;
}

/**
 * The Resource Manager settings for a cloud: the `resourceManagerEndpoint` override if given, else
 * the cloud's endpoint, and a token scope for the cloud's Resource Manager audience.
 */
export function armClientSettings(
  cloud: AzureCloud,
  options: { endpointOverride?: string | undefined; maxRetries?: number | undefined; retryDelayMs?: number | undefined; caCert?: string | undefined; httpClient?: HttpClient | undefined },
): ArmClientSettings {
  return {
    endpoint: (options.endpointOverride ?? cloud.resourceManagerEndpoint).replace(/\/+$/, ""),
    scope: `${cloud.resourceManagerAudience.replace(/\/+$/, "")}/.default`,
    maxRetries: options.maxRetries ?? 3,
    retryDelayMs: options.retryDelayMs,
    caCert: options.caCert,
    httpClient: options.httpClient,
  };
}

/** Client options understood by both `@azure/arm-compute` and `@azure/arm-storage`. */
export interface ArmClientOptions {
  /** Resource Manager endpoint. */
  endpoint: string;
  /** Token scopes of the bearer-token policy. */
  credentials: { scopes: string[] };
  /** Exponential retry settings. */
  retryOptions: { maxRetries: number; retryDelayInMs: number; maxRetryDelayInMs: number };
  /** Trusted certificate authorities, when `caCert` is set (and no `httpClient`). */
  tlsOptions?: { ca: string[] };
  /** The HTTP client, when given. */
  httpClient?: HttpClient;
  /** The plugin's user agent prefix. */
  userAgentOptions: { userAgentPrefix: string };
}

/** The options to construct a Resource Manager client (`ComputeManagementClient`, `StorageManagementClient`) with. */
export function armClientOptions(settings: ArmClientSettings): ArmClientOptions {
  return {
    endpoint: settings.endpoint,
    credentials: { scopes: [settings.scope] },
    retryOptions: { maxRetries: settings.maxRetries, retryDelayInMs: settings.retryDelayMs ?? 800, maxRetryDelayInMs: 30_000 },
    ...(settings.httpClient !== undefined
      ? { httpClient: settings.httpClient }
      : settings.caCert === undefined
        ? {}
        : { tlsOptions: { ca: [...rootCertificates, settings.caCert] } }),
    userAgentOptions: { userAgentPrefix: "stowage-plugin-azure" },
  };
}
