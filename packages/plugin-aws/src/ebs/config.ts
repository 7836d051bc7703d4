/**
 * Configuration of the EBS BlockStore: the keys `init` accepts and the EC2 client built from them.
 *
 * @packageDocumentation
 */
import type { EC2Client } from "@aws-sdk/client-ec2";
import type { ConfigKeySpec, PluginConfig } from "@stowage/sdk";
import { backendTimeoutDeclarations, backendTimeouts, defineConfig, flag, text, type BackendTimeouts } from "@stowage/sdk/plugin";
import { checkCredentials, credentialDeclarations, credentialProvider, endpointUrl, httpHandler, type CredentialSettings } from "../shared/config.js";

/** The configuration of the EBS BlockStore, declared once.
 *
 * @internal Exported for sibling plugins and `scripts/config-docs.mjs`; the reported keys are the `…_KEYS` export.
 */
export const EBS_CONFIG = defineConfig({
  region: {
    docs: "Region of the volumes and snapshots", value: text(), required: true, description: "Region of the volumes and snapshots." },
  ...credentialDeclarations(
    "Profile in the shared credentials/config file. Default: default.",
    "Shared credentials file, also read as the shared config file. Default: the SDK's credential chain.",
  ),
  ebsKmsKeyId: {
    docs: "KMS key of restored volumes (they are then encrypted with it)", value: text(), description: "KMS key (id, alias or ARN) for volumes restored from snapshots; restored volumes are then encrypted with it." },
  ec2Endpoint: {
    docs: "EC2 endpoint override (VPC endpoint, test server)",
    default: "AWS", value: endpointUrl(), description: "EC2 endpoint override, e.g. a VPC endpoint or a test server. Default: AWS for the region." },
  enableSharedConfig: {
    docs: "Velero compatibility: accepted and ignored", value: flag(true), description: "Accepted for Velero compatibility and ignored: the credentials file is always read as shared config." },
  ...backendTimeoutDeclarations(undefined, {
    connectTimeout: "As for the ObjectStore, for every EC2 request: longest wait for a connection. Default 10.",
    requestTimeout: "As for the ObjectStore, for every EC2 request: longest wait for its answer, retries included. Default 120.",
    idleTimeout: "As for the ObjectStore, for every EC2 request: longest silence on the connection. Default 60.",
  }),
});

/** The configuration keys of the EBS BlockStore. */
export const EBS_CONFIG_KEYS: readonly ConfigKeySpec[] = EBS_CONFIG.keys;

/** The parsed configuration. */
export interface EbsSettings {
  /** The EC2 client. */
  readonly client: EC2Client;
  /** The `@aws-sdk/client-ec2` module, loaded on first `init` (it is large: about 85 MiB of RSS). */
  readonly sdk: typeof import("@aws-sdk/client-ec2");
  /** The region. */
  readonly region: string;
  /** KMS key of restored volumes. */
  readonly ebsKmsKeyId: string | undefined;
  /** Connect, request and idle timeouts of the calls to EC2. */
  readonly timeouts: BackendTimeouts;
}

/** Validates an `init` configuration and builds the EC2 client; problems fail with `INVALID_CONFIG`. */
export async function parseEbsConfig(config: PluginConfig): Promise<EbsSettings> {
  const values = EBS_CONFIG.parse(config);
  const region = values.region ?? "";
  const endpoint = values.ec2Endpoint;
  const timeouts = backendTimeouts(values);
  const credentialSettings: CredentialSettings = { profile: values.profile, credentialsFile: values.credentialsFile };
  const credentials = credentialProvider(credentialSettings);
  await checkCredentials(credentials, credentialSettings);
  const sdk = await import("@aws-sdk/client-ec2");
  const client = new sdk.EC2Client({
    region,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
    requestHandler: httpHandler({ insecureSkipTLSVerify: false, caCert: undefined, maxSockets: 16, timeouts }),
    maxAttempts: 5,
  });
  return { client, sdk, region, ebsKmsKeyId: values.ebsKmsKeyId, timeouts };
}
