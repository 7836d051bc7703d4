/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares, under the names it has always reported.
 */
import { describe, expect, it } from "vitest";
import { IBM_COS_CONFIG, ibmCosObjectStorePlugin } from "./index.js";

describe("reported config keys", () => {
  it("ibmCosObjectStorePlugin: the schema's keys, unchanged", () => {
    expect(ibmCosObjectStorePlugin.configKeys).toEqual(IBM_COS_CONFIG.keys);
    expect(ibmCosObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","publicUrl","s3ForcePathStyle","kmsKeyId","serverSideEncryption","customerKeyEncryptionFile","insecureSkipTLSVerify","caCert","checksumAlgorithm","tagging","partSize","uploadConcurrency","connectTimeoutSeconds","requestTimeoutSeconds","idleTimeoutSeconds","region","endpointType","s3Url","profile","credentialsFile","apiKey","iamEndpoint","serviceInstanceId","signatureVersion","enableSharedConfig"]);
    expect(Object.keys(IBM_COS_CONFIG.declarations)).toEqual(IBM_COS_CONFIG.keys.map((k) => k.name));
  });
});
