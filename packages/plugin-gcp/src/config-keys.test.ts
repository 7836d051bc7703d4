/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares. Durations and sizes are named without a unit; their old,
 * unit-suffixed names (and Velero's) are still accepted, as aliases that read the same values.
 */
import { thrownBy } from "@stowage/sdk/testing";
import { describe, expect, it } from "vitest";
import { GCS_CONFIG, PD_CONFIG, gcpBlockStorePlugin, gcpObjectStorePlugin } from "./index.js";
import { parseChunkSize } from "./gcs/config.js";

describe("reported config keys", () => {
  it("gcpObjectStorePlugin: the schema's keys", () => {
    expect(gcpObjectStorePlugin.configKeys).toEqual(GCS_CONFIG.keys);
    expect(gcpObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["bucket","prefix","credentialsFile","kmsKeyName","serviceAccount","storeEndpoint","universeDomain","caCert","signingEndpoint","publicUrl","chunkSize","directTransfer","requestTimeout","idleTimeout"]);
    expect(Object.keys(GCS_CONFIG.declarations)).toEqual(GCS_CONFIG.keys.map((k) => k.name));
  });
  it("gcpBlockStorePlugin: the schema's keys", () => {
    expect(gcpBlockStorePlugin.configKeys).toEqual(PD_CONFIG.keys);
    expect(gcpBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["project","volumeProject","snapshotLocation","snapshotType","credentialsFile","labels","computeEndpoint","operationTimeout","requestTimeout"]);
    expect(Object.keys(PD_CONFIG.declarations)).toEqual(PD_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the Cloud Storage and Persistent Disk keys", () => {
  it("reads chunkSize in the one size syntax and operationTimeout as a duration or seconds, under its old name too", () => {
    expect(parseChunkSize("8MiB")).toBe(8 * 1024 * 1024);
    expect(parseChunkSize("8M")).toBe(8 * 1024 * 1024);
    expect(parseChunkSize("256k")).toBe(256 * 1024);
    expect(() => parseChunkSize("100KiB")).toThrow(/chunkSize must be a multiple of 256KiB/);
    for (const [text, ms] of [["600", 600_000], ["10m", 600_000], ["1h30m", 5_400_000], ["90s", 90_000]] as const) {
      expect(PD_CONFIG.parse({ operationTimeout: text }).operationTimeout, text).toBe(ms);
      expect(PD_CONFIG.parse({ operationTimeoutSeconds: text }).operationTimeout, text).toBe(ms);
    }
    for (const [key, alias] of [["operationTimeout", "operationTimeoutSeconds"], ["requestTimeout", "requestTimeoutSeconds"]] as const) {
      expect(PD_CONFIG.parse({ [alias]: "2m" })[key]).toBe(120_000);
      for (const name of [key, alias]) {
        const error = thrownBy(() => PD_CONFIG.parse({ [name]: "0" }));
        expect([error.reason, error.metadata.key], name).toEqual(["INVALID_CONFIG", name]);
        expect(thrownBy(() => PD_CONFIG.parse({ [name]: "1.5" })).rawMessage, name).toContain(name);
      }
    }
    expect(GCS_CONFIG.parse({ idleTimeoutSeconds: "45" }).idleTimeout).toBe(45_000);
    expect(GCS_CONFIG.parse({ idleTimeout: "45s" }).idleTimeout).toBe(45_000);
    expect(() => GCS_CONFIG.parse({ connectTimeout: "10s" })).toThrow(/invalid keys \[connectTimeout\]/);
  });
});
