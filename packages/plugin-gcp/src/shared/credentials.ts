/**
 * Google credentials shared by the Cloud Storage and Persistent Disk stores: a credentials JSON file
 * (`credentialsFile`, or the file named by `GOOGLE_APPLICATION_CREDENTIALS`), or Application Default
 * Credentials (gcloud's user credentials, the metadata server, GKE Workload Identity).
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { ExternalAccountClient, GoogleAuth, JWT, UserRefreshClient, type AuthClient } from "google-auth-library";
import { readFile } from "node:fs/promises";

/** The credential `type`s this plugin accepts in a credentials JSON file. */
export const CREDENTIAL_FILE_TYPES: readonly string[] = [
  "service_account",
  "authorized_user",
  "external_account",
  "external_account_authorized_user",
  "impersonated_service_account",
  "gdch_service_account",
];

/** The `type` reported for credentials that come from the metadata server (GCE, GKE Workload Identity). */
export const METADATA_SERVER_CREDENTIALS = "metadata_server";

/** The scope that covers every Cloud API this plugin calls (Cloud Storage, Compute Engine, IAM Credentials). */
export const CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform";

/** Where to find the credentials. */
export interface GoogleCredentialSettings {
  /** A credentials JSON file; default: Application Default Credentials. */
  readonly credentialsFile?: string | undefined;
  /** OAuth scopes. Default: {@link CLOUD_PLATFORM_SCOPE}. */
  readonly scopes?: readonly string[] | undefined;
  /** A non-default Google Cloud universe (e.g. `example-universe.com`). */
  readonly universeDomain?: string | undefined;
  /** The configuration key the file came from, named in errors. Default `credentialsFile`. */
  readonly configKey?: string | undefined;
  /** Cancels reading the file. */
  readonly signal?: AbortSignal | undefined;
}

/** Credentials ready for the Google client libraries. */
export interface GoogleCredentials {
  /** Pass as `authClient` (Cloud Storage) or `auth` (google-gax clients such as Compute Engine). */
  readonly auth: GoogleAuth;
  /**
   * The credential type: the JSON `type` (`service_account`, `external_account`, ...) or
   * {@link METADATA_SERVER_CREDENTIALS} when no JSON file was found.
   */
  readonly type: string;
  /** Where they came from: the file path, or `"metadata server"`. */
  readonly source: string;
  /** The project the JSON names (`project_id`, else `quota_project_id`), if any. */
  readonly projectId?: string | undefined;
  /**
   * The service-account email the credentials act as, when the JSON tells: `client_email` of a
   * key, or the account of a `service_account_impersonation_url`.
   */
  readonly clientEmail?: string | undefined;
  /** The PEM private key of a service-account key file, for signing locally. */
  readonly privateKey?: string | undefined;
  /** The key id (`private_key_id`) of a service-account key file. */
  readonly privateKeyId?: string | undefined;
}

function invalidCredentials(key: string, message: string, cause?: unknown): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidConfig, metadata: { key }, ...(cause === undefined ? {} : { cause }) });
}

function stringField(json: Record<string, unknown>, name: string): string | undefined {
  const value = json[name];
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

/** The service account of a `…/serviceAccounts/EMAIL:generateAccessToken` impersonation URL. */
export function impersonatedEmail(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const match = /\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(url);
  return match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
}

/**
 * Parses and checks the text of a credentials JSON file.
 *
 * @param text - The file's content.
 * @param where - How to name the file in errors, e.g. `credentialsFile "/creds.json"`.
 * @param key - The configuration key, put in error metadata.
 * @returns The parsed object.
 * @throws StowageError `INVALID_ARGUMENT`/`INVALID_CONFIG` for malformed JSON, a missing or unknown
 *   `type`, or a service-account key without `client_email` or `private_key`.
 */
export function parseCredentialsJson(text: string, where: string, key = "credentialsFile"): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw invalidCredentials(key, `${where} is not valid JSON (${error instanceof Error ? error.message : String(error)}); point ${key} at a Google credentials JSON file such as a service-account key`, error);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalidCredentials(key, `${where} does not hold a JSON object; point ${key} at a Google credentials JSON file such as a service-account key`);
  }
  const json = parsed as Record<string, unknown>;
  const type = json.type;
  if (typeof type !== "string" || type === "") {
    throw invalidCredentials(key, `${where} has no "type" field; a Google credentials file has "type": one of ${CREDENTIAL_FILE_TYPES.join(", ")}`);
  }
  if (!CREDENTIAL_FILE_TYPES.includes(type)) {
    throw invalidCredentials(key, `${where} has credential type ${JSON.stringify(type)}; supported types are ${CREDENTIAL_FILE_TYPES.join(", ")}`);
  }
  if (type === "service_account") {
    const missing = ["client_email", "private_key"].filter((name) => stringField(json, name) === undefined);
    if (missing.length > 0) {
      throw invalidCredentials(key, `the service-account key in ${where} lacks ${missing.join(" and ")}; download a new JSON key for the service account`);
    }
  }
  return json;
}

/**
 * The auth client of a parsed credentials file, built with its own constructor; `undefined` for the
 * rarer types that only GoogleAuth's JSON loading handles.
 */
function clientFor(json: Record<string, unknown>, scopes: string[], universe: string | undefined, where: string, key: string): AuthClient | undefined {
  const type = json.type;
  if (type === "service_account") {
    const keyId = stringField(json, "private_key_id");
    const jwt = new JWT({
      email: stringField(json, "client_email") ?? "",
      key: stringField(json, "private_key") ?? "",
      ...(keyId === undefined ? {} : { keyId }),
      scopes,
      ...(universe === undefined ? {} : { universeDomain: universe }),
    });
    // Self-signed JWTs with the scopes (as the Go storage client does): no OAuth token endpoint call.
    jwt.useJWTAccessWithScope = true;
    return jwt;
  }
  if (type === "external_account") {
    let client: AuthClient | null;
    try {
      client = ExternalAccountClient.fromJSON({ ...(json as object), scopes } as Parameters<typeof ExternalAccountClient.fromJSON>[0]);
    } catch (error) {
      throw invalidCredentials(key, `${where} is not a usable external_account configuration: ${error instanceof Error ? error.message : String(error)}`, error);
    }
    if (client === null) throw invalidCredentials(key, `${where} is not a usable external_account configuration`);
    return client;
  }
  if (type === "authorized_user") {
    const missing = ["client_id", "client_secret", "refresh_token"].filter((name) => stringField(json, name) === undefined);
    if (missing.length > 0) throw invalidCredentials(key, `the authorized_user credentials in ${where} lack ${missing.join(", ")}; run gcloud auth application-default login again`);
    return new UserRefreshClient({ clientId: stringField(json, "client_id") ?? "", clientSecret: stringField(json, "client_secret") ?? "", refreshToken: stringField(json, "refresh_token") ?? "" });
  }
  return undefined;
}

/**
 * Loads Google credentials: the `credentialsFile` JSON when given; otherwise Application Default
 * Credentials, reading the `GOOGLE_APPLICATION_CREDENTIALS` file when that variable is set (so its
 * type, project and key are known) and else leaving the search (gcloud user credentials, the
 * metadata server, GKE Workload Identity) to google-auth-library.
 *
 * Service-account keys authenticate with self-signed JWTs carrying the scopes, so no call to an
 * OAuth token endpoint is needed (as the Go client libraries do).
 *
 * @param settings - The file, scopes and universe.
 * @returns The credentials and what is known about them.
 * @throws StowageError `INVALID_ARGUMENT`/`INVALID_CONFIG` naming the key when the file cannot be
 *   read, is not JSON, or has a missing or unsupported `type`.
 */
export async function loadGoogleCredentials(settings: GoogleCredentialSettings = {}): Promise<GoogleCredentials> {
  const scopes = [...(settings.scopes ?? [CLOUD_PLATFORM_SCOPE])];
  const universe = settings.universeDomain;
  let key = settings.configKey ?? "credentialsFile";
  let file = settings.credentialsFile?.trim();
  if (file === "") file = undefined;
  if (file === undefined) {
    const fromEnv = process.env.GOOGLE_APPLICATION_CREDENTIALS?.trim();
    if (fromEnv !== undefined && fromEnv !== "") {
      file = fromEnv;
      key = "GOOGLE_APPLICATION_CREDENTIALS";
    }
  }
  const clientOptions = universe === undefined ? {} : { universeDomain: universe };
  if (file === undefined) {
    const auth = new GoogleAuth({ scopes, clientOptions, ...(universe === undefined ? {} : { universeDomain: universe }) });
    return { auth, type: METADATA_SERVER_CREDENTIALS, source: "application default credentials" };
  }
  const where = `${key} ${JSON.stringify(file)}`;
  let text: string;
  try {
    text = await readFile(file, { encoding: "utf8", ...(settings.signal === undefined ? {} : { signal: settings.signal }) });
  } catch (error) {
    if (error instanceof Error && error.name === "AbortError") throw StowageError.from(error);
    throw invalidCredentials(key, `cannot read ${where}: ${error instanceof Error ? error.message : String(error)}; mount the credentials file or fix ${key}`, error);
  }
  const json = parseCredentialsJson(text, where, key);
  const type = json.type as string;
  const fileUniverse = stringField(json, "universe_domain");
  if (universe !== undefined && fileUniverse !== undefined && fileUniverse !== universe) {
    throw invalidCredentials(
      key,
      `${where} is for universe ${JSON.stringify(fileUniverse)} but universeDomain is ${JSON.stringify(universe)}; use credentials of that universe or fix universeDomain`,
    );
  }
  const projectId = stringField(json, "project_id") ?? stringField(json, "quota_project_id");
  const client = clientFor(json, scopes, universe, where, key);
  const auth =
    client === undefined
      ? new GoogleAuth({ credentials: json, scopes, clientOptions, ...(universe === undefined ? {} : { universeDomain: universe }) })
      : new GoogleAuth({ authClient: client, scopes, ...(projectId === undefined ? {} : { projectId }), ...(universe === undefined ? {} : { universeDomain: universe }) });
  const clientEmail = stringField(json, "client_email") ?? impersonatedEmail(stringField(json, "service_account_impersonation_url"));
  const privateKey = type === "service_account" ? stringField(json, "private_key") : undefined;
  const privateKeyId = type === "service_account" ? stringField(json, "private_key_id") : undefined;
  return {
    auth,
    type,
    source: file,
    ...(projectId === undefined ? {} : { projectId }),
    ...(clientEmail === undefined ? {} : { clientEmail }),
    ...(privateKey === undefined ? {} : { privateKey }),
    ...(privateKeyId === undefined ? {} : { privateKeyId }),
  };
}
