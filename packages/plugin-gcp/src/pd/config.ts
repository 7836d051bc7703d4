/**
 * Configuration of the Persistent Disk BlockStore: the keys `init` accepts, the credentials and the
 * Compute Engine clients built from them.
 *
 * @packageDocumentation
 */
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { backendTimeoutDeclarations, backendTimeouts, custom, defineConfig, duration, invalidConfig, text, type BackendTimeouts, type ConfigValue } from "@stowage/sdk/plugin";
import type { GoogleAuth } from "google-auth-library";
import { loadGoogleCredentials } from "../shared/credentials.js";
import { labelKey, labelValue } from "./labels.js";

const PROJECT_RE = /^(?:[a-z][-a-z0-9.:]{4,61}[a-z0-9]|[a-z][-a-z0-9]{4,28}[a-z0-9])$/;

/** A Google Cloud project ID. */
const projectId = (): ConfigValue<string | undefined> =>
  text({
    pattern: PROJECT_RE,
    invalid: (key, value) => `${key} ${JSON.stringify(value)} is not a Google Cloud project ID (6 to 30 lower-case letters, digits and hyphens, starting with a letter)`,
  });

/** The configuration of the Persistent Disk BlockStore, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const PD_CONFIG = defineConfig({
  project: {
    docs: "Project that holds the snapshots; new snapshots are created there (as Velero's code does, whatever its docs say)",
    default: "`volumeProject`", value: projectId(), description: "Project that holds the snapshots (new ones are created there). Default: volumeProject." },
  volumeProject: {
    docs: "Project of the disks that are snapshotted and of the restored disks",
    default: "the credentials' project (`project_id` of the key file, else Application Default Credentials)", value: projectId(), description: "Project of the disks (snapshotted and restored). Default: the credentials' project." },
  snapshotLocation: {
    docs: "Storage location of new snapshots (`us-central1`, `us`, ...), sent as `storageLocations`",
    default: "Compute Engine's choice near the disk",
    value: text({
      pattern: /^[a-z][a-z0-9-]{0,62}$/,
      invalid: (key, value) => `${key} ${JSON.stringify(value)} is not a Cloud Storage location (for example us-central1 or us)`,
    }),
    description: "Storage location of new snapshots (a region or multi-region such as us-central1 or us). Default: Compute Engine's choice near the disk.",
  },
  snapshotType: {
    docs: "`STANDARD` or `ARCHIVE`, any letter case; anything else fails `init`",
    default: "`STANDARD`",
    value: custom({
      syntax: "`STANDARD` or `ARCHIVE` (any case)",
      defaultText: "STANDARD",
      parse: (value, key): "STANDARD" | "ARCHIVE" => {
        const type = (value ?? "STANDARD").toUpperCase();
        if (type !== "STANDARD" && type !== "ARCHIVE") throw invalidConfig(key, `${key} must be STANDARD or ARCHIVE, got ${JSON.stringify(value)}`);
        return type;
      },
    }),
    description: "STANDARD (default) or ARCHIVE, in any letter case.",
  },
  credentialsFile: {
    docs: "Google credentials JSON: `service_account`, `external_account`, `authorized_user`, `impersonated_service_account`, `external_account_authorized_user`, `gdch_service_account`",
    default: "Application Default Credentials", value: text(), description: "Google credentials JSON (service-account key, external_account, authorized_user). Default: Application Default Credentials." },
  labels: {
    docs: "Extra Compute Engine labels for every new snapshot and restored disk: `team=backup,env=prod` (keys start with a lower-case letter; keys and values hold lower-case letters, digits, `_`, `-`, at most 63)",
    value: custom({ syntax: "k1=v1,k2=v2", parse: (value) => parseLabels(value) }),
    description: "Extra Compute Engine labels for new snapshots and restored disks: k1=v1,k2=v2 (lower-case letters, digits, _ and -).",
  },
  computeEndpoint: {
    docs: "`http(s)://host[:port]` of the Compute Engine API, for Private Service Connect (`https://compute-myendpoint.p.googleapis.com`) or a test server; no path",
    default: "`https://compute.googleapis.com`",
    value: custom({ syntax: "http or https URL", parse: (value) => (value === undefined ? undefined : parseEndpoint(value)) }),
    description: "Compute Engine API endpoint, http(s)://host[:port], for Private Service Connect or tests. Default: https://compute.googleapis.com.",
  },
  operationTimeout: {
    aliases: ["operationTimeoutSeconds"],
    value: duration({ default: 600_000, bareIntegerOnly: true, min: 1000, outOfRange: (key) => `${key} must be at least 1` }),
    description: "Longest time a call follows a Compute Engine operation before failing with DEADLINE_EXCEEDED: a duration (10m) or whole seconds. Default: 600.",
    docs: "Longest time a call follows a Compute Engine operation before failing with DEADLINE_EXCEEDED: a duration (`10m`) or whole seconds. Default: 600 (10 minutes).",
  },
  // Per request to Compute Engine, its retries included (the client opens its connections itself,
  // so there is no connect or idle timeout of its own).
  ...backendTimeoutDeclarations(["requestTimeout"], {
    requestTimeout: "Longest wait for one Compute Engine request, its retries included (each try too). Default 120.",
  }),
});

/** The configuration keys of the Persistent Disk BlockStore. */
export const PD_CONFIG_KEYS: readonly ConfigKeySpec[] = PD_CONFIG.keys;

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
  const cfg = PD_CONFIG.parse(config);
  const { snapshotLocation, labels } = cfg;
  const timeouts = backendTimeouts(cfg);
  const endpoint = cfg.computeEndpoint;
  // Service-account keys sign their own JWTs (no token endpoint round trip); see shared/credentials.ts.
  const credentials = await loadGoogleCredentials({ credentialsFile: cfg.credentialsFile, scopes: [COMPUTE_SCOPE], signal });
  const auth = credentials.auth;
  // google-auth-library reads this flag from the GoogleAuth object (not from clientOptions): with it a
  // service-account key signs JWTs carrying the scope itself instead of calling oauth2.googleapis.com.
  auth.useJWTAccessWithScope = true;
  let volumeProject = cfg.volumeProject ?? credentials.projectId;
  if (volumeProject === undefined) {
    try {
      volumeProject = await auth.getProjectId();
    } catch (error) {
      throw invalidConfig("volumeProject", `cannot tell the disks' project from the credentials (${error instanceof Error ? error.message : String(error)}); set volumeProject`, error);
    }
  }
  const project = cfg.project ?? volumeProject;
  return {
    project,
    volumeProject,
    snapshotLocation,
    snapshotType: cfg.snapshotType,
    labels,
    operationTimeoutMs: cfg.operationTimeout,
    timeouts,
    clientOptions: { auth, projectId: volumeProject, ...(endpoint ?? {}) },
  };
}
