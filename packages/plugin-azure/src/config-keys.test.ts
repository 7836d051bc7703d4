/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares. Durations and sizes are named without a unit; their old,
 * unit-suffixed names (and Velero's) are still accepted, as aliases that read the same values.
 */
import { thrownBy } from "@stowage/sdk/testing";
import { describe, expect, it } from "vitest";
import { BLOB_CONFIG, DISKS_CONFIG, azureBlockStorePlugin, azureObjectStorePlugin } from "./index.js";
import { parseBlockSize } from "./blob/config.js";

describe("reported config keys", () => {
  it("azureObjectStorePlugin: the schema's keys", () => {
    expect(azureObjectStorePlugin.configKeys).toEqual(BLOB_CONFIG.keys);
    expect(azureObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","storageAccount","storageAccountURI","storageAccountKeyEnvVar","useAAD","activeDirectoryAuthorityURI","resourceGroup","subscriptionId","resourceManagerEndpoint","blockSize","uploadConcurrency","directTransfer","connectTimeout","requestTimeout","idleTimeout","maxRetries","caCert","credentialsFile"]);
    expect(Object.keys(BLOB_CONFIG.declarations)).toEqual(BLOB_CONFIG.keys.map((k) => k.name));
  });
  it("azureBlockStorePlugin: the schema's keys", () => {
    expect(azureBlockStorePlugin.configKeys).toEqual(DISKS_CONFIG.keys);
    expect(azureBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["subscriptionId","resourceGroup","apiTimeout","incremental","tags","credentialsFile","resourceManagerEndpoint","activeDirectoryAuthorityURI","caCert","pollInterval","connectTimeout","requestTimeout","idleTimeout"]);
    expect(Object.keys(DISKS_CONFIG.declarations)).toEqual(DISKS_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the Azure keys", () => {
  it("reads blockSize (Velero's blockSizeInBytes) in the one size syntax, still leniently, and apiTimeout as before", () => {
    expect(parseBlockSize("4194304")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("4MiB")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("4m")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("4Mi")).toBe(4 * 1024 * 1024);
    expect(parseBlockSize("four")).toBe(8 * 1024 * 1024);
    expect(DISKS_CONFIG.parse({ apiTimeout: "90" }).apiTimeout).toBe(90_000);
    expect(DISKS_CONFIG.parse({ apiTimeout: "1h30m" }).apiTimeout).toBe(5_400_000);
    for (const text of ["4194304", "4MiB", "4Mi"]) {
      expect(BLOB_CONFIG.parse({ storageAccount: "a", blockSize: text }).blockSize, text).toBe(text);
      expect(BLOB_CONFIG.parse({ storageAccount: "a", blockSizeInBytes: text }).blockSize, text).toBe(text);
    }
    const warnings: string[] = [];
    expect(parseBlockSize("four", { warn: (_fields: unknown, message: string) => warnings.push(message) } as never, "blockSizeInBytes")).toBe(8 * 1024 * 1024);
    expect(warnings).toEqual(["blockSizeInBytes is not a positive number of bytes; using the default"]);
  });
  it("reads the timeouts under their names and their old names alike", () => {
    for (const [key, alias] of [["connectTimeout", "connectTimeoutSeconds"], ["requestTimeout", "requestTimeoutSeconds"], ["idleTimeout", "idleTimeoutSeconds"]] as const) {
      for (const [text, ms] of [["30", 30_000], ["30s", 30_000], ["2m", 120_000]] as const) {
        expect(DISKS_CONFIG.parse({ [key]: text })[key]).toBe(ms);
        expect(DISKS_CONFIG.parse({ [alias]: text })[key]).toBe(ms);
        expect(BLOB_CONFIG.parse({ storageAccount: "a", [alias]: text })[key]).toBe(ms);
      }
      const error = thrownBy(() => BLOB_CONFIG.parse({ storageAccount: "a", [alias]: "later" }));
      expect([error.reason, error.metadata.key], alias).toEqual(["INVALID_CONFIG", alias]);
    }
  });
});
