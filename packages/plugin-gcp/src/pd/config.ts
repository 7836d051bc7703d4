/**
 * Configuration of the Persistent Disk BlockStore: the keys `init` accepts, the credentials and the
 * Compute Engine clients built from them.
 *
 * @packageDocumentation
 */
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { Code, Reason, StowageError } from "@stowage/sdk";
import { backendTimeoutConfigKeys, configInteger, parseBackendTimeouts, validateConfig, type BackendTimeouts } from "@stowage/sdk/plugin";
import type { GoogleAuth } from "google-auth-library";
import { loadGoogleCredentials } from "../shared/credentials.js";
import { labelKey, labelValue } from "./labels.js";

/** The configuration keys of the Persistent Disk BlockStore. */
export const PD_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  { name: "project", description: "Project that holds the snapshots (new ones are created there). Default: volumeProject." },
  { name: "volumeProject", description: "Project of the disks (snapshotted and restored). Default: the credentials' project." },
  { name: "snapshotLocation", description: "Storage location of new snapshots (a region or multi-region such as us-central1 or us). Default: Compute Engine's choice near the disk." },
  { name: "snapshotType", description: "STANDARD (default) or ARCHIVE, in any letter case." },
  { name: "credentialsFile", description: "Google credentials JSON (service-account key, external_account, authorized_user). Default: Application Default Credentials." },
  { name: "labels", description: "Extra Compute Engine labels for new snapshots and restored disks: k1=v1,k2=v2 (lower-case letters, digits, _ and -)." },
  { name: "computeEndpoint", description: "Compute Engine API endpoint, http(s)://host[:port], for Private Service Connect or tests. Default: https://compute.googleapis.com." },
  { name: "operationTimeoutSeconds", description: "Longest time a call follows a Compute Engine operation before failing with DEADLINE_EXCEEDED. Default: 600." },
  // Per request to Compute Engine, its retries included (the client opens its connections itself,
  // so there is no connect or idle timeout of its own).
  ...backendTimeoutConfigKeys(["requestTimeoutSeconds"]),
];

/** The OAuth scope of the Compute Engine API. */
export const COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute";

/** Settings parsed from the configuration. */
export interface PdSettings {
  /** Project of the snapshots. */
  readonly project: string;
  /** Project of the disks. */
  readonly volumeProject: string;
  /** Storage location of new snapshots, if set. */
  readonly snapshotLocation: string | undefined;
  /** `STANDARD` or `ARCHIVE`. */
  readonly snapshotType: "STANDARD" | "ARCHIVE";
  /** Extra labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** Client options shared by every Compute Engine client. */
  readonly clientOptions: ComputeClientOptions;
  /** Longest time an operation is followed, in ms. */
  readonly operationTimeoutMs: number;
  /** The request timeout (per request, retries included). */
  readonly timeouts: BackendTimeouts;
}

/** The options handed to the `@google-cloud/compute` clients. */
export interface ComputeClientOptions {
  /** The credentials. */
  readonly auth: GoogleAuth;
  /** The project. */
  readonly projectId: string;
  /** Host of a custom endpoint. */
  readonly apiEndpoint?: string;
  /** Port of a custom endpoint. */
  readonly port?: number;
  /** Scheme of a custom endpoint. */
  readonly protocol?: "http" | "https";
}

/** An `INVALID_CONFIG` error about one key. */
export function invalidConfig(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, cause });
}

function configString(config: PluginConfig, key: string): string | undefined {
  const value = (config[key] ?? "").trim();
  return value === "" ? undefined : value;
}

const PROJECT_RE = /^(?:[a-z][-a-z0-9.:]{4,61}[a-z0-9]|[a-z][-a-z0-9]{4,28}[a-z0-9])$/;

function configProject(config: PluginConfig, key: string): string | undefined {
  const value = configString(config, key);
  if (value !== undefined && !PROJECT_RE.test(value)) {
    throw invalidConfig(key, `${key} ${JSON.stringify(value)} is not a Google Cloud project ID (6 to 30 lower-case letters, digits and hyphens, starting with a letter)`);
  }
  return value;
}

/** A custom Compute Engine endpoint as the client takes it. */
export interface ComputeEndpoint {
  /** Host name or address. */
  readonly apiEndpoint: string;
  /** Port. */
  readonly port: number;
  /** Scheme. */
  readonly protocol: "http" | "https";
}

/** Parses `computeEndpoint` into the client's host, port and scheme. */
export function parseEndpoint(value: string): ComputeEndpoint {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw invalidConfig("computeEndpoint", `computeEndpoint ${JSON.stringify(value)} is not a URL; use e.g. https://compute-myendpoint.p.googleapis.com`, error);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalidConfig("computeEndpoint", `computeEndpoint ${JSON.stringify(value)} must use the http or https scheme`);
  if ((url.pathname !== "/" && url.pathname !== "") || url.search !== "" || url.username !== "") {
    throw invalidConfig("computeEndpoint", `computeEndpoint ${JSON.stringify(value)} must be scheme, host and port only (the client adds /compute/v1)`);
  }
  const protocol = url.protocol === "http:" ? "http" : "https";
  const port = url.port === "" ? (protocol === "http" ? 80 : 443) : Number(url.port);
  return { apiEndpoint: url.hostname.replace(/^\[(.*)\]$/, "$1"), port, protocol };
}

/** Parses the `labels` key: `k1=v1,k2=v2`, each a valid Compute Engine label. */
export function parseLabels(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const part of raw.split(",")) {
    const entry = part.trim();
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    const key = (eq < 0 ? entry : entry.slice(0, eq)).trim();
    const value = eq < 0 ? "" : entry.slice(eq + 1).trim();
    if (labelKey(key) !== key || labelValue(value) !== value) {
      throw invalidConfig("labels", `label ${JSON.stringify(entry)} is not a valid Compute Engine label: keys start with a lower-case letter, keys and values hold only lower-case letters, digits, _ and - (at most 63 each)`);
    }
    out[key] = value;
  }
  return out;
}

/** Validates an `init` configuration and loads the credentials; problems fail with `INVALID_CONFIG`. */
export async function parsePdConfig(config: PluginConfig, signal?: AbortSignal): Promise<PdSettings> {
  validateConfig(config, PD_CONFIG_KEYS);
  const rawType = (configString(config, "snapshotType") ?? "STANDARD").toUpperCase();
  if (rawType !== "STANDARD" && rawType !== "ARCHIVE") throw invalidConfig("snapshotType", `snapshotType must be STANDARD or ARCHIVE, got ${JSON.stringify(config.snapshotType)}`);
  const snapshotLocation = configString(config, "snapshotLocation");
  if (snapshotLocation !== undefined && !/^[a-z][a-z0-9-]{0,62}$/.test(snapshotLocation)) {
    throw invalidConfig("snapshotLocation", `snapshotLocation ${JSON.stringify(snapshotLocation)} is not a Cloud Storage location (for example us-central1 or us)`);
  }
  const labels = parseLabels(configString(config, "labels"));
  const timeouts = parseBackendTimeouts(config);
  const operationTimeoutSeconds = configInteger(config, "operationTimeoutSeconds", 600);
  if (operationTimeoutSeconds < 1) throw invalidConfig("operationTimeoutSeconds", "operationTimeoutSeconds must be at least 1");
  const endpointValue = configString(config, "computeEndpoint");
  const endpoint = endpointValue === undefined ? undefined : parseEndpoint(endpointValue);
  // Service-account keys sign their own JWTs (no token endpoint round trip); see shared/credentials.ts.
  const credentials = await loadGoogleCredentials({ credentialsFile: configString(config, "credentialsFile"), scopes: [COMPUTE_SCOPE], signal });
  const auth = credentials.auth;
  // google-auth-library reads this flag from the GoogleAuth object (not from clientOptions): with it a
  // service-account key signs JWTs carrying the scope itself instead of calling oauth2.googleapis.com.
  auth.useJWTAccessWithScope = true;
  let volumeProject = configProject(config, "volumeProject") ?? credentials.projectId;
  if (volumeProject === undefined) {
    try {
      volumeProject = await auth.getProjectId();
    } catch (error) {
      throw invalidConfig("volumeProject", `cannot tell the disks' project from the credentials (${error instanceof Error ? error.message : String(error)}); set volumeProject`, error);
    }
  }
  const project = configProject(config, "project") ?? volumeProject;
  return {
    project,
    volumeProject,
    snapshotLocation,
    snapshotType: rawType,
    labels,
    operationTimeoutMs: operationTimeoutSeconds * 1000,
    timeouts,
    clientOptions: { auth, projectId: volumeProject, ...(endpoint ?? {}) },
  };
}
