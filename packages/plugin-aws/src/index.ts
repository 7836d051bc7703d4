/**
 * `@stowage/plugin-aws`: Stowage's AWS plugins, both named `stowage.io/aws`.
 *
 * - {@link S3ObjectStore}: an ObjectStore on Amazon S3 and S3-compatible stores (MinIO, Ceph, IBM COS).
 * - {@link EbsBlockStore}: a BlockStore on Amazon EBS snapshots.
 *
 * The `stowage-plugin-aws` executable serves both. The S3 building blocks are exported for other
 * S3-compatible plugins (`@stowage/plugin-ibm-cos` uses them).
 *
 * @packageDocumentation
 */
export { S3ObjectStore, MAX_SIGNED_URL_TTL_SECONDS, MAX_LIST_PAGE_SIZE, type S3ObjectStoreOptions } from "./s3/s3-object-store.js";
export {
  S3_CONFIG,
  S3_CONFIG_KEYS,
  S3_COMMON_CONFIG,
  S3_COMMON_CONFIG_KEYS,
  DEFAULT_PART_SIZE,
  MIN_PART_SIZE,
  MAX_PART_SIZE,
  DEFAULT_UPLOAD_CONCURRENCY,
  MAX_UPLOAD_CONCURRENCY,
  configureAwsS3,
  createS3Clients,
  discoverBucketRegion,
  parseS3CommonConfig,
  s3CommonSettings,
  signatureVersion,
  parseTagging,
  s3StoreSettings,
  type EncryptionSettings,
  type S3ClientOptions,
  type S3Clients,
  type S3CommonSettings,
  type S3CommonValues,
  type S3StoreSettings,
} from "./s3/config.js";
export {
  MAX_UPLOAD_PARTS,
  PartBufferPool,
  uploadObject,
  type CustomerKeyParams,
  type ObjectUploadParams,
  type PartBuffer,
  type UploadObjectInput,
  type UploadObjectResult,
} from "./s3/multipart-upload.js";
export { EbsBlockStore, MAX_SNAPSHOT_PAGE_SIZE, SOURCE_VOLUME_TAGS, toSnapshot, type EbsBlockStoreOptions } from "./ebs/ebs-block-store.js";
export { EBS_CONFIG, EBS_CONFIG_KEYS, type EbsSettings } from "./ebs/config.js";
export { EBS_CSI_DRIVER, getEbsVolumeId, setEbsVolumeId } from "./ebs/persistent-volumes.js";
export { awsErrorCode, awsHttpStatus, toStowageError, type ErrorContext } from "./shared/errors.js";
export {
  TLS_DECLARATIONS,
  credentialDeclarations,
  endpointUrl,
  tlsSettings,
  configUrl,
  parseTlsSettings,
  credentialProvider,
  checkCredentials,
  parseCredentialSettings,
  type TlsSettings,
  type CredentialSettings,
} from "./shared/config.js";
/**
 * The SDK's `invalidConfig` and `configString`, re-exported under their old home (import them from
 * `@stowage/sdk/plugin`).
 */
export { invalidConfig, configString } from "@stowage/sdk/plugin";
export { AWS_PLUGIN_NAME, awsBlockStorePlugin, awsObjectStorePlugin } from "./plugins.js";
