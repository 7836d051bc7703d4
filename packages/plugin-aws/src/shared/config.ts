/**
 * Configuration helpers shared by the S3 and EBS stores: errors, URLs, credentials, TLS.
 *
 * @packageDocumentation
 */
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { PluginConfig } from "@stowage/sdk";
import { configString, createBackendAgents, flag, invalidConfig, readCaCert, readConfigValue, text, url, type BackendTimeouts, type ConfigValue } from "@stowage/sdk/plugin";
import { rootCertificates } from "node:tls";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";

/** An http or https endpoint URL, returned without a trailing slash. */
export function endpointUrl(): ConfigValue<string | undefined> {
  return url({ example: "https://s3.example.com" });
}

/**
 * Parses an optional endpoint URL: it must be an absolute `http` or `https` URL. Returns it
 * without a trailing slash, or `undefined` when the key is absent.
 */
export function configUrl(config: PluginConfig, key: string): string | undefined {
  return readConfigValue(config, key, endpointUrl());
}

/** The credential keys (`profile`, `credentialsFile`) with the given descriptions.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export function credentialDeclarations(profile: string, credentialsFile: string) {
  return {
    profile: { value: text(), description: profile },
    credentialsFile: { value: text(), description: credentialsFile },
  } as const;
}

/** Where credentials come from. */
export interface CredentialSettings {
  /** Shared-config profile name. */
  readonly profile: string | undefined;
  /** Shared credentials (and config) file. */
  readonly credentialsFile: string | undefined;
}

/** Reads `profile` and `credentialsFile` from a configuration map (trimmed; empty means unset). */
export function parseCredentialSettings(config: PluginConfig): CredentialSettings {
  return { profile: configString(config, "profile"), credentialsFile: configString(config, "credentialsFile") };
}

/**
 * The credential provider for the settings: with a `credentialsFile`, that file is read as both the
 * shared credentials and the shared config file (so `role_arn`/`source_profile` work), without
 * touching the process environment; with only a `profile`, the default files with that profile;
 * otherwise `undefined` (the SDK's default chain: environment, web identity, container, IMDS).
 */
export function credentialProvider(settings: CredentialSettings): AwsCredentialIdentityProvider | undefined {
  if (settings.credentialsFile === undefined && settings.profile === undefined) return undefined;
  // `@aws-sdk/credential-providers` is loaded only when a file or profile is configured.
  let provider: Promise<AwsCredentialIdentityProvider> | undefined;
  return async (props) => {
    provider ??= import("@aws-sdk/credential-providers").then(({ fromIni }) =>
      fromIni({
        ...(settings.profile === undefined ? {} : { profile: settings.profile }),
        ...(settings.credentialsFile === undefined ? {} : { filepath: settings.credentialsFile, configFilepath: settings.credentialsFile }),
        ignoreCache: true,
      }),
    );
    return (await provider)(props);
  };
}

/**
 * Fetches credentials once, so that a wrong file or profile fails `init` rather than the first call.
 * Failures are `INVALID_CONFIG`.
 */
export async function checkCredentials(provider: AwsCredentialIdentityProvider | undefined, settings: CredentialSettings): Promise<void> {
  if (provider === undefined) return;
  let identity: AwsCredentialIdentity;
  try {
    identity = await provider();
  } catch (error) {
    const where = settings.credentialsFile === undefined ? "the shared credentials file" : JSON.stringify(settings.credentialsFile);
    const key = settings.credentialsFile === undefined ? "profile" : "credentialsFile";
    throw invalidConfig(
      key,
      `cannot load credentials for profile ${JSON.stringify(settings.profile ?? "default")} from ${where}: ${error instanceof Error ? error.message : String(error)}`,
      error,
    );
  }
  if (identity.accessKeyId === "") throw invalidConfig("credentialsFile", "the credentials have an empty access key id");
}

/** TLS options. */
export interface TlsSettings {
  /** Skip server certificate verification. */
  readonly insecureSkipTLSVerify: boolean;
  /** Extra PEM certificate authorities, trusted in addition to the system roots. */
  readonly caCert: string | undefined;
}

/** The TLS keys, `insecureSkipTLSVerify` and `caCert`.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const TLS_DECLARATIONS = {
  insecureSkipTLSVerify: { value: flag(false), description: "true to skip verification of the server's TLS certificate. Default false." },
  caCert: { value: text(), description: "PEM certificate authorities (the text, or a file path) trusted in addition to the system roots." },
} as const;

/**
 * The TLS settings from the parsed `insecureSkipTLSVerify` and `caCert`: `caCert` holds PEM text
 * (as Velero passes it) or the path of a PEM file, read here.
 */
export async function tlsSettings(values: { readonly insecureSkipTLSVerify: boolean; readonly caCert: string | undefined }): Promise<TlsSettings> {
  return { insecureSkipTLSVerify: values.insecureSkipTLSVerify, caCert: await readCaCert(values.caCert) };
}

/**
 * Reads `insecureSkipTLSVerify` and `caCert` from a configuration map (kept for callers of the
 * old API; a plugin declares `TLS_DECLARATIONS` in its `defineConfig` and calls {@link tlsSettings}).
 */
export async function parseTlsSettings(config: PluginConfig): Promise<TlsSettings> {
  return tlsSettings({ insecureSkipTLSVerify: readConfigValue(config, "insecureSkipTLSVerify", TLS_DECLARATIONS.insecureSkipTLSVerify.value), caCert: configString(config, "caCert") });
}

/** Options of {@link httpHandler}. */
export interface HttpHandlerSettings extends TlsSettings {
  /** Most sockets per host. */
  readonly maxSockets: number;
  /** The connect and idle timeouts every request obeys. */
  readonly timeouts: BackendTimeouts;
}

/**
 * A request handler with keep-alive agents carrying the TLS settings and enforcing the connect and
 * idle timeouts (`connectTimeout`, `idleTimeout`) on every request; the request
 * timeout is applied per call (see `withRequestTimeout`). A timed-out connection fails like a
 * refused one, so the SDK's retry strategy retries it.
 */
export function httpHandler(settings: HttpHandlerSettings): NodeHttpHandler {
  const ca = settings.caCert === undefined ? undefined : [...rootCertificates, settings.caCert];
  const agents = createBackendAgents({
    timeouts: settings.timeouts,
    maxSockets: settings.maxSockets,
    https: { rejectUnauthorized: !settings.insecureSkipTLSVerify, ...(ca === undefined ? {} : { ca }) },
  });
  return new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https });
}
