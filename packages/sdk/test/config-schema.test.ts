/**
 * Unit tests of the config toolkit (`defineConfig` and its value builders): the one size syntax,
 * the one duration syntax, aliases, the key named in errors, defaults, the reported keys, the docs
 * table and the JSON Schema.
 */
import { describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import {
  backendTimeoutConfigKeys,
  backendTimeoutDeclarations,
  backendTimeouts,
  custom,
  defineConfig,
  duration,
  flag,
  formatDuration,
  formatSize,
  integer,
  invalidConfig,
  oneOf,
  parseBackendTimeouts,
  parseDuration,
  parseSize,
  readConfigValue,
  size,
  text,
  url,
} from "../src/plugin.js";

function failure(run: () => unknown): StowageError {
  try {
    run();
  } catch (error) {
    if (error instanceof StowageError) return error;
    throw error;
  }
  throw new Error("expected a StowageError");
}

const MiB = 1024 * 1024;

describe("the size syntax", () => {
  it("accepts every form the three old parsers (S3 partSize, Azure blockSizeInBytes, GCS chunkSize) accepted", () => {
    // S3: B|KiB|Ki|MiB|Mi|GiB|Gi; GCS: B|KiB|Ki|MiB|Mi; Azure (any case): B|KiB|K|MiB|M; spaces before the unit.
    for (const [text, bytes] of [
      ["8388608", 8 * MiB],
      ["100B", 100],
      ["256KiB", 256 * 1024],
      ["256Ki", 256 * 1024],
      ["256K", 256 * 1024],
      ["256k", 256 * 1024],
      ["256kib", 256 * 1024],
      ["8MiB", 8 * MiB],
      ["8Mi", 8 * MiB],
      ["8M", 8 * MiB],
      ["8m", 8 * MiB],
      ["8 MiB", 8 * MiB],
      ["8mib", 8 * MiB],
      ["1GiB", 1024 * MiB],
      ["1Gi", 1024 * MiB],
      [" 5GiB ", 5 * 1024 * MiB],
    ] as const) {
      expect(parseSize(text), text).toBe(bytes);
    }
  });
  it("reads a bare number in the key's historical unit when it was not bytes", () => {
    expect(parseSize("512", MiB)).toBe(512 * MiB);
    expect(parseSize("512MiB", MiB)).toBe(512 * MiB);
    expect(parseSize("0.5", MiB)).toBe(512 * 1024);
    expect(parseSize("8388608B", MiB)).toBe(8 * MiB);
    expect(parseSize("1.5")).toBeUndefined();
    expect(parseSize("1.5MiB", MiB)).toBeUndefined();
  });
  it("refuses decimal units, fractions, negatives and words", () => {
    for (const text of ["8MB", "8KB", "1.5MiB", "-1", "8 TiB", "MiB", "", "eight"]) expect(parseSize(text), text).toBeUndefined();
  });
  it("formats sizes back in the same syntax", () => {
    expect(formatSize(8 * MiB)).toBe("8MiB");
    expect(formatSize(256 * 1024)).toBe("256KiB");
    expect(formatSize(5 * 1024 * MiB)).toBe("5GiB");
    expect(formatSize(1000)).toBe("1000");
  });
});

describe("the duration syntax", () => {
  it("reads Go/Kubernetes durations", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("1.5h")).toBe(5_400_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("2 minutes")).toBeUndefined();
    expect(parseDuration("m")).toBeUndefined();
  });
  it("reads a bare number in the key's old unit", () => {
    expect(parseDuration("120")).toBe(120_000);
    expect(parseDuration("1.5")).toBe(1500);
    expect(parseDuration("60", "ms")).toBe(60);
    expect(parseDuration("1.5", "s", true)).toBeUndefined();
    expect(parseDuration("2", "s", true)).toBe(2000);
  });
  it("formats durations back in the same syntax", () => {
    expect(formatDuration(120_000)).toBe("2m");
    expect(formatDuration(5_400_000)).toBe("1h30m");
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(1500)).toBe("1.5s");
    expect(formatDuration(0)).toBe("0s");
  });
});

const EXAMPLE = defineConfig({
  root: { value: text(), required: true, description: "Root directory." },
  fsync: { value: flag(true), description: "Flush before answering." },
  parts: { value: integer({ default: 4, min: 1, max: 64 }), description: "Parts at once." },
  partSize: { value: size({ default: 8 * MiB, min: 5 * MiB, max: 5 * 1024 * MiB }), description: "Part size." },
  requestTimeout: { value: duration({ default: 120_000, min: 1000 }), aliases: ["requestTimeoutSeconds"], description: "Request timeout." },
  mode: { value: oneOf(["fast", "safe"], { ignoreCase: true }), description: "Mode." },
  endpoint: { value: url({ example: "https://s3.example.com" }), description: "Endpoint." },
  apiKey: { value: text(), secret: true, description: "API key." },
});

describe("defineConfig", () => {
  it("parses typed values and fills in defaults", () => {
    const values = EXAMPLE.parse({ root: " /data ", partSize: "16MiB", mode: "SAFE", endpoint: "http://minio:9000/" });
    expect(values).toEqual({ root: "/data", fsync: true, parts: 4, partSize: 16 * MiB, requestTimeout: 120_000, mode: "safe", endpoint: "http://minio:9000", apiKey: undefined });
  });
  it("accepts an alias under its canonical key, and refuses an alias and its key set to different values", () => {
    expect(EXAMPLE.parse({ root: "/r", requestTimeoutSeconds: "30" }).requestTimeout).toBe(30_000);
    expect(EXAMPLE.parse({ root: "/r", requestTimeoutSeconds: "30", requestTimeout: " 30 " }).requestTimeout).toBe(30_000);
    const error = failure(() => EXAMPLE.parse({ root: "/r", requestTimeoutSeconds: "30", requestTimeout: "1m" }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.reason).toBe(Reason.InvalidConfig);
    expect(error.metadata.key).toBe("requestTimeout");
    expect(error.message).toMatch(/requestTimeout and its alias requestTimeoutSeconds are both set/);
  });
  it("names the key at fault in INVALID_CONFIG errors that say what to do", () => {
    for (const [config, key, message] of [
      [{ root: "/r", partSize: "1MiB" }, "partSize", /partSize must be a size from 5MiB to 5GiB .*got "1MiB"/],
      [{ root: "/r", parts: "0" }, "parts", /parts must be 1 to 64, got 0/],
      [{ root: "/r", parts: "x" }, "parts", /config key parts must be a non-negative integer, got "x"/],
      [{ root: "/r", fsync: "yes" }, "fsync", /config key fsync must be true or false, got "yes"/],
      [{ root: "/r", requestTimeout: "soon" }, "requestTimeout", /requestTimeout "soon" is not a duration; use e.g. 90s, 2m or 1h30m/],
      // A value given under an alias is reported under the alias: the name the configuration used.
      [{ root: "/r", requestTimeoutSeconds: "0" }, "requestTimeoutSeconds", /requestTimeoutSeconds "0" must be from 1s to/],
      [{ root: "/r", requestTimeoutSeconds: "soon" }, "requestTimeoutSeconds", /requestTimeoutSeconds "soon" is not a duration/],
      [{ root: "/r", mode: "slow" }, "mode", /mode "slow" is not one of \[fast, safe\]/],
      [{ root: "/r", endpoint: "ftp://x" }, "endpoint", /endpoint "ftp:\/\/x" must use the http or https scheme/],
      [{ root: "/r", endpoint: "not a url" }, "endpoint", /is not a URL; use e.g. https:\/\/s3.example.com/],
    ] as const) {
      const error = failure(() => EXAMPLE.parse(config));
      expect(error.code, key).toBe(Code.InvalidArgument);
      expect(error.reason, key).toBe(Reason.InvalidConfig);
      expect(error.metadata.key, key).toBe(key);
      expect(error.message, key).toMatch(message);
    }
  });
  it("reports unknown and missing keys as validateConfig does, listing the valid keys, aliases included (they are accepted keys, clause 5.1.1)", () => {
    const error = failure(() => EXAMPLE.parse({ rot: "/r" }));
    expect(error.rawMessage).toBe(
      "config has invalid keys [rot]; config lacks required keys [root]; valid keys are [apiKey, endpoint, fsync, mode, partSize, parts, requestTimeout, requestTimeoutSeconds, root]",
    );
    expect(error.metadata.valid_keys).toBe("apiKey,endpoint,fsync,mode,partSize,parts,requestTimeout,requestTimeoutSeconds,root");
    expect(error.metadata.invalid_keys).toBe("rot");
    expect(error.metadata.missing_keys).toBe("root");
  });
  it("lets a custom value throw its own INVALID_CONFIG error", () => {
    const schema = defineConfig({
      tags: {
        value: custom({
          syntax: "k=v",
          parse: (value, key) => {
            if (value !== undefined && !value.includes("=")) throw invalidConfig(key, `${key} must be k=v`);
            return value;
          },
        }),
        description: "Tags.",
      },
    });
    expect(schema.parse({ tags: " a=b " }).tags).toBe("a=b");
    expect(failure(() => schema.parse({ tags: "ab" })).metadata.key).toBe("tags");
  });
  it("reports the keys as ConfigKeySpecs, in declaration order, without aliases", () => {
    expect(EXAMPLE.keys).toEqual([
      { name: "root", description: "Root directory.", required: true },
      { name: "fsync", description: "Flush before answering." },
      { name: "parts", description: "Parts at once." },
      { name: "partSize", description: "Part size." },
      { name: "requestTimeout", description: "Request timeout." },
      { name: "mode", description: "Mode." },
      { name: "endpoint", description: "Endpoint." },
      { name: "apiKey", description: "API key.", secret: true },
    ]);
  });
  it("takes a value from the canonical key first, else from the first alias with a value", () => {
    expect(EXAMPLE.parse({ root: "/r", requestTimeoutSeconds: "", requestTimeout: "1m" }).requestTimeout).toBe(60_000);
    expect(EXAMPLE.parse({ root: "/r", requestTimeout: "", requestTimeoutSeconds: "30" }).requestTimeout).toBe(30_000);
    expect(EXAMPLE.parse({ root: "/r", requestTimeoutSeconds: "" }).requestTimeout).toBe(120_000);
    const two = defineConfig({ wait: { value: duration({ default: 0 }), aliases: ["waitSeconds", "waitTime"], description: "Wait." } });
    expect(two.parse({ waitTime: "90s", waitSeconds: "90" }).wait).toBe(90_000);
    expect(EXAMPLE.parse({ root: "/r", requestTimeoutSeconds: "120", requestTimeout: "2m" }).requestTimeout).toBe(120_000);
    const error = failure(() => two.parse({ waitSeconds: "1", waitTime: "2s" }));
    expect([error.metadata.key, error.rawMessage]).toEqual(["wait", "wait's aliases waitSeconds and waitTime are both set, to different values; keep only wait"]);
  });
  it("reports a custom value's own error under the alias it was given with", () => {
    const schema = defineConfig({
      tags: {
        value: custom({
          syntax: "k=v",
          parse: (value, key) => {
            if (value !== undefined && !value.includes("=")) throw invalidConfig(key, `${key} must be k=v`);
            return value;
          },
        }),
        aliases: ["labels"],
        description: "Tags.",
      },
    });
    expect(schema.parse({ labels: "a=b" }).tags).toBe("a=b");
    const error = failure(() => schema.parse({ labels: "ab" }));
    expect([error.metadata.key, error.rawMessage]).toEqual(["labels", "labels must be k=v"]);
  });
  it("refuses aliases of a secret key (secrets are redacted by their reported names)", () => {
    expect(() => defineConfig({ token: { value: text(), secret: true, aliases: ["apiToken"], description: "t" } })).toThrow(/token is secret and cannot have aliases/);
  });
  it("refuses an alias that is already a key", () => {
    expect(() => defineConfig({ a: { value: text(), description: "a" }, b: { value: text(), aliases: ["a"], description: "b" } })).toThrow(/alias a of b/);
  });
  it("renders the docs table: key and aliases, syntax, default, description", () => {
    const table = EXAMPLE.docsTable().split("\n");
    expect(table[0]).toBe("| key | syntax | default | description |");
    expect(table).toContain("| `root` | string | (required) | Root directory. |");
    expect(table).toContain("| `partSize` | size | `8MiB` | Part size. |");
    expect(table).toContain("| `requestTimeout`, `requestTimeoutSeconds` (alias) | duration (bare number: seconds) | `2m` | Request timeout. |");
    expect(table).toContain("| `mode` | one of `fast`, `safe` |  | Mode. |");
  });
  it("gives a JSON Schema of the map: string values, defaults, aliases, required keys, nothing else", () => {
    const schema = EXAMPLE.jsonSchema() as { properties: Record<string, Record<string, unknown>>; required: string[]; additionalProperties: unknown; type: string };
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["root"]);
    expect(schema.properties.partSize).toMatchObject({ type: "string", description: "Part size.", default: "8MiB" });
    expect(schema.properties.requestTimeoutSeconds).toMatchObject({ type: "string", description: "Alias of requestTimeout.", deprecated: true });
    expect(schema.properties.apiKey).toMatchObject({ writeOnly: true });
  });
});

describe("the backend timeout keys", () => {
  it("are named without a unit; the old …Seconds names are aliases that read the same values", () => {
    const schema = defineConfig(backendTimeoutDeclarations());
    expect(schema.keys.map((k) => k.name)).toEqual(["connectTimeout", "requestTimeout", "idleTimeout"]);
    for (const [key, alias] of [["connectTimeout", "connectTimeoutSeconds"], ["requestTimeout", "requestTimeoutSeconds"], ["idleTimeout", "idleTimeoutSeconds"]] as const) {
      for (const [text, ms] of [["90", 90_000], ["90s", 90_000], ["2m", 120_000], ["1h30m", 5_400_000], ["1500ms", 1500]] as const) {
        expect(schema.parse({ [key]: text })[key], `${key}=${text}`).toBe(ms);
        expect(schema.parse({ [alias]: text })[key], `${alias}=${text}`).toBe(ms);
      }
      for (const [name, text] of [[key, "soon"], [alias, "soon"], [key, "500ms"], [alias, "0"], [alias, "1.5"]] as const) {
        const error = failure(() => schema.parse({ [name]: text }));
        expect([error.code, error.reason, error.metadata.key], `${name}=${text}`).toEqual([Code.InvalidArgument, Reason.InvalidConfig, name]);
        expect(error.rawMessage, `${name}=${text}`).toMatch(new RegExp(`^config key ${name} must be`));
      }
    }
    expect(schema.docsTable()).toContain("| `requestTimeout`, `requestTimeoutSeconds` (alias) | duration (bare number: seconds) | `2m` |");
  });
  it("keep the old names when a plugin asks for them, and offer both names to validateConfig", () => {
    expect(Object.keys(backendTimeoutDeclarations(["requestTimeoutSeconds"]))).toEqual(["requestTimeoutSeconds"]);
    expect(defineConfig(backendTimeoutDeclarations(["requestTimeoutSeconds"])).parse({ requestTimeoutSeconds: "2m" })).toEqual({ requestTimeoutSeconds: 120_000 });
    expect(backendTimeoutConfigKeys().map((k) => k.name)).toEqual(["connectTimeout", "connectTimeoutSeconds", "requestTimeout", "requestTimeoutSeconds", "idleTimeout", "idleTimeoutSeconds"]);
    expect(parseBackendTimeouts({ requestTimeout: "2m", idleTimeoutSeconds: "5" })).toEqual({ connectTimeoutMs: 10_000, requestTimeoutMs: 120_000, idleTimeoutMs: 5000 });
    expect(backendTimeouts({ requestTimeoutSeconds: 3000 }).requestTimeoutMs).toBe(3000);
  });
  it("take a duration or whole seconds, as before, and keep their message for 0", () => {
    const schema = defineConfig(backendTimeoutDeclarations());
    expect(backendTimeouts(schema.parse({ requestTimeoutSeconds: "2m", idleTimeoutSeconds: "45", connectTimeoutSeconds: "1500ms" }))).toEqual({
      connectTimeoutMs: 1500,
      requestTimeoutMs: 120_000,
      idleTimeoutMs: 45_000,
    });
    expect(parseBackendTimeouts({})).toEqual({ connectTimeoutMs: 10_000, requestTimeoutMs: 120_000, idleTimeoutMs: 60_000 });
    expect(failure(() => parseBackendTimeouts({ requestTimeoutSeconds: "0" })).rawMessage).toBe("config key requestTimeoutSeconds must be at least 1 (seconds), got 0");
    expect(failure(() => parseBackendTimeouts({ idleTimeoutSeconds: "1.5" })).metadata.key).toBe("idleTimeoutSeconds");
  });
  it("reads a size whose bare number is in MiB, and says so in the docs", () => {
    const value = size({ default: 1024 * MiB, bareUnit: MiB });
    expect(readConfigValue({ s: "512" }, "s", value)).toBe(512 * MiB);
    expect(readConfigValue({ s: "512MiB" }, "s", value)).toBe(512 * MiB);
    expect(value.syntax).toBe("size (bare number: MiB)");
    expect(failure(() => readConfigValue({ s: "lots" }, "s", value)).rawMessage).toBe('s must be a size (MiB, or with a KiB/MiB/GiB suffix), got "lots"');
  });
  it("reads one key outside a schema with readConfigValue", () => {
    expect(readConfigValue({ s: "16Mi" }, "s", size({ default: 0 }))).toBe(16 * MiB);
    expect(failure(() => readConfigValue({ s: "16MB" }, "s", size({ default: 0 }))).metadata.key).toBe("s");
  });
});
