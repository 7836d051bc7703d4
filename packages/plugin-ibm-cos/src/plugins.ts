/**
 * The plugin definition served by the `stowage-plugin-ibm-cos` executable.
 *
 * @packageDocumentation
 */
import { S3ObjectStore } from "@stowage/plugin-aws/s3";
import type { Logger } from "@stowage/sdk";
import { defineObjectStore } from "@stowage/sdk/plugin";
import { IBM_COS_CONFIG_KEYS, configureIbmCos } from "./config.js";

/** Name of the IBM COS plugin. */
export const IBM_COS_PLUGIN_NAME = "stowage.io/ibm-cos";

/** The IBM COS ObjectStore plugin. */
export const ibmCosObjectStorePlugin = defineObjectStore({
  name: IBM_COS_PLUGIN_NAME,
  description: "Stores backup objects in IBM Cloud Object Storage, with HMAC keys or an IAM API key.",
  capabilities: ["RANGED_READS", "SIGNED_GET_URLS", "SIGNED_PUT_URLS", "OBJECT_METADATA", "DIRECT_TRANSFER", "OBJECT_LOCK"],
  configKeys: IBM_COS_CONFIG_KEYS,
  create: (context) => createIbmCosObjectStore(context.logger),
});

/** An IBM COS ObjectStore: the S3 ObjectStore of `@stowage/plugin-aws` with IBM's configuration. */
export function createIbmCosObjectStore(logger?: Logger): S3ObjectStore {
  return new S3ObjectStore({ logger, configKeys: IBM_COS_CONFIG_KEYS, configure: (config, signal) => configureIbmCos(config, signal) });
}
