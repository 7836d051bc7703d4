/**
 * Starts and stops the local servers that Stowage's storage tests run against: MinIO and moto (S3,
 * EC2, EBS), Azurite (Azure Blob) and fake-gcs-server (Google Cloud Storage). Each server runs on
 * 127.0.0.1 at a free port with its data in a temporary folder, and is killed when the test process
 * exits. Install the servers with `bash scripts/install-test-servers`. Two test doubles model what
 * the emulators lack: a proxy in front of fake-gcs-server for Cloud Storage's object retention and
 * holds, and one in front of Azurite for Azure Blob version-level immutability. A fault-injecting
 * proxy (latency, resets, `503 SlowDown` bursts, a black hole) sits in front of any of them. Plugin
 * executables also run here as network services (mTLS on loopback), with a test PKI to call them.
 *
 * @packageDocumentation
 */
export { toolsDir } from "./tools.js";
export { OUTPUT_TAIL_CHARS, type CommonServerOptions, type RunningServer } from "./process.js";
export { startMinio, type MinioOptions, type MinioServer, type MinioTlsOptions } from "./minio.js";
export { startMoto, type MotoOptions, type MotoServer } from "./moto.js";
export {
  AZURITE_ACCOUNT_KEY,
  AZURITE_ACCOUNT_NAME,
  startAzurite,
  type AzuriteOptions,
  type AzuriteServer,
} from "./azurite.js";
export {
  makeSelfSignedCertificate,
  makeTestPki,
  type CertificateFileNames,
  type ClientCertificateOptions,
  type PemFiles,
  type SelfSignedCertificate,
  type TestPki,
} from "./certificate.js";
export { startFakeGcs, type FakeGcsOptions, type FakeGcsServer } from "./fake-gcs.js";
export { startGcsRetentionProxy, type GcsRetentionProxy, type GcsRetentionProxyOptions } from "./gcs-retention-proxy.js";
export {
  startAzureImmutabilityProxy,
  type AzureImmutabilityPolicy,
  type AzureImmutabilityPolicyMode,
  type AzureImmutabilityProxy,
  type AzureImmutabilityProxyOptions,
  type AzureVersionProtection,
} from "./azure-immutability-proxy.js";
export { slowDownBody, startFaultProxy, type FaultProxy, type FaultProxyOptions, type ProxiedRequest, type RequestMatch } from "./fault-proxy.js";
export { startNetworkPlugin, type NetworkPlugin, type NetworkPluginOptions, type NetworkPluginTls } from "./network-plugin.js";
