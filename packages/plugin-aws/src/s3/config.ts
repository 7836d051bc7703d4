/**
 * Configuration of the S3 ObjectStore: the keys `init` accepts, their parsing, and the S3 clients
 * built from them. The parts shared with other S3-compatible plugins (IBM COS) are exported.
 *
 * @packageDocumentation
 */
import { ChecksumAlgorithm, GetBucketLocationCommand, HeadBucketCommand, S3Client, ServerSideEncryption } from "@aws-sdk/client-s3";
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import {
  DEFAULT_BACKEND_TIMEOUTS,
  backendTimeoutDeclarations,
  backendTimeouts,
  custom,
  defineConfig,
  flag,
  integer,
  invalidConfig,
  oneOf,
  size,
  text,
  withRequestTimeout,
  type BackendTimeouts,
  type ConfigValue,
  type ConfigValues,
} from "@stowage/sdk/plugin";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import { readFile } from "node:fs/promises";
import {
  TLS_DECLARATIONS,
  checkCredentials,
  credentialDeclarations,
  credentialProvider,
  endpointUrl,
  httpHandler,
  tlsSettings,
  type CredentialSettings,
  type TlsSettings,
} from "../shared/config.js";
import { awsHttpStatus } from "../shared/errors.js";

const MiB = 1024 * 1024;
/** Default multipart part size: 8 MiB. */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Smallest part size S3 accepts: 5 MiB. */
export const MIN_PART_SIZE = 5 * MiB;
/** Largest part size S3 accepts: 5 GiB. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** Default number of parts uploaded at once. */
export const DEFAULT_UPLOAD_CONCURRENCY = 4;
/** Largest `uploadConcurrency`. */
export const MAX_UPLOAD_CONCURRENCY = 64;

/** The configuration every S3-compatible ObjectStore (AWS, IBM COS) accepts, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const S3_COMMON_CONFIG = defineConfig({
  bucket: {
    docs: "The bucket; used for region discovery (calls name their bucket themselves)", value: text(), description: "The bucket; used for region discovery. Calls name their bucket themselves." },
  prefix: {
    docs: "Accepted and ignored (the caller applies it to keys)", value: text(), description: "Accepted and ignored (the caller applies the prefix to keys itself)." },
  publicUrl: {
    docs: "Endpoint used only in signed URLs (same credentials, region and addressing)",
    default: "`s3Url`",
    value: endpointUrl(),
    description: "Endpoint used only in signed URLs (e.g. the address the CLI reaches MinIO at). Same credentials, region and addressing style.",
  },
  s3ForcePathStyle: {
    docs: "Path-style addressing; needed by MinIO and most on-premises stores",
    default: "`false`",
    value: flag(false),
    description: "true for path-style addressing (http://host/bucket/key), needed by MinIO and most on-premises stores. Default false.",
  },
  kmsKeyId: {
    docs: "SSE-KMS key id, alias or ARN; puts use `aws:kms` (or `aws:kms:dsse` when `serverSideEncryption` says so). Excludes `customerKeyEncryptionFile`",
    value: text(),
    description: "SSE-KMS key id, alias or ARN; objects are written with aws:kms (or serverSideEncryption aws:kms:dsse). Excludes customerKeyEncryptionFile.",
  },
  serverSideEncryption: {
    docs: "Encryption of puts: `AES256` (SSE-S3), `aws:kms`, `aws:kms:dsse` (also `aws:fsx`, `aws:backup`); other values fail `init`. With `kmsKeyId` only `aws:kms`/`aws:kms:dsse`; not with `customerKeyEncryptionFile`",
    value: oneOf(Object.values(ServerSideEncryption), {
      invalid: (key, value, allowed) => `${key} ${JSON.stringify(value)} is not one of [${allowed.join(", ")}]; leave it empty for the bucket's default`,
    }),
    description: `Server-side encryption of puts: ${Object.values(ServerSideEncryption).join(", ")}. With kmsKeyId only aws:kms or aws:kms:dsse; not with customerKeyEncryptionFile. Default: the bucket's default.`,
  },
  customerKeyEncryptionFile: {
    docs: "File whose first 32 bytes are the SSE-C key; sent on put (every part), get and head. Needs an `https://` endpoint",
    value: text(),
    description: "File whose first 32 bytes are the SSE-C key; sent on put, get and head (and every part). S3-compatible stores require HTTPS for SSE-C.",
  },
  ...TLS_DECLARATIONS,
  checksumAlgorithm: {
    docs: "A `ChecksumAlgorithm` of the SDK (`CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`, ...; case-insensitive): flexible checksum of uploads (single and multipart). Empty: **no** checksum headers unless an operation requires them (`requestChecksumCalculation`/`responseChecksumValidation` = `WHEN_REQUIRED`), so MinIO, IBM COS, Ceph and B2 never see `XAmzContentSHA256Mismatch` or unsupported checksum headers",
    default: "empty",
    value: oneOf(Object.values(ChecksumAlgorithm), {
      ignoreCase: true,
      invalid: (key, value, allowed) => `${key} ${JSON.stringify(value)} is not one of [${allowed.join(", ")}]; leave it empty for none`,
    }),
    description: `Flexible checksum sent with uploads: ${Object.values(ChecksumAlgorithm).join(", ")}. Default empty: none, and no checksum headers unless an operation requires them (safe for MinIO, IBM COS, Ceph, B2).`,
  },
  tagging: {
    docs: "Object tags as `K1=V1&K2=V2`; one tag is fine; at most 10",
    value: custom({ syntax: "K1=V1&K2=V2", parse: (value) => parseTagging(value) }),
    description: "Object tags as a query string, K1=V1&K2=V2 (one tag is fine; at most 10).",
  },
  partSize: {
    docs: "Multipart part size: bytes, or `<n>MiB`/`<n>GiB`; 5 MiB to 5 GiB. Grown automatically when a known size would need more than 10,000 parts",
    default: "`8MiB`",
    value: size({
      default: DEFAULT_PART_SIZE,
      min: MIN_PART_SIZE,
      max: MAX_PART_SIZE,
      invalid: (key, value) => `${key} must be between 5MiB and 5GiB (bytes, or with a MiB/GiB suffix), got ${JSON.stringify(value)}`,
    }),
    description: "Multipart part size in bytes, or with a MiB/GiB suffix (e.g. 16MiB). 5 MiB to 5 GiB; default 8 MiB.",
  },
  directTransfer: {
    docs: "Offer direct transfer (contract 5.8): the host moves bodies to and from the store with requests this plugin signs (valid 10 minutes), so they do not pass through the plugin. Declined anyway with a `caCert`, `insecureSkipTLSVerify` or credentials that cannot presign",
    default: "`true`",
    value: flag(true),
    description: "true (default) to let the host move object bodies to and from the store itself with requests this plugin signs; false sends every body through the plugin.",
  },
  uploadConcurrency: {
    docs: "Parts uploaded at once per object, 1–64. Memory per put: `partSize × (uploadConcurrency + 1)`",
    default: "`4`",
    value: integer({ default: DEFAULT_UPLOAD_CONCURRENCY, min: 1, max: MAX_UPLOAD_CONCURRENCY }),
    description: "Parts uploaded at once per object, 1 to 64; default 4. A put holds at most partSize × (uploadConcurrency + 1) bytes of body.",
  },
  ...backendTimeoutDeclarations(undefined, {
    connectTimeout: "Longest wait for a connection to the store (TCP and TLS). Default 10.",
    requestTimeout: "Longest wait for one request (a part, a head, a list page, a get until its answer starts, ...), its retries included. Default 120. Raise it with large `partSize` on slow links.",
    idleTimeout: "Longest time a request, or a get's body while the reader waits for it, may move no byte. Default 60.",
  }),
});

/** Keys every S3-compatible ObjectStore (AWS, IBM COS) accepts. */
export const S3_COMMON_CONFIG_KEYS: readonly ConfigKeySpec[] = S3_COMMON_CONFIG.keys;

/** The values of the common keys, as {@link S3_COMMON_CONFIG} parses them.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export type S3CommonValues = ConfigValues<typeof S3_COMMON_CONFIG.declarations>;

/** The configuration of the AWS S3 ObjectStore (`stowage.io/aws`), declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const S3_CONFIG = defineConfig({
  ...S3_COMMON_CONFIG.declarations,
  region: {
    docs: "Region to sign for. With no `s3Url` and no `region`, the bucket's region is discovered (HeadBucket's `x-amz-bucket-region`, then GetBucketLocation). With `s3Url` and no `region`: `us-east-1` (no `MissingRegion` error)",
    default: "discovered",
    value: text(),
    description: "Region to sign for. Empty with no s3Url: discovered from the bucket (us-east-1 without a bucket). Empty with s3Url: us-east-1.",
  },
  s3Url: {
    docs: "Endpoint of an S3-compatible store, `http(s)://host[:port]`",
    default: "AWS", value: endpointUrl(), description: "Endpoint of an S3-compatible store, e.g. http://minio:9000. Empty means AWS." },
  ...credentialDeclarations(
    "Profile in the shared credentials/config file. Default: default.",
    "Shared credentials file, also read as the shared config file (role_arn/source_profile work). Default: the SDK's credential chain.",
  ),
  signatureVersion: {
    docs: "Velero compatibility: only `4` is accepted", value: signatureVersion(), description: "Accepted for Velero compatibility; only 4 (SigV4) is supported." },
  enableSharedConfig: {
    docs: "Velero compatibility: accepted (boolean) and ignored", value: flag(true), description: "Accepted for Velero compatibility and ignored: the credentials file is always read as shared config." },
});

/** Keys of the AWS S3 ObjectStore (`stowage.io/aws`). */
export const S3_CONFIG_KEYS: readonly ConfigKeySpec[] = S3_CONFIG.keys;

/** Server-side encryption parameters added to puts (and, for SSE-C, to reads). */
export interface EncryptionSettings {
  /** `ServerSideEncryption` of puts. */
  readonly serverSideEncryption: string | undefined;
  /** `SSEKMSKeyId` of puts. */
  readonly kmsKeyId: string | undefined;
  /** SSE-C key, base64, sent on put, get and head. */
  readonly customerKey: string | undefined;
}

/** Everything the S3 ObjectStore needs once configured. */
export interface S3StoreSettings {
  /** The client of all data calls. */
  readonly client: S3Client;
  /** The client signed URLs are made with (its endpoint is `publicUrl` when set). */
  readonly presignClient: S3Client;
  /** When set, signed URLs cannot be made with these credentials, and this says why. */
  readonly presignUnavailable?: string | undefined;
  /** Multipart part size in bytes. */
  readonly partSize: number;
  /** Parts uploaded at once. */
  readonly uploadConcurrency: number;
  /**
   * Why direct transfer (contract 5.8) is declined, when it is: turned off, credentials that
   * cannot presign, or TLS settings a host would not share.
   */
  readonly directTransferDeclined: string | undefined;
  /** The flexible checksum of uploads, if any. */
  readonly checksumAlgorithm: ChecksumAlgorithm | undefined;
  /** Encryption. */
  readonly encryption: EncryptionSettings;
  /** The `x-amz-tagging` value of puts, if any. */
  readonly tagging: string | undefined;
  /** Connect, request and idle timeouts of the calls to the store. */
  readonly timeouts: BackendTimeouts;
  /** Releases the clients. */
  readonly destroy: () => void;
}

/** The settings shared by all S3-compatible plugins, parsed from their common keys. */
export interface S3CommonSettings {
  /** Endpoint of signed URLs. */
  readonly publicUrl: string | undefined;
  /** Path-style addressing. */
  readonly forcePathStyle: boolean;
  /** TLS settings. */
  readonly tls: TlsSettings;
  /** Part size. */
  readonly partSize: number;
  /** Upload concurrency. */
  readonly uploadConcurrency: number;
  /** Offer direct transfer. */
  readonly directTransfer: boolean;
  /** Checksum algorithm. */
  readonly checksumAlgorithm: ChecksumAlgorithm | undefined;
  /** Encryption. */
  readonly encryption: EncryptionSettings;
  /** Tagging. */
  readonly tagging: string | undefined;
  /** Timeouts. */
  readonly timeouts: BackendTimeouts;
}

/** The common settings from the parsed common keys: reads the CA and SSE-C key files. */
export async function s3CommonSettings(values: S3CommonValues): Promise<S3CommonSettings> {
  return {
    publicUrl: values.publicUrl,
    forcePathStyle: values.s3ForcePathStyle,
    tls: await tlsSettings(values),
    partSize: values.partSize,
    uploadConcurrency: values.uploadConcurrency,
    directTransfer: values.directTransfer,
    checksumAlgorithm: values.checksumAlgorithm,
    encryption: await encryptionSettings(values),
    tagging: values.tagging,
    timeouts: backendTimeouts(values),
  };
}

/** Parses the keys of {@link S3_COMMON_CONFIG_KEYS} in a configuration map (other keys are the caller's to check). */
export async function parseS3CommonConfig(config: PluginConfig): Promise<S3CommonSettings> {
  const names = new Set(S3_COMMON_CONFIG_KEYS.map((k) => k.name));
  const common = Object.fromEntries(Object.entries(config).filter(([k]) => names.has(k)));
  return s3CommonSettings(S3_COMMON_CONFIG.parse(common));
}

/** `signatureVersion`: only `4` (SigV4). */
export function signatureVersion(): ConfigValue<string | undefined> {
  return text({ pattern: /^4$/, invalid: (key, value) => `${key} ${JSON.stringify(value)} is not supported; only 4 (SigV4) is` });
}

/** `serverSideEncryption` values that go with a `kmsKeyId`. */
const KMS_ENCRYPTION = ["aws:kms", "aws:kms:dsse"];

async function encryptionSettings(values: S3CommonValues): Promise<EncryptionSettings> {
  const { kmsKeyId, customerKeyEncryptionFile: keyFile, serverSideEncryption: sse } = values;
  if (kmsKeyId !== undefined && keyFile !== undefined) {
    throw invalidConfig("kmsKeyId", "kmsKeyId and customerKeyEncryptionFile cannot both be set; choose SSE-KMS or SSE-C");
  }
  if (sse !== undefined) {
    if (keyFile !== undefined) {
      throw invalidConfig(
        "serverSideEncryption",
        `serverSideEncryption ${JSON.stringify(sse)} cannot be combined with customerKeyEncryptionFile (SSE-C); remove serverSideEncryption`,
      );
    }
    if (kmsKeyId !== undefined && !KMS_ENCRYPTION.includes(sse)) {
      throw invalidConfig(
        "serverSideEncryption",
        `serverSideEncryption ${JSON.stringify(sse)} cannot be combined with kmsKeyId; use ${KMS_ENCRYPTION.join(" or ")}, or leave it empty (aws:kms)`,
      );
    }
  }
  let customerKey: string | undefined;
  if (keyFile !== undefined) {
    let bytes: Buffer;
    try {
      bytes = await readFile(keyFile);
    } catch (error) {
      throw invalidConfig("customerKeyEncryptionFile", `cannot read customerKeyEncryptionFile ${JSON.stringify(keyFile)}`, error);
    }
    if (bytes.length < 32) {
      throw invalidConfig("customerKeyEncryptionFile", `customerKeyEncryptionFile ${JSON.stringify(keyFile)} must hold a 32-byte key, it has ${bytes.length} bytes`);
    }
    customerKey = bytes.subarray(0, 32).toString("base64");
  }
  if (kmsKeyId !== undefined) return { serverSideEncryption: sse ?? "aws:kms", kmsKeyId, customerKey: undefined };
  return { serverSideEncryption: sse, kmsKeyId: undefined, customerKey };
}

/**
 * Parses `tagging` (`K1=V1&K2=V2`, URL-encoded): a single tag is fine; at most 10 tags, keys of at
 * most 128 and values of at most 256 characters, no duplicate keys. Returns the normalised query
 * string, or `undefined` when empty.
 */
export function parseTagging(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const params = new URLSearchParams(raw);
  const keys = [...params.keys()];
  const fail = (why: string) => invalidConfig("tagging", `tagging ${JSON.stringify(raw)} is invalid: ${why}; use K1=V1&K2=V2`);
  if (keys.length === 0) return undefined;
  if (keys.length > 10) throw fail("at most 10 tags are allowed");
  if (new Set(keys).size !== keys.length) throw fail("a tag key is repeated");
  for (const [k, v] of params) {
    if (k === "") throw fail("a tag key is empty");
    if (Array.from(k).length > 128) throw fail(`tag key ${JSON.stringify(k)} is longer than 128 characters`);
    if (Array.from(v).length > 256) throw fail(`the value of tag ${JSON.stringify(k)} is longer than 256 characters`);
  }
  return params.toString();
}

/** The clients {@link createS3Clients} builds. */
export interface S3Clients {
  /** The client of all data calls. */
  readonly client: S3Client;
  /** The client of signed URLs (the data client when there is no `publicUrl`). */
  readonly presignClient: S3Client;
}

/** What {@link createS3Clients} needs. */
export interface S3ClientOptions {
  /** Endpoint; `undefined` means AWS for the region. */
  readonly endpoint: string | undefined;
  /** Region to sign for. */
  readonly region: string;
  /** Credentials; `undefined` means the SDK's default chain. */
  readonly credentials: AwsCredentialIdentityProvider | undefined;
  /** The common settings. */
  readonly common: S3CommonSettings;
  /** Extra options merged into both clients' configuration (for example IBM's bearer-token signer). */
  readonly extra?: Partial<ConstructorParameters<typeof S3Client>[0]> | undefined;
}

/**
 * Builds the data client and the signed-URL client. Without a checksum algorithm, flexible checksums
 * are calculated and validated only when an operation requires them (`WHEN_REQUIRED`), for single
 * and multipart uploads alike, so S3-compatible stores never see checksum headers they reject.
 */
export function createS3Clients(options: S3ClientOptions): S3Clients {
  const { common } = options;
  const make = (endpoint: string | undefined): S3Client =>
    new S3Client({
      region: options.region,
      ...(endpoint === undefined ? {} : { endpoint }),
      forcePathStyle: common.forcePathStyle,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      requestHandler: httpHandler({ ...common.tls, maxSockets: Math.max(50, common.uploadConcurrency * 2), timeouts: common.timeouts }),
      requestChecksumCalculation: common.checksumAlgorithm === undefined ? "WHEN_REQUIRED" : "WHEN_SUPPORTED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 5,
      ...options.extra,
    });
  const client = make(options.endpoint);
  const presignClient = common.publicUrl === undefined ? client : make(common.publicUrl);
  return { client, presignClient };
}

/** Bundles clients and common settings into {@link S3StoreSettings}. */
export function s3StoreSettings(
  clients: S3Clients,
  common: S3CommonSettings,
  presignUnavailable?: string,
): S3StoreSettings {
  return {
    ...clients,
    presignUnavailable,
    partSize: common.partSize,
    uploadConcurrency: common.uploadConcurrency,
    directTransferDeclined: directTransferDeclined(common, presignUnavailable),
    checksumAlgorithm: common.checksumAlgorithm,
    encryption: common.encryption,
    tagging: common.tagging,
    timeouts: common.timeouts,
    destroy: () => {
      clients.client.destroy();
      if (clients.presignClient !== clients.client) clients.presignClient.destroy();
    },
  };
}

/**
 * Finds the region of a bucket: HeadBucket's `x-amz-bucket-region` header (also present on the 301
 * and 403 answers), then GetBucketLocation. `undefined` when neither says.
 */
export async function discoverBucketRegion(
  client: S3Client,
  bucket: string,
  signal?: AbortSignal,
  requestTimeoutMs: number = DEFAULT_BACKEND_TIMEOUTS.requestTimeoutSeconds * 1000,
): Promise<string | undefined> {
  const fromHeaders = (value: unknown): string | undefined => {
    const headers = (value as { $response?: { headers?: Record<string, string | undefined> } } | undefined)?.$response?.headers;
    return headers?.["x-amz-bucket-region"];
  };
  try {
    const out = await withRequestTimeout(signal, requestTimeoutMs, "head bucket", (abortSignal) => client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal }));
    if (out.BucketRegion !== undefined && out.BucketRegion !== "") return out.BucketRegion;
  } catch (error) {
    const region = fromHeaders(error);
    if (region !== undefined && region !== "") return region;
    if (awsHttpStatus(error) === 404) return undefined;
  }
  try {
    const out = await withRequestTimeout(signal, requestTimeoutMs, "get bucket location", (abortSignal) => client.send(new GetBucketLocationCommand({ Bucket: bucket }), { abortSignal }));
    const location: string = out.LocationConstraint ?? "";
    return location === "" ? "us-east-1" : location === "EU" ? "eu-west-1" : location;
  } catch {
    return undefined;
  }
}

/**
 * Validates and parses an AWS `init` configuration and builds its clients. Unknown keys and
 * malformed values fail with `INVALID_CONFIG`; credentials from a file or profile are loaded once
 * so that a wrong one fails here.
 */
export async function configureAwsS3(config: PluginConfig, signal?: AbortSignal): Promise<S3StoreSettings> {
  const values = S3_CONFIG.parse(config);
  const common = await s3CommonSettings(values);
  const endpoint = values.s3Url;
  const credentialSettings: CredentialSettings = { profile: values.profile, credentialsFile: values.credentialsFile };
  const credentials = credentialProvider(credentialSettings);
  await checkCredentials(credentials, credentialSettings);
  let region = values.region;
  const bucket = values.bucket;
  if (region === undefined && endpoint === undefined && bucket !== undefined) {
    const probe = createS3Clients({ endpoint: undefined, region: "us-east-1", credentials, common: { ...common, publicUrl: undefined } });
    try {
      region = await discoverBucketRegion(probe.client, bucket, signal, common.timeouts.requestTimeoutMs);
    } finally {
      probe.client.destroy();
    }
    if (region === undefined) throw invalidConfig("region", `cannot discover the region of bucket ${JSON.stringify(bucket)}; set "region"`);
  }
  return s3StoreSettings(createS3Clients({ endpoint, region: region ?? "us-east-1", credentials, common }), common);
}

/** Why this configuration declines direct transfer, or `undefined` when it offers it. */
function directTransferDeclined(common: S3CommonSettings, presignUnavailable: string | undefined): string | undefined {
  if (!common.directTransfer) return "the configuration sets directTransfer: false";
  if (presignUnavailable !== undefined) return presignUnavailable;
  // The host verifies the store's certificate against its own roots; it knows neither setting.
  if (common.tls.caCert !== undefined) return "the configuration trusts its own caCert, which the host does not";
  if (common.tls.insecureSkipTLSVerify) return "the configuration sets insecureSkipTLSVerify, which the host does not";
  return undefined;
}
