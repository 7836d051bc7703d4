/**
 * The kit's configuration is one zod schema: it checks `conformance.yaml` (paths in messages) and
 * gives the JSON Schema checked in beside the package, which must not drift from it.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { resolveBlockStoreSettings, resolveObjectStoreSettings, resolveStartTimeoutMs } from "../src/config.js";
import { ConfigError, conformanceJsonSchema, parseConfig } from "../src/index.js";

describe("the kit's config schema", () => {
  it("is the JSON Schema checked in as conformance.schema.json (run `node scripts/config-docs.mjs` after changing it)", async () => {
    const file = JSON.parse(await readFile(new URL("../conformance.schema.json", import.meta.url), "utf8")) as unknown;
    expect(file).toEqual(conformanceJsonSchema());
  });
  it("describes every key, with its limits, and refuses unknown ones", () => {
    const schema = conformanceJsonSchema() as { additionalProperties: unknown; properties: Record<string, { properties?: Record<string, Record<string, unknown>>; additionalProperties?: unknown }> };
    expect(schema.additionalProperties).toBe(false);
    const objectStore = schema.properties.objectStore;
    expect(objectStore?.additionalProperties).toBe(false);
    expect(Object.keys(objectStore?.properties ?? {})).toEqual([
      "plugin",
      "config",
      "bucket",
      "missingBucket",
      "largeObjectSize",
      "largeObjectMiB",
      "paginationKeys",
      "concurrency",
      "signedUrlExpiryGrace",
      "signedUrlExpiryGraceSeconds",
      "cancelGrace",
      "cancelGraceSeconds",
      "lockBucket",
      "plainBucket",
      "lockRetention",
    ]);
    expect(objectStore?.properties?.lockRetention?.anyOf).toContainEqual({ anyOf: [{ type: "number", minimum: 1, maximum: 20 }, { type: "string", pattern: expect.any(String) as unknown }] });
    expect(objectStore?.properties?.signedUrlExpiryGraceSeconds).toMatchObject({ deprecated: true, description: "The old name of signedUrlExpiryGrace, accepted as an alias." });
    expect(objectStore?.properties?.cancelGrace?.anyOf).toContainEqual({ anyOf: [{ type: "number", minimum: 0.1, maximum: 600 }, { type: "string", pattern: expect.any(String) as unknown }] });
    expect(objectStore?.properties?.paginationKeys?.anyOf).toContainEqual({ type: "integer", minimum: 1001, maximum: 100_000 });
    expect(Object.keys(schema.properties.blockStore?.properties ?? {})).toContain("pvTemplates");
  });
  it("names the path of a wrong value", () => {
    expect(() => parseConfig("objectStore: { bucket: b, paginationKeys: 10 }")).toThrow(/objectStore.paginationKeys must be a whole number from 1001 to 100000, got 10/);
    expect(() => parseConfig("objectStore: { bucket: 3 }")).toThrow(/objectStore.bucket must be a string, got 3/);
    expect(() => parseConfig("objectStore: { plugin: p }")).toThrow(/objectStore.bucket is required/);
    expect(() => parseConfig("objectStore: { bucket: b, config: { a: [1] } }")).toThrow(/objectStore.config.a must be a string, number or boolean/);
    expect(() => parseConfig("blockStore: { volumeId: v, pvTemplates: { csi: {}, cs: {} } }")).toThrow(/blockStore.pvTemplates has unknown keys \[cs\]; valid keys are \[inTree, csi\]/);
    expect(() => parseConfig("objectStores: {}")).toThrow(/the configuration has unknown keys \[objectStores\]; valid keys are \[objectStore, blockStore, largeObjectSize, largeObjectMiB, startTimeout, startTimeoutSeconds\]/);
    expect(() => parseConfig("- a")).toThrow(ConfigError);
  });
  it("reads every duration in the one duration syntax, under its name or its old …Seconds name, a bare number being seconds", () => {
    const object = (yaml: string) => resolveObjectStoreSettings(parseConfig(`objectStore: { bucket: b, ${yaml} }`), { runId: "r" });
    const block = (yaml: string) => resolveBlockStoreSettings(parseConfig(`blockStore: { volumeId: v, ${yaml} }`), { runId: "r" });
    const cases = [
      ["signedUrlExpiryGrace", (y: string) => object(y).signedUrlExpiryGraceMs],
      ["cancelGrace", (y: string) => object(y).cancelGraceMs],
      ["snapshotReadyTimeout", (y: string) => block(y).snapshotReadyTimeoutMs],
      ["pollInterval", (y: string) => block(y).pollIntervalMs],
      ["startTimeout", (y: string) => resolveStartTimeoutMs(parseConfig(`{ ${y} }`))],
    ] as const;
    for (const [key, read] of cases) {
      for (const [text, ms] of [["2", 2000], ["'2'", 2000], ["2s", 2000], ["2000ms", 2000], ["1.5", 1500], ["1m", 60_000], ["1m30s", 90_000]] as const) {
        expect(read(`${key}: ${text}`), `${key}: ${text}`).toBe(ms);
        expect(read(`${key}Seconds: ${text}`), `${key}Seconds: ${text}`).toBe(ms);
      }
      expect(read(`${key}: 90s, ${key}Seconds: 90`), `${key} and its alias, set to the same value`).toBe(90_000);
    }
    expect(resolveStartTimeoutMs(parseConfig("startTimeout: 1h"))).toBe(3_600_000);
    expect(object("").signedUrlExpiryGraceMs).toBe(2000);
    expect(object("").cancelGraceMs).toBe(5000);
    expect(block("").snapshotReadyTimeoutMs).toBe(600_000);
    expect(block("").pollIntervalMs).toBe(1000);
    expect(resolveStartTimeoutMs(parseConfig("{}"))).toBe(30_000);
  });
  it("reads the object-protection settings: lockBucket and plainBucket optional, lockRetention a duration of 1s to 20s (default 3s)", () => {
    const object = (yaml: string) => resolveObjectStoreSettings(parseConfig(`objectStore: { bucket: b${yaml === "" ? "" : `, ${yaml}`} }`), { runId: "r" });
    expect(object("")).toMatchObject({ lockBucket: undefined, plainBucket: undefined, lockRetentionMs: 3000 });
    expect(object("lockBucket: l, plainBucket: p, lockRetention: 5s")).toMatchObject({ lockBucket: "l", plainBucket: "p", lockRetentionMs: 5000 });
    expect(object("lockRetention: 2")).toMatchObject({ lockRetentionMs: 2000 });
    expect(() => object("lockRetention: 500ms")).toThrow(/objectStore\.lockRetention must be a duration from 1s to 20s .*got "500ms"$/);
    expect(() => object("lockRetention: 1m")).toThrow(/objectStore\.lockRetention must be a duration from 1s to 20s .*got "1m"$/);
    expect(() => object("lockBucket: 3")).toThrow(/objectStore\.lockBucket must be a string, got 3/);
  });
  it("reads largeObjectSize in the one size syntax, under its name or largeObjectMiB, a bare number being MiB", () => {
    const bytes = (yaml: string) => resolveObjectStoreSettings(parseConfig(yaml), { runId: "r" }).largeObjectBytes;
    for (const [text, value] of [["12", 12 * 1024 * 1024], ["'12'", 12 * 1024 * 1024], ["12MiB", 12 * 1024 * 1024], ["0.5", 512 * 1024], ["512KiB", 512 * 1024], ["1GiB", 1024 ** 3], ["0", 0]] as const) {
      for (const key of ["largeObjectSize", "largeObjectMiB"]) {
        expect(bytes(`objectStore: { bucket: b, ${key}: ${text} }`), `objectStore.${key}: ${text}`).toBe(value);
        expect(bytes(`${key}: ${text}\nobjectStore: { bucket: b }`), `${key}: ${text}`).toBe(value);
      }
    }
    expect(bytes("largeObjectSize: 8MiB\nobjectStore: { bucket: b, largeObjectMiB: 4 }")).toBe(4 * 1024 * 1024);
    expect(bytes("objectStore: { bucket: b }")).toBe(64 * 1024 * 1024);
  });
  it("refuses a bad duration or size with the path of the key as written, and a key and its alias set to different values", () => {
    for (const [yaml, message] of [
      ["objectStore: { bucket: b, cancelGrace: soon }", /^the configuration: objectStore\.cancelGrace must be a duration from 100ms to 10m \(e\.g\. 90s, 2m, 250ms; a bare number is seconds\), got "soon"$/],
      ["objectStore: { bucket: b, cancelGraceSeconds: 0 }", /objectStore\.cancelGraceSeconds must be a duration from 100ms to 10m .*got 0$/],
      ["objectStore: { bucket: b, signedUrlExpiryGrace: 11m }", /objectStore\.signedUrlExpiryGrace must be a duration from 0s to 10m .*got "11m"$/],
      ["blockStore: { volumeId: v, pollInterval: [1] }", /blockStore\.pollInterval must be a duration from 10ms to 10m .*got \[1\]$/],
      ["blockStore: { volumeId: v, snapshotReadyTimeoutSeconds: 2d }", /blockStore\.snapshotReadyTimeoutSeconds must be a duration .*got "2d"$/],
      ["startTimeoutSeconds: 0", /^the configuration: startTimeoutSeconds must be a duration from 1s to 1h .*got 0$/],
      ["objectStore: { bucket: b, largeObjectSize: 12MB }", /objectStore\.largeObjectSize must be a size from 0 to 1024GiB \(e\.g\. 64MiB, 512KiB; a bare number is MiB\), got "12MB"$/],
      ["largeObjectMiB: -1", /^the configuration: largeObjectMiB must be a size .*got -1$/],
      ["objectStore: { bucket: b, cancelGrace: 3s, cancelGraceSeconds: 4 }", /objectStore\.cancelGrace and its alias objectStore\.cancelGraceSeconds are both set, to different values; keep only objectStore\.cancelGrace/],
      ["startTimeout: 10s\nstartTimeoutSeconds: 20", /startTimeout and its alias startTimeoutSeconds are both set/],
    ] as const) {
      expect(() => parseConfig(yaml), yaml).toThrow(ConfigError);
      expect(() => parseConfig(yaml), yaml).toThrow(message);
    }
  });
});
