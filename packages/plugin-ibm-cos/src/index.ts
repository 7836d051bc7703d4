/**
 * `@stowage/plugin-ibm-cos`: an ObjectStore on IBM Cloud Object Storage, named `stowage.io/ibm-cos`.
 * It is the S3 ObjectStore of `@stowage/plugin-aws` with IBM's endpoint resolution and
 * authentication (HMAC keys, or IAM API keys exchanged for bearer tokens).
 *
 * @packageDocumentation
 */
export { IBM_COS_CONFIG, IBM_COS_CONFIG_KEYS, configureIbmCos } from "./config.js";
export { IBM_COS_DOMAIN, IBM_CROSS_REGION, IBM_ENDPOINT_TYPES, ibmCosEndpoint, type IbmEndpointType } from "./endpoints.js";
export { DEFAULT_IAM_ENDPOINT, IAM_APIKEY_GRANT_TYPE, IamTokenManager, type IamTokenManagerOptions } from "./iam.js";
export { IBM_COS_PLUGIN_NAME, createIbmCosObjectStore, ibmCosObjectStorePlugin } from "./plugins.js";
