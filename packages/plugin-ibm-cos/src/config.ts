/**
 * Configuration of the IBM COS ObjectStore: its keys, endpoint resolution and authentication (HMAC
 * keys or an IAM API key), on top of the S3 code of `@stowage/plugin-aws`.
 *
 * @packageDocumentation
 */
import type { S3Client } from "@aws-sdk/client-s3";
import {
  S3_COMMON_CONFIG,
  checkCredentials,
  createS3Clients,
  credentialProvider,
  endpointUrl,
  s3CommonSettings,
  s3StoreSettings,
  signatureVersion,
  type S3StoreSettings,
} from "@stowage/plugin-aws/s3";
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { custom, defineConfig, invalidConfig, text } from "@stowage/sdk/plugin";
import type { AwsCredentialIdentityProvider, FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from "@smithy/types";
import { readFile } from "node:fs/promises";
import { IBM_ENDPOINT_TYPES, ibmCosEndpoint, type IbmEndpointType } from "./endpoints.js";
import { DEFAULT_IAM_ENDPOINT, IamTokenManager } from "./iam.js";

/** The configuration of the IBM COS ObjectStore, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const IBM_COS_CONFIG = defineConfig({
  ...S3_COMMON_CONFIG.declarations,
  region: {
    docs: "Location: a region (`us-south`, `eu-de`), cross-region (`us-geo`, `eu-geo`, `ap-geo`) or single site (`ams03`)",
    value: text(),
    description: "Location of the bucket: a region (us-south), a cross-region location (us-geo, eu-geo, ap-geo) or a single site (ams03). Required unless s3Url is set.",
  },
  endpointType: {
    docs: "`public`, `private` or `direct`",
    default: "`public`",
    value: custom({
      syntax: `one of ${IBM_ENDPOINT_TYPES.map((t) => `\`${t}\``).join(", ")} (any case)`,
      defaultText: "public",
      parse: (value, key): IbmEndpointType => {
        const type = (value ?? "public").toLowerCase();
        if (!IBM_ENDPOINT_TYPES.includes(type as IbmEndpointType)) throw invalidConfig(key, `${key} ${JSON.stringify(type)} must be one of [${IBM_ENDPOINT_TYPES.join(", ")}]`);
        return type as IbmEndpointType;
      },
    }),
    description: "public (default), private (IBM Cloud private network) or direct (VPC / Kubernetes Service direct endpoints).",
  },
  s3Url: {
    docs: "Explicit endpoint; overrides `region`/`endpointType`",
    default: "derived", value: endpointUrl(), description: "Explicit endpoint; overrides the one derived from region and endpointType." },
  profile: {
    docs: "Profile of an INI credentials file",
    default: "`default`", value: text(), description: "Profile of an INI credentials file. Default: default." },
  credentialsFile: {
    docs: "HMAC keys as an AWS INI file (`aws_access_key_id`/`aws_secret_access_key`), or IBM's JSON service credentials: `cos_hmac_keys` (HMAC) or else `apikey` (IAM)",
    default: "SDK chain",
    value: text(),
    description: "HMAC keys as an AWS-style INI file (aws_access_key_id/aws_secret_access_key), or IBM's JSON service credentials (cos_hmac_keys, or apikey for IAM).",
  },
  apiKey: { value: text(), secret: true, description: "IBM Cloud API key: requests carry IAM bearer tokens instead of HMAC signatures (signed URLs then need HMAC keys)." },
  iamEndpoint: {
    docs: "IAM token endpoint",
    default: "`https://iam.cloud.ibm.com/identity/token`", value: endpointUrl(), description: `IAM token endpoint for apiKey. Default ${DEFAULT_IAM_ENDPOINT}.` },
  serviceInstanceId: {
    docs: "Sent as `ibm-service-instance-id` with bearer tokens",
    default: "from the JSON credentials", value: text(), description: "COS service instance ID, sent as ibm-service-instance-id with IAM tokens." },
  signatureVersion: { value: signatureVersion(), description: "Accepted for Velero compatibility; only 4 (SigV4) is supported." },
  enableSharedConfig: { value: text(), description: "Accepted for Velero compatibility and ignored." },
});

/** The configuration keys of the IBM COS ObjectStore. */
export const IBM_COS_CONFIG_KEYS: readonly ConfigKeySpec[] = IBM_COS_CONFIG.keys;

/** How the plugin authenticates. */
type Auth =
  | { readonly kind: "hmac"; readonly credentials: AwsCredentialIdentityProvider | undefined }
  | { readonly kind: "iam"; readonly apiKey: string };

interface IbmJsonCredentials {
  readonly apikey?: unknown;
  readonly resource_instance_id?: unknown;
  readonly cos_hmac_keys?: { readonly access_key_id?: unknown; readonly secret_access_key?: unknown };
}

async function resolveAuth(apiKey: string | undefined, file: string | undefined, profile: string | undefined): Promise<{ auth: Auth; instanceId: string | undefined }> {
  if (apiKey !== undefined) return { auth: { kind: "iam", apiKey }, instanceId: undefined };
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      throw invalidConfig("credentialsFile", `cannot read credentialsFile ${JSON.stringify(file)}`, error);
    }
    if (text.trimStart().startsWith("{")) {
      let json: IbmJsonCredentials;
      try {
        json = JSON.parse(text) as IbmJsonCredentials;
      } catch (error) {
        throw invalidConfig("credentialsFile", `credentialsFile ${JSON.stringify(file)} is not valid JSON`, error);
      }
      const instanceId = typeof json.resource_instance_id === "string" ? json.resource_instance_id : undefined;
      const hmac = json.cos_hmac_keys;
      if (typeof hmac?.access_key_id === "string" && typeof hmac.secret_access_key === "string") {
        const identity = { accessKeyId: hmac.access_key_id, secretAccessKey: hmac.secret_access_key };
        return { auth: { kind: "hmac", credentials: () => Promise.resolve(identity) }, instanceId };
      }
      if (typeof json.apikey === "string" && json.apikey !== "") return { auth: { kind: "iam", apiKey: json.apikey }, instanceId };
      throw invalidConfig("credentialsFile", `credentialsFile ${JSON.stringify(file)} has neither cos_hmac_keys nor apikey`);
    }
  }
  const settings = { profile, credentialsFile: file };
  const credentials = credentialProvider(settings);
  await checkCredentials(credentials, settings);
  return { auth: { kind: "hmac", credentials }, instanceId: undefined };
}

/** Makes every request of the client carry an IAM bearer token instead of a SigV4 signature. */
function useBearerTokens(client: S3Client, tokens: IamTokenManager, instanceId: string | undefined): void {
  client.middlewareStack.addRelativeTo(
    <I extends object, O extends MetadataBearer>(next: FinalizeHandler<I, O>): FinalizeHandler<I, O> =>
      async (args: FinalizeHandlerArguments<I>) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers !== undefined) {
        request.headers.authorization = `Bearer ${await tokens.token()}`;
        delete request.headers.Authorization;
        if (instanceId !== undefined) request.headers["ibm-service-instance-id"] = instanceId;
      }
      return next(args);
    }, { relation: "after", toMiddleware: "httpSigningMiddleware", name: "ibmIamBearerToken", override: true },
  );
}

/**
 * Validates and parses an IBM COS `init` configuration and builds its clients. The endpoint is
 * `s3Url`, else derived from `region` and `endpointType`; flexible checksums are off unless
 * `checksumAlgorithm` is set, which avoids the `XAmzContentSHA256Mismatch` errors IBM COS users
 * hit with Velero.
 */
export async function configureIbmCos(config: PluginConfig, signal?: AbortSignal): Promise<S3StoreSettings> {
  const values = IBM_COS_CONFIG.parse(config);
  const common = await s3CommonSettings(values);
  const type = values.endpointType;
  const region = values.region;
  let endpoint = values.s3Url;
  if (endpoint === undefined) {
    if (region === undefined) throw invalidConfig("region", "set region (e.g. us-south, us-geo) or s3Url");
    if (!/^[a-z0-9-]+$/.test(region)) throw invalidConfig("region", `region ${JSON.stringify(region)} is not an IBM COS location`);
    endpoint = ibmCosEndpoint(region, type);
  }
  const { auth, instanceId } = await resolveAuth(values.apiKey, values.credentialsFile, values.profile);
  const serviceInstanceId = values.serviceInstanceId ?? instanceId;
  if (auth.kind === "hmac") {
    const clients = createS3Clients({ endpoint, region: region ?? "us-standard", credentials: auth.credentials, common });
    return s3StoreSettings(clients, common);
  }
  const tokens = new IamTokenManager({ apiKey: auth.apiKey, endpoint: values.iamEndpoint ?? DEFAULT_IAM_ENDPOINT, requestTimeoutMs: common.timeouts.requestTimeoutMs });
  await tokens.token(signal);
  // The SDK still signs; the middleware replaces the signature by the bearer token.
  const placeholder = { accessKeyId: "ibm-iam", secretAccessKey: "ibm-iam" };
  const clients = createS3Clients({ endpoint, region: region ?? "us-standard", credentials: () => Promise.resolve(placeholder), common });
  useBearerTokens(clients.client, tokens, serviceInstanceId);
  return s3StoreSettings(
    { client: clients.client, presignClient: clients.client },
    common,
    "signed URLs need HMAC credentials; this IBM COS store authenticates with an IAM API key (set credentialsFile with cos_hmac_keys)",
  );
}
