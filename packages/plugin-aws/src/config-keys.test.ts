/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares, under the names it has always reported.
 */
import { describe, expect, it } from "vitest";
import { EBS_CONFIG, S3_CONFIG, awsBlockStorePlugin, awsObjectStorePlugin } from "./index.js";

describe("reported config keys", () => {
  it("awsObjectStorePlugin: the schema's keys, unchanged", () => {
    expect(awsObjectStorePlugin.configKeys).toEqual(S3_CONFIG.keys);
    expect(awsObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","publicUrl","s3ForcePathStyle","kmsKeyId","serverSideEncryption","customerKeyEncryptionFile","insecureSkipTLSVerify","caCert","checksumAlgorithm","tagging","partSize","uploadConcurrency","connectTimeoutSeconds","requestTimeoutSeconds","idleTimeoutSeconds","region","s3Url","profile","credentialsFile","signatureVersion","enableSharedConfig"]);
    expect(Object.keys(S3_CONFIG.declarations)).toEqual(S3_CONFIG.keys.map((k) => k.name));
  });
  it("awsBlockStorePlugin: the schema's keys, unchanged", () => {
    expect(awsBlockStorePlugin.configKeys).toEqual(EBS_CONFIG.keys);
    expect(awsBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["region","profile","credentialsFile","ebsKmsKeyId","ec2Endpoint","enableSharedConfig","connectTimeoutSeconds","requestTimeoutSeconds","idleTimeoutSeconds"]);
    expect(Object.keys(EBS_CONFIG.declarations)).toEqual(EBS_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the S3 keys", () => {
  it("reads partSize in the one size syntax and the timeouts as durations or seconds", () => {
    expect(S3_CONFIG.parse({ partSize: "16MiB" }).partSize).toBe(16 * 1024 * 1024);
    expect(S3_CONFIG.parse({ partSize: "16M" }).partSize).toBe(16 * 1024 * 1024);
    expect(S3_CONFIG.parse({ partSize: "1Gi" }).partSize).toBe(1024 ** 3);
    expect(() => S3_CONFIG.parse({ partSize: "16MB" })).toThrow(/partSize must be between 5MiB and 5GiB/);
    expect(S3_CONFIG.parse({ requestTimeoutSeconds: "120" }).requestTimeoutSeconds).toBe(120_000);
    expect(S3_CONFIG.parse({ requestTimeoutSeconds: "2m" }).requestTimeoutSeconds).toBe(120_000);
  });
});
