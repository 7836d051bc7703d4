/**
 * The kit's configuration is one zod schema: it checks `conformance.yaml` (paths in messages) and
 * gives the JSON Schema checked in beside the package, which must not drift from it.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
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
    expect(Object.keys(objectStore?.properties ?? {})).toEqual(["plugin", "config", "bucket", "missingBucket", "largeObjectMiB", "paginationKeys", "concurrency", "signedUrlExpiryGraceSeconds", "cancelGraceSeconds"]);
    expect(objectStore?.properties?.paginationKeys?.anyOf).toContainEqual({ type: "integer", minimum: 1001, maximum: 100_000 });
    expect(Object.keys(schema.properties.blockStore?.properties ?? {})).toContain("pvTemplates");
  });
  it("names the path of a wrong value", () => {
    expect(() => parseConfig("objectStore: { bucket: b, paginationKeys: 10 }")).toThrow(/objectStore.paginationKeys must be a whole number from 1001 to 100000, got 10/);
    expect(() => parseConfig("objectStore: { bucket: 3 }")).toThrow(/objectStore.bucket must be a string, got 3/);
    expect(() => parseConfig("objectStore: { plugin: p }")).toThrow(/objectStore.bucket is required/);
    expect(() => parseConfig("objectStore: { bucket: b, config: { a: [1] } }")).toThrow(/objectStore.config.a must be a string, number or boolean/);
    expect(() => parseConfig("blockStore: { volumeId: v, pvTemplates: { csi: {}, cs: {} } }")).toThrow(/blockStore.pvTemplates has unknown keys \[cs\]; valid keys are \[inTree, csi\]/);
    expect(() => parseConfig("objectStores: {}")).toThrow(/the configuration has unknown keys \[objectStores\]; valid keys are \[objectStore, blockStore, largeObjectMiB, startTimeoutSeconds\]/);
    expect(() => parseConfig("- a")).toThrow(ConfigError);
  });
});
