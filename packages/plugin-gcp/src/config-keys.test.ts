/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares, under the names it has always reported.
 */
import { describe, expect, it } from "vitest";
import { GCS_CONFIG, PD_CONFIG, gcpBlockStorePlugin, gcpObjectStorePlugin } from "./index.js";
import { parseChunkSize } from "./gcs/config.js";

describe("reported config keys", () => {
  it("gcpObjectStorePlugin: the schema's keys, unchanged", () => {
    expect(gcpObjectStorePlugin.configKeys).toEqual(GCS_CONFIG.keys);
    expect(gcpObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","credentialsFile","kmsKeyName","serviceAccount","storeEndpoint","universeDomain","caCert","signingEndpoint","publicUrl","chunkSize","requestTimeoutSeconds","idleTimeoutSeconds"]);
    expect(Object.keys(GCS_CONFIG.declarations)).toEqual(GCS_CONFIG.keys.map((k) => k.name));
  });
  it("gcpBlockStorePlugin: the schema's keys, unchanged", () => {
    expect(gcpBlockStorePlugin.configKeys).toEqual(PD_CONFIG.keys);
    expect(gcpBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["project","volumeProject","snapshotLocation","snapshotType","credentialsFile","labels","computeEndpoint","operationTimeoutSeconds","requestTimeoutSeconds"]);
    expect(Object.keys(PD_CONFIG.declarations)).toEqual(PD_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the Cloud Storage and Persistent Disk keys", () => {
  it("reads chunkSize in the one size syntax and operationTimeoutSeconds as a duration or seconds", () => {
    expect(parseChunkSize("8MiB")).toBe(8 * 1024 * 1024);
    expect(parseChunkSize("8M")).toBe(8 * 1024 * 1024);
    expect(parseChunkSize("256k")).toBe(256 * 1024);
    expect(() => parseChunkSize("100KiB")).toThrow(/chunkSize must be a multiple of 256KiB/);
    expect(PD_CONFIG.parse({ operationTimeoutSeconds: "600" }).operationTimeoutSeconds).toBe(600_000);
    expect(PD_CONFIG.parse({ operationTimeoutSeconds: "10m" }).operationTimeoutSeconds).toBe(600_000);
  });
});
