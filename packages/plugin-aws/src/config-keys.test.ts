/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares. Durations and sizes are named without a unit; their old,
 * unit-suffixed names (and Velero's) are still accepted, as aliases that read the same values.
 */
import { thrownBy } from "@stowage/sdk/testing";
import { describe, expect, it } from "vitest";
import { EBS_CONFIG, S3_CONFIG, awsBlockStorePlugin, awsObjectStorePlugin } from "./index.js";

describe("reported config keys", () => {
  it("awsObjectStorePlugin: the schema's keys", () => {
    expect(awsObjectStorePlugin.configKeys).toEqual(S3_CONFIG.keys);
    expect(awsObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","publicUrl","s3ForcePathStyle","kmsKeyId","serverSideEncryption","customerKeyEncryptionFile","insecureSkipTLSVerify","caCert","checksumAlgorithm","tagging","partSize","directTransfer","uploadConcurrency","connectTimeout","requestTimeout","idleTimeout","region","s3Url","profile","credentialsFile","signatureVersion","enableSharedConfig"]);
    expect(Object.keys(S3_CONFIG.declarations)).toEqual(S3_CONFIG.keys.map((k) => k.name));
  });
  it("awsBlockStorePlugin: the schema's keys", () => {
    expect(awsBlockStorePlugin.configKeys).toEqual(EBS_CONFIG.keys);
    expect(awsBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["region","profile","credentialsFile","ebsKmsKeyId","ec2Endpoint","enableSharedConfig","connectTimeout","requestTimeout","idleTimeout"]);
    expect(Object.keys(EBS_CONFIG.declarations)).toEqual(EBS_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the S3 keys", () => {
  it("reads partSize in the one size syntax and the timeouts as durations or seconds", () => {
    expect(S3_CONFIG.parse({ partSize: "16MiB" }).partSize).toBe(16 * 1024 * 1024);
    expect(S3_CONFIG.parse({ partSize: "16M" }).partSize).toBe(16 * 1024 * 1024);
    expect(S3_CONFIG.parse({ partSize: "1Gi" }).partSize).toBe(1024 ** 3);
    expect(() => S3_CONFIG.parse({ partSize: "16MB" })).toThrow(/partSize must be between 5MiB and 5GiB/);
    for (const schema of [S3_CONFIG, EBS_CONFIG]) {
      for (const [key, alias] of [["connectTimeout", "connectTimeoutSeconds"], ["requestTimeout", "requestTimeoutSeconds"], ["idleTimeout", "idleTimeoutSeconds"]] as const) {
        for (const [text, ms] of [["120", 120_000], ["2m", 120_000], ["90s", 90_000], ["1h30m", 5_400_000]] as const) {
          expect(schema.parse({ region: "r", [key]: text })[key], `${key}=${text}`).toBe(ms);
          expect(schema.parse({ region: "r", [alias]: text })[key], `${alias}=${text}`).toBe(ms);
        }
        for (const name of [key, alias]) {
          const error = thrownBy(() => schema.parse({ region: "r", [name]: "soon" }));
          expect([error.reason, error.metadata.key], name).toEqual(["INVALID_CONFIG", name]);
        }
      }
    }
  });
});
