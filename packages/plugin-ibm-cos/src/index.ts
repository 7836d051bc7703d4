/**
 * `@stowage/plugin-ibm-cos`: an ObjectStore on IBM Cloud Object Storage, named `stowage.io/ibm-cos`.
 * It is the S3 ObjectStore of `@stowage/plugin-aws` with IBM's endpoint resolution and
 * authentication (HMAC keys, or IAM API keys exchanged for bearer tokens).
 *
 * @packageDocumentation
 */
export { IBM_COS_PLUGIN_NAME, createIbmCosObjectStore, ibmCosObjectStorePlugin } from "./plugins.js";
export { IBM_COS_CONFIG, IBM_COS_CONFIG_KEYS } from "./config.js";
