/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares. Durations and sizes are named without a unit; their old,
 * unit-suffixed names (and Velero's) are still accepted, as aliases that read the same values.
 */
import { thrownBy } from "@stowage/sdk/testing";
import { describe, expect, it } from "vitest";
import { BLOCK_STORE_CONFIG, OBJECT_STORE_CONFIG, localBlockStorePlugin, localObjectStorePlugin } from "./index.js";

describe("reported config keys", () => {
  it("localObjectStorePlugin: the schema's keys", () => {
    expect(localObjectStorePlugin.configKeys).toEqual(OBJECT_STORE_CONFIG.keys);
    expect(localObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["root","bucket","prefix","caCert","credentialsFile","createBuckets","objectLock","fsync","dirMode","fileMode","staleTemp","tempSweep","signedUrlAddress","signedUrlBase","maxSignedUrlTtl","signingKeyFile","signingKey"]);
    expect(Object.keys(OBJECT_STORE_CONFIG.declarations)).toEqual(OBJECT_STORE_CONFIG.keys.map((k) => k.name));
  });
  it("localBlockStorePlugin: the schema's keys", () => {
    expect(localBlockStorePlugin.configKeys).toEqual(BLOCK_STORE_CONFIG.keys);
    expect(localBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["root","credentialsFile","copyDelay","dirMode","fileMode","staleTemp","tempSweep"]);
    expect(Object.keys(BLOCK_STORE_CONFIG.declarations)).toEqual(BLOCK_STORE_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the local plugin's keys", () => {
  it("reads durations where whole seconds or milliseconds were read, and still reads the old numbers", () => {
    for (const [key, alias] of [["copyDelay", "copyDelayMs"]] as const) {
      for (const [text, ms] of [["50", 50], ["50ms", 50], ["1s", 1000], ["1m30s", 90_000]] as const) {
        expect(BLOCK_STORE_CONFIG.parse({ root: "/r", [key]: text })[key], `${key}=${text}`).toBe(ms);
        expect(BLOCK_STORE_CONFIG.parse({ root: "/r", [alias]: text })[key], `${alias}=${text}`).toBe(ms);
      }
    }
    for (const [key, alias] of [["staleTemp", "staleTempSeconds"], ["tempSweep", "tempSweepSeconds"]] as const) {
      for (const [text, ms] of [["600", 600_000], ["10m", 600_000], ["1h30m", 5_400_000]] as const) {
        expect(BLOCK_STORE_CONFIG.parse({ root: "/r", [key]: text })[key], `${key}=${text}`).toBe(ms);
        expect(OBJECT_STORE_CONFIG.parse({ root: "/r", [alias]: text })[key], `${alias}=${text}`).toBe(ms);
      }
    }
    for (const [text, ms] of [["3600", 3_600_000], ["1h", 3_600_000], ["90m", 5_400_000]] as const) {
      expect(OBJECT_STORE_CONFIG.parse({ root: "/r", maxSignedUrlTtl: text }).maxSignedUrlTtl).toBe(ms);
      expect(OBJECT_STORE_CONFIG.parse({ root: "/r", maxSignedUrlTtlSeconds: text }).maxSignedUrlTtl).toBe(ms);
    }
    expect(() => BLOCK_STORE_CONFIG.parse({ root: "/r", staleTempSeconds: "1s" })).toThrow(/\] staleTempSeconds must be at least/);
    expect(() => BLOCK_STORE_CONFIG.parse({ root: "/r", staleTemp: "1s" })).toThrow(/\] staleTemp must be at least/);
    for (const [schema, name] of [[BLOCK_STORE_CONFIG, "copyDelayMs"], [BLOCK_STORE_CONFIG, "copyDelay"], [BLOCK_STORE_CONFIG, "tempSweepSeconds"], [OBJECT_STORE_CONFIG, "maxSignedUrlTtl"], [OBJECT_STORE_CONFIG, "maxSignedUrlTtlSeconds"]] as const) {
      const error = thrownBy(() => schema.parse({ root: "/r", [name]: "soon" }));
      expect([error.reason, error.metadata.key], name).toEqual(["INVALID_CONFIG", name]);
    }
  });
});
