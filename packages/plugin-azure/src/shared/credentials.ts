/**
 * Azure credentials shared by the Blob ObjectStore and the Managed Disks BlockStore: Velero's
 * dotenv credentials file, the cloud table (public, China, US Government) and the Entra ID token
 * credential chosen from the file's entries (service principal, workload identity, managed
 * identity). Nothing here reads or writes `process.env` except where an `env` map is passed in
 * (which defaults to `process.env` and is only read).
 *
 * @packageDocumentation
 */
import type { TokenCredential } from "@azure/core-auth";
import type { HttpClient } from "@azure/core-rest-pipeline";
import { ClientCertificateCredential, ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential } from "@azure/identity";
import { Code, Reason, StowageError } from "@stowage/sdk";
import { parse } from "dotenv";
import { readFile } from "node:fs/promises";
import { rootCertificates } from "node:tls";

/** Environment map read by these helpers; `process.env` by default. */
export type EnvironmentMap = Readonly<Record<string, string | undefined>>;

/** Endpoints of one Azure cloud. */
export interface AzureCloud {
  /** Canonical cloud name: `AzurePublicCloud`, `AzureChinaCloud` or `AzureUSGovernmentCloud`. */
  readonly name: string;
  /** Entra ID authority host, e.g. `https://login.microsoftonline.com/`. */
  readonly authorityHost: string;
  /** Azure Resource Manager endpoint, e.g. `https://management.azure.com`. */
  readonly resourceManagerEndpoint: string;
  /** Audience of Resource Manager tokens; the token scope is this plus `/.default`. */
  readonly resourceManagerAudience: string;
  /** Storage endpoint suffix, e.g. `core.windows.net` (blob endpoints are `<account>.blob.<suffix>`). */
  readonly storageEndpointSuffix: string;
}

const PUBLIC: AzureCloud = {
  name: "AzurePublicCloud",
  authorityHost: "https://login.microsoftonline.com/",
  resourceManagerEndpoint: "https://management.azure.com",
  resourceManagerAudience: "https://management.core.windows.net/",
  storageEndpointSuffix: "core.windows.net",
};
const CHINA: AzureCloud = {
  name: "AzureChinaCloud",
  authorityHost: "https://login.chinacloudapi.cn/",
  resourceManagerEndpoint: "https://management.chinacloudapi.cn",
  resourceManagerAudience: "https://management.core.chinacloudapi.cn/",
  storageEndpointSuffix: "core.chinacloudapi.cn",
};
const US_GOVERNMENT: AzureCloud = {
  name: "AzureUSGovernmentCloud",
  authorityHost: "https://login.microsoftonline.us/",
  resourceManagerEndpoint: "https://management.usgovcloudapi.net",
  resourceManagerAudience: "https://management.core.usgovcloudapi.net/",
  storageEndpointSuffix: "core.usgovcloudapi.net",
};

/** The clouds `AZURE_CLOUD_NAME` may name (compared case-insensitively). */
export const AZURE_CLOUDS: Readonly<Record<string, AzureCloud>> = {
  azurepubliccloud: PUBLIC,
  azurecloud: PUBLIC,
  azurechinacloud: CHINA,
  azureusgovernment: US_GOVERNMENT,
  azureusgovernmentcloud: US_GOVERNMENT,
};

function invalidCredentials(message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key: "credentialsFile" }, cause });
}

/**
 * Parses dotenv text (`KEY=VALUE` lines, `export ` prefixes, `#` comments, quoted values) with the
 * `dotenv` package's parser; a later entry wins. Only the parser is used: nothing is written to
 * `process.env`.
 */
export function parseDotenv(text: string): Record<string, string> {
  return parse(text.replace(/^\uFEFF/, ""));
}

/**
 * Loads Velero's dotenv credentials file (`AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`,
 * `AZURE_CLOUD_NAME`, `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
 * `AZURE_CLIENT_CERTIFICATE[_PATH|_PASSWORD]`, account keys, ...).
 *
 * `path` falls back to `AZURE_CREDENTIALS_FILE` of `env`. An explicit `path` that cannot be read
 * fails with `INVALID_ARGUMENT`/`INVALID_CONFIG`; a file named only by `AZURE_CREDENTIALS_FILE`
 * that does not exist gives an empty map (Velero's behaviour, for pods that rely on workload or
 * managed identity), as does no path at all.
 *
 * @param path - The `credentialsFile` configuration value, if any.
 * @param env - Where `AZURE_CREDENTIALS_FILE` is looked up; default `process.env`.
 */
export async function loadCredentialsFile(path: string | undefined, env: EnvironmentMap = process.env): Promise<Record<string, string>> {
  const explicit = path !== undefined && path.trim() !== "";
  const file = explicit ? path.trim() : (env.AZURE_CREDENTIALS_FILE ?? "").trim();
  if (file === "") return {};
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (!explicit && code === "ENOENT") return {};
    const source = explicit ? "credentialsFile" : "AZURE_CREDENTIALS_FILE";
    const why = code === "ENOENT" ? "it does not exist" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (error as Error).message;
    throw invalidCredentials(`cannot read the Azure credentials file ${JSON.stringify(file)} (from ${source}): ${why}; fix the path or mount the secret there`, error);
  }
  return parseDotenv(text);
}

/**
 * The endpoints of the cloud named by `AZURE_CLOUD_NAME`: `AzurePublicCloud` (default, also when
 * empty), `AzureChinaCloud`, `AzureUSGovernment` or `AzureUSGovernmentCloud`, in any letter case.
 *
 * @param name - The cloud name; unknown names fail with `INVALID_ARGUMENT`/`INVALID_CONFIG`.
 * @param authorityHost - Overrides the cloud's Entra ID authority host (`activeDirectoryAuthorityURI`).
 */
export function resolveCloud(name?: string, authorityHost?: string): AzureCloud {
  const key = (name ?? "").trim() === "" ? "azurepubliccloud" : (name ?? "").trim().toLowerCase();
  const cloud = AZURE_CLOUDS[key];
  if (cloud === undefined) {
    throw invalidCredentials(
      `AZURE_CLOUD_NAME ${JSON.stringify(name)} in the credentials file is not a known cloud; use AzurePublicCloud, AzureChinaCloud or AzureUSGovernmentCloud`,
    );
  }
  const host = (authorityHost ?? "").trim();
  if (host === "") return cloud;
  let url: URL;
  try {
    url = new URL(host);
  } catch (error) {
    throw new StowageError(Code.InvalidArgument, `activeDirectoryAuthorityURI ${JSON.stringify(host)} is not a URL; use e.g. https://login.microsoftonline.com/`, {
      reason: Reason.InvalidConfig,
      metadata: { key: "activeDirectoryAuthorityURI" },
      cause: error,
    });
  }
  if (url.protocol !== "https:") {
    throw new StowageError(Code.InvalidArgument, `activeDirectoryAuthorityURI ${JSON.stringify(host)} must be an https URL`, {
      reason: Reason.InvalidConfig,
      metadata: { key: "activeDirectoryAuthorityURI" },
    });
  }
  return { ...cloud, authorityHost: url.href };
}

/** Options of {@link createTokenCredential}. */
export interface TokenCredentialOptions {
  /** Entra ID authority host; default the cloud's (from `AZURE_CLOUD_NAME` in the values). */
  readonly authorityHost?: string | undefined;
  /**
   * Environment consulted for workload identity (`AZURE_FEDERATED_TOKEN_FILE`, and
   * `AZURE_TENANT_ID`/`AZURE_CLIENT_ID` when the values lack them); default `process.env`.
   * Only read.
   */
  readonly env?: EnvironmentMap | undefined;
  /**
   * Extra PEM certificate authorities trusted for the token endpoint, in addition to the system
   * roots (a private authority host or a test server).
   */
  readonly caCert?: string | undefined;
  /**
   * The HTTP client of the token requests (with the plugin's timeouts); it then also carries
   * `caCert`. Default: the SDK's.
   */
  readonly httpClient?: HttpClient | undefined;
}

/** Whether `host` is the authority host of one of the known public or sovereign clouds. */
export function isKnownAuthorityHost(host: string): boolean {
  const normalise = (h: string): string => h.trim().toLowerCase().replace(/\/+$/, "");
  return Object.values(AZURE_CLOUDS).some((c) => normalise(c.authorityHost) === normalise(host));
}

/** Which kind of identity {@link createTokenCredential} chose. */
export type TokenCredentialKind = "client-secret" | "client-certificate" | "workload-identity" | "managed-identity";

/**
 * The kind of identity {@link createTokenCredential} builds for these values, following Velero's
 * order: a client secret or certificate (service principal), else a federated token file (workload
 * identity), else managed identity.
 */
export function tokenCredentialKind(values: Readonly<Record<string, string>>, env: EnvironmentMap = process.env): TokenCredentialKind {
  const v = (k: string): string => (values[k] ?? "").trim();
  if (v("AZURE_CLIENT_SECRET") !== "") return "client-secret";
  if (v("AZURE_CLIENT_CERTIFICATE") !== "" || v("AZURE_CLIENT_CERTIFICATE_PATH") !== "") return "client-certificate";
  if (v("AZURE_USERNAME") !== "" || v("AZURE_PASSWORD") !== "") return "client-secret";
  if (v("AZURE_FEDERATED_TOKEN_FILE") !== "" || (env.AZURE_FEDERATED_TOKEN_FILE ?? "").trim() !== "") return "workload-identity";
  return "managed-identity";
}

function isTrue(value: string | undefined): boolean {
  return /^(true|1|yes)$/i.test((value ?? "").trim());
}

/**
 * Builds the Entra ID credential for a credentials-file map, without touching `process.env`:
 *
 * 1. `AZURE_CLIENT_SECRET` → service principal with a secret; `AZURE_CLIENT_CERTIFICATE` (inline
 *    PEM) or `AZURE_CLIENT_CERTIFICATE_PATH` (PEM file), with `AZURE_CLIENT_CERTIFICATE_PASSWORD` and
 *    `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN` → service principal with a certificate. Both need
 *    `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`. Username/password entries are refused.
 * 2. Else `AZURE_FEDERATED_TOKEN_FILE` (values, then `env`) → workload identity.
 * 3. Else managed identity: user-assigned with `AZURE_CLIENT_ID`, system-assigned otherwise.
 *
 * `AZURE_ADDITIONALLY_ALLOWED_TENANTS` (`;`- or `,`-separated) applies to the first two. An
 * authority host that is not a known cloud's gets MSAL instance discovery turned off.
 * Incomplete configurations fail with `INVALID_ARGUMENT`/`INVALID_CONFIG`.
 */
export function createTokenCredential(values: Readonly<Record<string, string>>, options: TokenCredentialOptions = {}): TokenCredential {
  const env = options.env ?? process.env;
  const v = (k: string): string => (values[k] ?? "").trim();
  const authorityHost = (options.authorityHost ?? "").trim() !== "" ? (options.authorityHost ?? "").trim() : resolveCloud(v("AZURE_CLOUD_NAME")).authorityHost;
  const allowed = v("AZURE_ADDITIONALLY_ALLOWED_TENANTS")
    .split(/[;,]/)
    .map((t) => t.trim())
    .filter((t) => t !== "");
  // A private authority (Azure Stack, a test server) is not in Microsoft's instance-discovery list.
  const ca =
    options.httpClient !== undefined
      ? { httpClient: options.httpClient }
      : (options.caCert ?? "").trim() === ""
        ? undefined
        : { tlsOptions: { ca: [...rootCertificates, options.caCert ?? ""] } };
  const common = {
    authorityHost,
    ...(isKnownAuthorityHost(authorityHost) ? {} : { disableInstanceDiscovery: true }),
    ...(allowed.length === 0 ? {} : { additionallyAllowedTenants: allowed }),
    ...ca,
  };
  const kind = tokenCredentialKind(values, env);
  const tenantId = v("AZURE_TENANT_ID");
  const clientId = v("AZURE_CLIENT_ID");

  if (kind === "client-secret" || kind === "client-certificate") {
    if (v("AZURE_CLIENT_SECRET") === "" && v("AZURE_CLIENT_CERTIFICATE") === "" && v("AZURE_CLIENT_CERTIFICATE_PATH") === "") {
      throw invalidCredentials(
        "incomplete credential configuration: username/password authentication (AZURE_USERNAME, AZURE_PASSWORD) is not supported; use AZURE_CLIENT_SECRET or a client certificate",
      );
    }
    const missing = [tenantId === "" ? "AZURE_TENANT_ID" : "", clientId === "" ? "AZURE_CLIENT_ID" : ""].filter((k) => k !== "");
    if (missing.length > 0) {
      throw invalidCredentials(`incomplete service principal in the credentials file: add ${missing.join(" and ")}`);
    }
    try {
      if (kind === "client-secret") return new ClientSecretCredential(tenantId, clientId, v("AZURE_CLIENT_SECRET"), common);
      const password = values.AZURE_CLIENT_CERTIFICATE_PASSWORD;
      const withPassword = password === undefined || password === "" ? {} : { certificatePassword: password };
      const certOptions = { ...common, sendCertificateChain: isTrue(values.AZURE_CLIENT_SEND_CERTIFICATE_CHAIN) };
      const inline = values.AZURE_CLIENT_CERTIFICATE ?? "";
      if (inline.trim() !== "") {
        if (!inline.includes("-----BEGIN")) {
          throw invalidCredentials(
            "AZURE_CLIENT_CERTIFICATE must hold a PEM certificate with its private key; convert a PKCS#12 file with `openssl pkcs12 -nodes` or use AZURE_CLIENT_CERTIFICATE_PATH",
          );
        }
        return new ClientCertificateCredential(tenantId, clientId, { certificate: inline, ...withPassword }, certOptions);
      }
      return new ClientCertificateCredential(tenantId, clientId, { certificatePath: v("AZURE_CLIENT_CERTIFICATE_PATH"), ...withPassword }, certOptions);
    } catch (error) {
      if (error instanceof StowageError) throw error;
      throw invalidCredentials(`invalid service principal in the credentials file: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  if (kind === "workload-identity") {
    const tokenFilePath = v("AZURE_FEDERATED_TOKEN_FILE") !== "" ? v("AZURE_FEDERATED_TOKEN_FILE") : (env.AZURE_FEDERATED_TOKEN_FILE ?? "").trim();
    const tenant = tenantId !== "" ? tenantId : (env.AZURE_TENANT_ID ?? "").trim();
    const client = clientId !== "" ? clientId : (env.AZURE_CLIENT_ID ?? "").trim();
    const missing = [tenant === "" ? "AZURE_TENANT_ID" : "", client === "" ? "AZURE_CLIENT_ID" : ""].filter((k) => k !== "");
    if (missing.length > 0) {
      throw invalidCredentials(
        `workload identity (AZURE_FEDERATED_TOKEN_FILE is set) needs ${missing.join(" and ")}, in the credentials file or the environment; check the azure.workload.identity/use label and service account annotation`,
      );
    }
    try {
      return new WorkloadIdentityCredential({ tenantId: tenant, clientId: client, tokenFilePath, ...common });
    } catch (error) {
      throw invalidCredentials(`invalid workload identity configuration: ${error instanceof Error ? error.message : String(error)}`, error);
    }
  }

  return clientId === "" ? new ManagedIdentityCredential({ authorityHost, ...ca }) : new ManagedIdentityCredential({ clientId, authorityHost, ...ca });
}
