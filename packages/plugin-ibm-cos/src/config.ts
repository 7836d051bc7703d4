/**
 * Configuration of the IBM COS ObjectStore: its keys, endpoint resolution and authentication (HMAC
 * keys or an IAM API key), on top of the S3 code of `@stowage/plugin-aws`.
 *
 * @packageDocumentation
 */
import type { S3Client } from "@aws-sdk/client-s3";
import {
  S3_COMMON_CONFIG_KEYS,
  checkCredentials,
  configString,
  configUrl,
  createS3Clients,
  credentialProvider,
  invalidConfig,
  parseS3CommonConfig,
  s3StoreSettings,
  type S3StoreSettings,
} from "@stowage/plugin-aws/s3";
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { validateConfig } from "@stowage/sdk/plugin";
import type { AwsCredentialIdentityProvider, FinalizeHandler, FinalizeHandlerArguments, MetadataBearer } from "@smithy/types";
import { readFile } from "node:fs/promises";
import { IBM_ENDPOINT_TYPES, ibmCosEndpoint, type IbmEndpointType } from "./endpoints.js";
import { DEFAULT_IAM_ENDPOINT, IamTokenManager } from "./iam.js";

/** The configuration keys of the IBM COS ObjectStore. */
export const IBM_COS_CONFIG_KEYS: readonly ConfigKeySpec[] = [
  ...S3_COMMON_CONFIG_KEYS,
  { name: "region", description: "Location of the bucket: a region (us-south), a cross-region location (us-geo, eu-geo, ap-geo) or a single site (ams03). Required unless s3Url is set." },
  { name: "endpointType", description: "public (default), private (IBM Cloud private network) or direct (VPC / Kubernetes Service direct endpoints)." },
  { name: "s3Url", description: "Explicit endpoint; overrides the one derived from region and endpointType." },
  { name: "profile", description: "Profile of an INI credentials file. Default: default." },
  {
    name: "credentialsFile",
    description: "HMAC keys as an AWS-style INI file (aws_access_key_id/aws_secret_access_key), or IBM's JSON service credentials (cos_hmac_keys, or apikey for IAM).",
  },
  { name: "apiKey", secret: true, description: "IBM Cloud API key: requests carry IAM bearer tokens instead of HMAC signatures (signed URLs then need HMAC keys)." },
  { name: "iamEndpoint", description: `IAM token endpoint for apiKey. Default ${DEFAULT_IAM_ENDPOINT}.` },
  { name: "serviceInstanceId", description: "COS service instance ID, sent as ibm-service-instance-id with IAM tokens." },
  { name: "signatureVersion", description: "Accepted for Velero compatibility; only 4 (SigV4) is supported." },
  { name: "enableSharedConfig", description: "Accepted for Velero compatibility and ignored." },
];

/** How the plugin authenticates. */
type Auth =
  | { readonly kind: "hmac"; readonly credentials: AwsCredentialIdentityProvider | undefined }
  | { readonly kind: "iam"; readonly apiKey: string };

interface IbmJsonCredentials {
  readonly apikey?: unknown;
  readonly resource_instance_id?: unknown;
  readonly cos_hmac_keys?: { readonly access_key_id?: unknown; readonly secret_access_key?: unknown };
}

async function resolveAuth(config: PluginConfig): Promise<{ auth: Auth; instanceId: string | undefined }> {
  const apiKey = configString(config, "apiKey");
  const file = configString(config, "credentialsFile");
  const profile = configString(config, "profile");
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
  validateConfig(config, IBM_COS_CONFIG_KEYS);
  const signatureVersion = configString(config, "signatureVersion");
  if (signatureVersion !== undefined && signatureVersion !== "4") {
    throw invalidConfig("signatureVersion", `signatureVersion ${JSON.stringify(signatureVersion)} is not supported; only 4 (SigV4) is`);
  }
  const common = await parseS3CommonConfig(config);
  const type = (configString(config, "endpointType") ?? "public").toLowerCase();
  if (!IBM_ENDPOINT_TYPES.includes(type as IbmEndpointType)) {
    throw invalidConfig("endpointType", `endpointType ${JSON.stringify(type)} must be one of [${IBM_ENDPOINT_TYPES.join(", ")}]`);
  }
  const region = configString(config, "region");
  let endpoint = configUrl(config, "s3Url");
  if (endpoint === undefined) {
    if (region === undefined) throw invalidConfig("region", "set region (e.g. us-south, us-geo) or s3Url");
    if (!/^[a-z0-9-]+$/.test(region)) throw invalidConfig("region", `region ${JSON.stringify(region)} is not an IBM COS location`);
    endpoint = ibmCosEndpoint(region, type as IbmEndpointType);
  }
  const { auth, instanceId } = await resolveAuth(config);
  const serviceInstanceId = configString(config, "serviceInstanceId") ?? instanceId;
  if (auth.kind === "hmac") {
    const clients = createS3Clients({ endpoint, region: region ?? "us-standard", credentials: auth.credentials, common });
    return s3StoreSettings(clients, common);
  }
  const tokens = new IamTokenManager({ apiKey: auth.apiKey, endpoint: configUrl(config, "iamEndpoint") ?? DEFAULT_IAM_ENDPOINT, requestTimeoutMs: common.timeouts.requestTimeoutMs });
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
