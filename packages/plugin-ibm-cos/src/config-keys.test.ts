/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares. Durations and sizes are named without a unit; their old,
 * unit-suffixed names (and Velero's) are still accepted, as aliases that read the same values.
 */
import { describe, expect, it } from "vitest";
import { IBM_COS_CONFIG, ibmCosObjectStorePlugin } from "./index.js";

describe("reported config keys", () => {
  it("ibmCosObjectStorePlugin: the schema's keys", () => {
    expect(ibmCosObjectStorePlugin.configKeys).toEqual(IBM_COS_CONFIG.keys);
    expect(ibmCosObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","publicUrl","s3ForcePathStyle","kmsKeyId","serverSideEncryption","customerKeyEncryptionFile","insecureSkipTLSVerify","caCert","checksumAlgorithm","tagging","partSize","directTransfer","uploadConcurrency","connectTimeout","requestTimeout","idleTimeout","region","endpointType","s3Url","profile","credentialsFile","apiKey","iamEndpoint","serviceInstanceId","signatureVersion","enableSharedConfig"]);
    expect(Object.keys(IBM_COS_CONFIG.declarations)).toEqual(IBM_COS_CONFIG.keys.map((k) => k.name));
  });
  it("still accepts the timeouts' old names, as aliases", () => {
    expect(IBM_COS_CONFIG.parse({ requestTimeoutSeconds: "90" }).requestTimeout).toBe(90_000);
    expect(IBM_COS_CONFIG.parse({ requestTimeout: "90s" }).requestTimeout).toBe(90_000);
    expect(() => IBM_COS_CONFIG.parse({ idleTimeoutSeconds: "0" })).toThrow(/\] config key idleTimeoutSeconds must be at least 1/);
  });
});
