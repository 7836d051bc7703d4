/**
 * `@stowage/plugin-aws`: Stowage's AWS plugins, both named `stowage.io/aws`.
 *
 * - {@link awsObjectStorePlugin} ({@link S3ObjectStore}): an ObjectStore on Amazon S3 and S3-compatible stores (MinIO, Ceph, IBM COS).
 * - {@link awsBlockStorePlugin} ({@link EbsBlockStore}): a BlockStore on Amazon EBS snapshots.
 *
 * The `stowage-plugin-aws` executable serves both (its path: `import.meta.resolve("@stowage/plugin-aws/main")`).
 * The S3 building blocks for other S3-compatible plugins are in `@stowage/plugin-aws/s3`
 * (`@stowage/plugin-ibm-cos` uses them).
 *
 * @packageDocumentation
 */
export { AWS_PLUGIN_NAME, awsBlockStorePlugin, awsObjectStorePlugin } from "./plugins.js";
export { S3ObjectStore, type S3ObjectStoreOptions } from "./s3/s3-object-store.js";
export { S3_CONFIG, S3_CONFIG_KEYS } from "./s3/config.js";
export { EbsBlockStore, type EbsBlockStoreOptions } from "./ebs/ebs-block-store.js";
export { EBS_CONFIG, EBS_CONFIG_KEYS } from "./ebs/config.js";
