/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares, under the names it has always reported.
 */
import { describe, expect, it } from "vitest";
import { BLOB_CONFIG, DISKS_CONFIG, azureBlockStorePlugin, azureObjectStorePlugin } from "./index.js";
import { parseBlockSize } from "./blob/config.js";

describe("reported config keys", () => {
  it("azureObjectStorePlugin: the schema's keys, unchanged", () => {
    expect(azureObjectStorePlugin.configKeys).toEqual(BLOB_CONFIG.keys);
    expect(azureObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","storageAccount","storageAccountURI","storageAccountKeyEnvVar","useAAD","activeDirectoryAuthorityURI","resourceGroup","subscriptionId","resourceManagerEndpoint","blockSizeInBytes","uploadConcurrency","connectTimeoutSeconds","requestTimeoutSeconds","idleTimeoutSeconds","maxRetries","caCert","credentialsFile"]);
    expect(Object.keys(BLOB_CONFIG.declarations)).toEqual(BLOB_CONFIG.keys.map((k) => k.name));
  });
  it("azureBlockStorePlugin: the schema's keys, unchanged", () => {
    expect(azureBlockStorePlugin.configKeys).toEqual(DISKS_CONFIG.keys);
    expect(azureBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["subscriptionId","resourceGroup","apiTimeout","incremental","tags","credentialsFile","resourceManagerEndpoint","activeDirectoryAuthorityURI","caCert","pollInterval","connectTimeoutSeconds","requestTimeoutSeconds","idleTimeoutSeconds"]);
    expect(Object.keys(DISKS_CONFIG.declarations)).toEqual(DISKS_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the Azure keys", () => {
  it("reads blockSizeInBytes in the one size syntax, still leniently, and apiTimeout as before", () => {
    expect(parseBlockSize("4194304")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("4MiB")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("4m")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("4Mi")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("four")).toBe(8 * 1024 * 1024);
    expect(DISKS_CONFIG.parse({ apiTimeout: "90" }).apiTimeout).toBe(90_000);
    expect(DISKS_CONFIG.parse({ apiTimeout: "1h30m" }).apiTimeout).toBe(5_400_000);
  });
});
