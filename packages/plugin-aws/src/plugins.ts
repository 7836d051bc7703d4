/**
 * The plugin definitions served by the `stowage-plugin-aws` executable.
 *
 * @packageDocumentation
 */
import { defineBlockStore, defineObjectStore } from "@stowage/sdk/plugin";
import { EBS_CONFIG_KEYS } from "./ebs/config.js";
import { EbsBlockStore } from "./ebs/ebs-block-store.js";
import { S3_CONFIG_KEYS } from "./s3/config.js";
import { S3ObjectStore } from "./s3/s3-object-store.js";

/** Name of both AWS plugins (one ObjectStore, one BlockStore). */
export const AWS_PLUGIN_NAME = "stowage.io/aws";

/** The S3 ObjectStore plugin (Amazon S3 and S3-compatible stores). */
export const awsObjectStorePlugin = defineObjectStore({
  name: AWS_PLUGIN_NAME,
  description: "Stores backup objects in Amazon S3 or an S3-compatible store (MinIO, Ceph RGW, IBM COS, ...).",
  capabilities: ["RANGED_READS", "SIGNED_GET_URLS", "SIGNED_PUT_URLS", "OBJECT_METADATA", "DIRECT_TRANSFER", "OBJECT_LOCK"],
  configKeys: S3_CONFIG_KEYS,
  create: (context) => new S3ObjectStore({ logger: context.logger }),
});

/** The EBS BlockStore plugin. */
export const awsBlockStorePlugin = defineBlockStore({
  name: AWS_PLUGIN_NAME,
  description: "Snapshots Amazon EBS volumes and restores volumes from them, keeping type, IOPS and throughput.",
  capabilities: ["SNAPSHOT_PROGRESS", "LIST_SNAPSHOTS", "DELETE_VOLUME"],
  configKeys: EBS_CONFIG_KEYS,
  create: (context) => new EbsBlockStore({ logger: context.logger }),
});
