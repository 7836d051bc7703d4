import { describe, expect, it } from "vitest";
import { parseDuration, parseTags } from "./config.js";
import { TAG_NAMES_TAG, decodeTags, encodeTags, matchesTagFilter } from "./tags.js";

describe("durations and tags in the configuration", () => {
  it("parses Go-style durations and bare seconds", () => {
    expect(parseDuration("2m")).toBe(120_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("1.5s")).toBe(1500);
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("45")).toBe(45_000);
    expect(parseDuration("2 minutes")).toBeUndefined();
    expect(parseDuration("m")).toBeUndefined();
  });

  it("parses k=v,k=v tags", () => {
    expect(parseTags("team=storage, env = prod,,note=a=b")).toEqual({ team: "storage", env: "prod", note: "a=b" });
    expect(parseTags("")).toEqual({});
    expect(() => parseTags("novalue")).toThrow(/not key=value/);
    expect(() => parseTags("=v")).toThrow(/not key=value/);
  });
});

describe("tag names on Azure", () => {
  it("rewrites forbidden characters, records the originals and restores them", () => {
    const stored = encodeTags({ "velero.io/backup": "b1", "a?b": "2", plain: "3" });
    expect(stored).toMatchObject({ "velero.io-backup": "b1", "a-b": "2", plain: "3" });
    expect(JSON.parse(stored[TAG_NAMES_TAG] ?? "")).toEqual(["a?b", "velero.io/backup"]);
    expect(decodeTags(stored)).toEqual({ "velero.io/backup": "b1", "a?b": "2", plain: "3" });
    expect(encodeTags({ plain: "x" })).toEqual({ plain: "x" });
  });

  it("splits long records over several reserved tags", () => {
    const tags = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`example.com/some-long-label-name-${String(i)}`, String(i)]));
    const stored = encodeTags(tags);
    expect(stored[`${TAG_NAMES_TAG}.1`]).toBeDefined();
    expect(decodeTags(stored)).toEqual(tags);
  });

  it("refuses collisions, long values and too many tags", () => {
    expect(() => encodeTags({ "a/b": "1", "a-b": "2" })).toThrow(/both become/);
    expect(() => encodeTags({ k: "x".repeat(257) })).toThrow(/256/);
    expect(() => encodeTags(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${String(i)}`, "v"])))).toThrow(/50/);
  });

  it("matches filters by original or rewritten name, including Velero's unrecorded form", () => {
    const ours = encodeTags({ "velero.io/backup": "b1" });
    expect(matchesTagFilter(ours, { "velero.io/backup": "b1" })).toBe(true);
    expect(matchesTagFilter(ours, { "velero.io/backup": "b2" })).toBe(false);
    const velero = { "velero.io-backup": "b1" };
    expect(matchesTagFilter(velero, { "velero.io/backup": "b1" })).toBe(true);
    expect(matchesTagFilter(velero, {})).toBe(true);
  });
});
