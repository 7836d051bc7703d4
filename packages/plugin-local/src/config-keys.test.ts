/**
 * The keys each plugin reports (its definition's `configKeys`, which GetPluginInfo sends) are the
 * ones its config schema declares, under the names it has always reported.
 */
import { describe, expect, it } from "vitest";
import { BLOCK_STORE_CONFIG, OBJECT_STORE_CONFIG, localBlockStorePlugin, localObjectStorePlugin } from "./index.js";

describe("reported config keys", () => {
  it("localObjectStorePlugin: the schema's keys, unchanged", () => {
    expect(localObjectStorePlugin.configKeys).toEqual(OBJECT_STORE_CONFIG.keys);
    expect(localObjectStorePlugin.configKeys?.map((k) => k.name)).toEqual(["root","bucket","prefix","caCert","credentialsFile","createBuckets","fsync","dirMode","fileMode","staleTempSeconds","tempSweepSeconds","signedUrlAddress","signedUrlBase","maxSignedUrlTtlSeconds","signingKeyFile","signingKey"]);
    expect(Object.keys(OBJECT_STORE_CONFIG.declarations)).toEqual(OBJECT_STORE_CONFIG.keys.map((k) => k.name));
  });
  it("localBlockStorePlugin: the schema's keys, unchanged", () => {
    expect(localBlockStorePlugin.configKeys).toEqual(BLOCK_STORE_CONFIG.keys);
    expect(localBlockStorePlugin.configKeys?.map((k) => k.name)).toEqual(["root","credentialsFile","copyDelayMs","dirMode","fileMode","staleTempSeconds","tempSweepSeconds"]);
    expect(Object.keys(BLOCK_STORE_CONFIG.declarations)).toEqual(BLOCK_STORE_CONFIG.keys.map((k) => k.name));
  });
});

describe("the shared syntaxes in the local plugin's keys", () => {
  it("reads durations where whole seconds or milliseconds were read, and still reads the old numbers", () => {
    expect(BLOCK_STORE_CONFIG.parse({ root: "/r", copyDelayMs: "50" }).copyDelayMs).toBe(50);
    expect(BLOCK_STORE_CONFIG.parse({ root: "/r", copyDelayMs: "50ms" }).copyDelayMs).toBe(50);
    expect(BLOCK_STORE_CONFIG.parse({ root: "/r", staleTempSeconds: "600" }).staleTempSeconds).toBe(600_000);
    expect(BLOCK_STORE_CONFIG.parse({ root: "/r", staleTempSeconds: "10m" }).staleTempSeconds).toBe(600_000);
    expect(OBJECT_STORE_CONFIG.parse({ root: "/r", maxSignedUrlTtlSeconds: "1h" }).maxSignedUrlTtlSeconds).toBe(3_600_000);
    expect(() => BLOCK_STORE_CONFIG.parse({ root: "/r", staleTempSeconds: "1s" })).toThrow(/staleTempSeconds must be at least/);
  });
});
