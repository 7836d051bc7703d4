/**
 * Configuration of the Cloud Storage ObjectStore: the keys `init` accepts (Velero's GCP object-store
 * keys plus Stowage's own), their parsing, and the `@google-cloud/storage` clients built from them.
 *
 * @packageDocumentation
 */
import { Storage } from "@google-cloud/storage";
import { Code, Reason, StowageError, type ConfigKeySpec, type PluginConfig } from "@stowage/sdk";
import { backendTimeoutDeclarations, backendTimeouts, custom, defineConfig, flag, invalidConfig, parseSize, text, url, type BackendTimeouts, type ConfigValue } from "@stowage/sdk/plugin";
import { GoogleAuth } from "google-auth-library";
import { createSign } from "node:crypto";
import { loadGoogleCredentials, METADATA_SERVER_CREDENTIALS, type GoogleCredentials } from "../shared/credentials.js";
import { toStowageError } from "../shared/errors.js";

const KiB = 1024;
const MiB = 1024 * KiB;
/** Resumable-upload chunks are multiples of this: 256 KiB. */
export const CHUNK_GRANULARITY = 256 * KiB;
/** Default resumable-upload chunk size: 8 MiB. Bodies up to this size go in one request. */
export const DEFAULT_CHUNK_SIZE = 8 * MiB;
/** Largest `chunkSize`: 256 MiB. */
export const MAX_CHUNK_SIZE = 256 * MiB;

const UNIVERSE_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/i;
const KMS_KEY_RE = /^projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+(\/cryptoKeyVersions\/[^/]+)?$/;
const EMAIL_RE = /^[^@\s]+@[^@\s]+$/;

/** An http(s) endpoint; a bare host name gets `https://`; no query or fragment. */
const endpoint = (): ConfigValue<string | undefined> => url({ bareHost: true, noQuery: true, example: "https://storage.example.com" });

/** The configuration of the Cloud Storage ObjectStore (`stowage.io/gcp`), declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const GCS_CONFIG = defineConfig({
  bucket: {
    docs: "Set by Velero; accepted (calls name their bucket themselves)", value: text(), description: "The bucket (set by Velero). Calls name their bucket themselves." },
  prefix: {
    docs: "Set by Velero; accepted and ignored (the caller puts it in keys)", value: text(), description: "Accepted and ignored (the caller applies the prefix to keys itself)." },
  credentialsFile: {
    docs: "Google credentials JSON (see below)",
    default: "Application Default Credentials", value: text(), description: "Google credentials JSON: a service-account key, external_account (workload identity federation), authorized_user or impersonated_service_account. Default: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server / GKE Workload Identity)." },
  kmsKeyName: {
    docs: "Cloud KMS key every object is written with (CMEK), `projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]`; another shape fails `init`. Sent as the `kmsKeyName` parameter of every upload",
    value: text({ pattern: KMS_KEY_RE, invalid: (key, value) => `${key} ${JSON.stringify(value)} is not a Cloud KMS key name; use projects/P/locations/L/keyRings/R/cryptoKeys/K` }),
    description: "Cloud KMS key (projects/P/locations/L/keyRings/R/cryptoKeys/K) every object is written with (CMEK).",
  },
  serviceAccount: {
    docs: "Email of the service account that signs URLs through the IAM Credentials `signBlob` API when the credentials hold no private key. Ignored with a service-account key (the key signs)",
    default: "the account the credentials act as",
    value: text({ pattern: EMAIL_RE, invalid: (key, value) => `${key} ${JSON.stringify(value)} is not a service-account email; use e.g. velero@my-project.iam.gserviceaccount.com` }),
    description: "Email of the service account that signs URLs through the IAM signBlob API when the credentials hold no private key. Default: the account the credentials act as (the metadata server's, or the impersonated one). Ignored with a service-account key file.",
  },
  storeEndpoint: {
    docs: "Cloud Storage endpoint: Private Service Connect (`https://storage-xyz.p.googleapis.com`), or an emulator (`http://127.0.0.1:4443`). A bare host name gets `https://`",
    default: "`https://storage.<universeDomain>`", value: endpoint(), description: "Cloud Storage endpoint, e.g. https://storage-xyz.p.googleapis.com (Private Service Connect) or an emulator's http://127.0.0.1:4443. Default: https://storage.<universeDomain>." },
  universeDomain: {
    docs: "Google Cloud universe; a credentials file of another universe fails `init`",
    default: "`googleapis.com`",
    value: text({ pattern: UNIVERSE_RE, invalid: (key, value) => `${key} ${JSON.stringify(value)} is not a domain name; use e.g. googleapis.com` }),
    description: "Google Cloud universe. Default googleapis.com.",
  },
  caCert: {
    docs: "Accepted and ignored, as in Velero's GCP plugin; trust a private CA with `NODE_EXTRA_CA_CERTS`", value: text(), description: "Accepted for Velero compatibility and ignored (as in Velero's GCP plugin); trust a private CA with NODE_EXTRA_CA_CERTS." },
  signingEndpoint: {
    docs: "Base URL of the IAM Credentials API (`/v1/projects/-/serviceAccounts/<email>:signBlob`)",
    default: "`https://iamcredentials.<universeDomain>`", value: endpoint(), description: "Base URL of the IAM Credentials API used by signBlob. Default https://iamcredentials.<universeDomain>." },
  publicUrl: {
    docs: "Base URL put in signed URLs, for clients that reach the store at another address",
    default: "the storage endpoint", value: endpoint(), description: "Base URL put in signed URLs instead of the storage endpoint (e.g. an address the CLI can reach)." },
  chunkSize: {
    docs: "Resumable-upload chunk, bytes or `<n>KiB`/`<n>MiB`: a multiple of 256 KiB, at most 256 MiB. Bodies up to this size go in one request; it bounds the memory of an upload",
    default: "`8MiB`",
    value: custom({ syntax: "size", defaultText: "8MiB", parse: (value) => parseChunkSize(value) }),
    description: "Resumable-upload chunk size in bytes or with a KiB/MiB suffix, a multiple of 256 KiB up to 256 MiB; default 8 MiB. Bounds the memory of one upload; bodies up to this size are sent in one request.",
  },
  directTransfer: {
    docs: "`false` declines every direct-transfer plan (contract 5.8), so the host streams bodies through the plugin with `putObject`/`getObject`. Plans are also declined when the credentials cannot sign URLs",
    default: "`true`",
    value: flag(true),
    description: "Whether the host may move object bodies straight between itself and Cloud Storage with URLs this plugin signs (direct transfer, contract 5.8); false declines every plan. Default true.",
  },
  // No connectTimeout: the Cloud Storage library opens its connections itself; they are
  // bounded by requestTimeout.
  ...backendTimeoutDeclarations(["requestTimeout", "idleTimeout"], {
    requestTimeout: "Longest wait for one call that is not a transfer (metadata, a list page, a delete, signing through `signBlob`), retries included. Default 120.",
    idleTimeout: "Longest a put or a read's body may move no data (Cloud Storage takes no chunk and sends no answer, or sends nothing while the reader waits). Default 60.",
  }),
});

/** Keys of the Cloud Storage ObjectStore (`stowage.io/gcp`). */
export const GCS_CONFIG_KEYS: readonly ConfigKeySpec[] = GCS_CONFIG.keys;

/** Signing locally with a service-account key. */
export interface KeyUrlSigner {
  /** Discriminator. */
  readonly kind: "key";
  /** The key's service account. */
  readonly email: string;
  /** The PEM private key. */
  readonly privateKey: string;
}

/** Signing through the IAM Credentials `signBlob` API. */
export interface SignBlobUrlSigner {
  /** Discriminator. */
  readonly kind: "signBlob";
  /** The signing service account; `undefined` means the metadata server's default account. */
  readonly email: string | undefined;
  /** Base URL of the IAM Credentials API. */
  readonly endpoint: string;
}

/** No way to sign with these credentials. */
export interface NoUrlSigner {
  /** Discriminator. */
  readonly kind: "none";
  /** Why, and what to configure. */
  readonly why: string;
}

/** How signed URLs are signed, decided at `init`. */
export type UrlSigner = KeyUrlSigner | SignBlobUrlSigner | NoUrlSigner;

/** Everything the Cloud Storage ObjectStore needs once configured. */
export interface GcsStoreSettings {
  /** The client of all data calls. */
  readonly storage: Storage;
  /** The client signed URLs are made with (its credentials are the {@link signer}'s). */
  readonly signingStorage: Storage;
  /** How URLs are signed. */
  readonly signer: UrlSigner;
  /** Where signed URLs point, when not at the storage endpoint. */
  readonly publicUrl: string | undefined;
  /** CMEK key of writes. */
  readonly kmsKeyName: string | undefined;
  /** Resumable-upload chunk size. */
  readonly chunkSize: number;
  /** The credentials. */
  readonly credentials: GoogleCredentials;
  /** Request and idle timeouts of the calls to Cloud Storage (the connect timeout is unused). */
  readonly timeouts: BackendTimeouts;
  /** Whether direct-transfer plans may be made (`directTransfer`). */
  readonly directTransfer: boolean;
}

/** Parses `chunkSize` in the shared size syntax (`parseSize`: bytes, or a KiB/MiB/GiB suffix); a multiple of 256 KiB up to 256 MiB. */
export function parseChunkSize(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_CHUNK_SIZE;
  const size = parseSize(raw) ?? Number.NaN;
  if (!(size >= CHUNK_GRANULARITY && size <= MAX_CHUNK_SIZE && size % CHUNK_GRANULARITY === 0)) {
    throw invalidConfig("chunkSize", `chunkSize must be a multiple of 256KiB between 256KiB and 256MiB (bytes, or with a KiB/MiB suffix), got ${JSON.stringify(raw)}`);
  }
  return size;
}

/** Failures of {@link UrlSigningAuth.sign}, by message: `@google-cloud/storage` re-wraps them as `SigningError`s with the same message. */
const signingFailures = new Map<string, StowageError>();

/**
 * The StowageError behind a `SigningError` that `@google-cloud/storage` threw, if our signer made it
 * (it is forgotten once returned).
 */
export function signingFailure(error: unknown): StowageError | undefined {
  if (!(error instanceof Error)) return undefined;
  const found = signingFailures.get(error.message);
  signingFailures.delete(error.message);
  return found;
}

function remember(error: StowageError): StowageError {
  if (signingFailures.size > 100) signingFailures.clear();
  signingFailures.set(error.message, error);
  return error;
}

/**
 * A GoogleAuth that `@google-cloud/storage` signs URLs with: it signs locally with a private key, or
 * calls the IAM Credentials `signBlob` API at a configurable endpoint with the data calls'
 * credentials, and names the signing account.
 */
class UrlSigningAuth extends GoogleAuth {
  readonly #signer: KeyUrlSigner | SignBlobUrlSigner;
  readonly #api: GoogleAuth;
  #email: string | undefined;

  constructor(signer: KeyUrlSigner | SignBlobUrlSigner, api: GoogleAuth) {
    super();
    this.#signer = signer;
    this.#api = api;
    this.#email = signer.email;
  }

  async #account(): Promise<string> {
    if (this.#email !== undefined) return this.#email;
    // Metadata-server credentials (GCE, GKE Workload Identity): the metadata server names the account.
    let email: string | undefined;
    try {
      email = (await this.#api.getCredentials()).client_email ?? undefined;
    } catch (error) {
      throw new StowageError(
        Code.Unimplemented,
        `cannot tell which service account signs URLs (${error instanceof Error ? error.message : String(error)}); set serviceAccount to the email of a service account these credentials may call signBlob for`,
        { reason: Reason.Unsupported, cause: error },
      );
    }
    if (email === undefined || email === "") {
      throw new StowageError(Code.Unimplemented, "the credentials name no service account to sign URLs with; set serviceAccount", { reason: Reason.Unsupported });
    }
    this.#email = email;
    return email;
  }

  override async getCredentials(): Promise<{ client_email: string }> {
    return { client_email: await this.#account() };
  }

  override async sign(data: string): Promise<string> {
    if (this.#signer.kind === "key") return createSign("RSA-SHA256").update(data).sign(this.#signer.privateKey, "base64");
    const email = await this.#account().catch((error: unknown) => {
      throw error instanceof StowageError ? remember(error) : error;
    });
    const url = `${this.#signer.endpoint}/v1/projects/-/serviceAccounts/${encodeURIComponent(email)}:signBlob`;
    try {
      const response = await this.#api.request<{ signedBlob?: unknown }>({
        method: "POST",
        url,
        data: { payload: Buffer.from(data, "utf8").toString("base64") },
        headers: { "content-type": "application/json" },
        responseType: "json",
      });
      const signed = response.data.signedBlob;
      if (typeof signed !== "string" || signed === "") throw new Error("the signBlob answer has no signedBlob");
      return signed;
    } catch (error) {
      const mapped = toStowageError(error, { operation: `sign a URL as ${email} through the IAM signBlob API` });
      if (mapped.code === Code.PermissionDenied) {
        throw remember(new StowageError(mapped.code, `${mapped.rawMessage}; grant iam.serviceAccounts.signBlob on ${email} (roles/iam.serviceAccountTokenCreator)`, {
          ...(mapped.reason === undefined ? {} : { reason: mapped.reason }),
          metadata: mapped.metadata,
          cause: error,
        }));
      }
      throw remember(mapped);
    }
  }
}

/** Decides how URLs are signed with these credentials and settings. */
export function chooseSigner(credentials: GoogleCredentials, serviceAccount: string | undefined, signingEndpoint: string): UrlSigner {
  if (credentials.privateKey !== undefined && credentials.clientEmail !== undefined) {
    return { kind: "key", email: credentials.clientEmail, privateKey: credentials.privateKey };
  }
  const email = serviceAccount ?? credentials.clientEmail;
  if (email !== undefined || credentials.type === METADATA_SERVER_CREDENTIALS) return { kind: "signBlob", email, endpoint: signingEndpoint };
  return {
    kind: "none",
    why: `signed URLs cannot be made with ${credentials.type} credentials from ${credentials.source}: they hold no private key and name no service account; set serviceAccount to a service account these credentials may call signBlob for, or use a service-account key file`,
  };
}

/**
 * Validates an `init` configuration and builds the clients.
 *
 * @param config - The configuration map.
 * @param signal - Cancels reading the credentials file.
 * @throws StowageError `INVALID_ARGUMENT`/`INVALID_CONFIG` naming the key at fault.
 */
export async function configureGcs(config: PluginConfig, signal?: AbortSignal): Promise<GcsStoreSettings> {
  const cfg = GCS_CONFIG.parse(config);
  const { universeDomain, kmsKeyName, serviceAccount, storeEndpoint, publicUrl, chunkSize, directTransfer } = cfg;
  const signingEndpoint = cfg.signingEndpoint ?? `https://iamcredentials.${universeDomain ?? "googleapis.com"}`;
  const timeouts = backendTimeouts(cfg);
  const credentials = await loadGoogleCredentials({ credentialsFile: cfg.credentialsFile, universeDomain, signal });
  const common = {
    ...(universeDomain === undefined ? {} : { universeDomain }),
    ...(storeEndpoint === undefined ? {} : { apiEndpoint: storeEndpoint, useAuthWithCustomEndpoint: true }),
    ...(credentials.projectId === undefined ? {} : { projectId: credentials.projectId }),
  };
  const storage = new Storage({ ...common, authClient: credentials.auth });
  const signer = chooseSigner(credentials, serviceAccount, signingEndpoint);
  const signingStorage = signer.kind === "none" ? storage : new Storage({ ...common, authClient: new UrlSigningAuth(signer, credentials.auth) });
  return { storage, signingStorage, signer, publicUrl, kmsKeyName, chunkSize, credentials, timeouts, directTransfer };
}
