/**
 * `@stowage/plugin-aws/s3`: the S3 building blocks for other S3-compatible plugins — the
 * {@link S3ObjectStore} with its settings, client construction, credentials and the configuration
 * keys and parsers every S3 dialect shares. `@stowage/plugin-ibm-cos` is built on them.
 *
 * @packageDocumentation
 */
export { S3ObjectStore, type S3ObjectStoreOptions } from "./s3/s3-object-store.js";
export {
  S3ObjectLock,
  LOCKABILITY_TTL_MS,
  LOCKABILITY_CACHE_SIZE,
  S3_ENFORCED_BY,
  protectionOf,
  objectLockParams,
  type CurrentVersion,
  type ObjectLockFields,
  type ObjectLockParams,
  type S3ObjectLockContext,
} from "./s3/object-lock.js";
export {
  S3_COMMON_CONFIG,
  S3_COMMON_CONFIG_KEYS,
  s3CommonSettings,
  signatureVersion,
  configureAwsS3,
  createS3Clients,
  parseS3CommonConfig,
  s3StoreSettings,
  type S3ClientOptions,
  type S3Clients,
  type EncryptionSettings,
  type S3CommonSettings,
  type S3CommonValues,
  type S3StoreSettings,
} from "./s3/config.js";
export { configUrl, endpointUrl, credentialProvider, checkCredentials, type CredentialSettings, type TlsSettings } from "./shared/config.js";
