import { Code, Reason, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { MAX_PIECE_LENGTH, checkBucket, checkKey, objectPath, parseEntryName } from "./key-layout.js";

/** Rebuilds a key from its path, the way a listing does. */
function keyFromPath(names: readonly string[]): string {
  let key = "";
  for (const name of names) {
    const parsed = parseEntryName(name);
    if (parsed === undefined) throw new Error(`unparseable ${name}`);
    key += parsed.text + (parsed.kind === "directory" ? "/" : "");
  }
  return key;
}

function thrown(fn: () => void): StowageError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StowageError) return error;
    throw error;
  }
  throw new Error("expected an error");
}

describe("objectPath", () => {
  const awkward = [
    "plain.txt",
    "with space",
    "+%#?&=",
    "UPPER/lower",
    "\u00e9",
    "e\u0301",
    "a//b",
    "/leading",
    "trailing/",
    "/",
    ".",
    "..",
    "a/./b/../c",
    "~tmp",
    "x~o/y~c",
    "%",
    "%2E",
    "\0",
    "\u{1F600}",
    "x".repeat(1024),
    "\u00e9".repeat(512),
    `${"a".repeat(MAX_PIECE_LENGTH)}..`,
    `${"b".repeat(MAX_PIECE_LENGTH - 1)}.`,
  ];

  it.each(awkward)("maps %j to safe names that decode back to it", (key) => {
    const names = objectPath(key);
    for (const name of names) {
      expect(name).not.toBe("");
      expect(name).not.toMatch(/[/\\\0]/);
      expect([".", ".."]).not.toContain(name);
      expect(Buffer.byteLength(name)).toBeLessThanOrEqual(MAX_PIECE_LENGTH + 2);
      expect(name).toMatch(/^[a-z0-9._%A-F~-]+$/);
    }
    expect(names.at(-1)).toMatch(/~o$/);
    expect(keyFromPath(names)).toBe(key);
  });

  it("keeps keys distinct that differ only in case or normalisation", () => {
    expect(objectPath("A")).not.toEqual(objectPath("a"));
    expect(objectPath("\u00e9").join("/").toLowerCase()).not.toBe(objectPath("e\u0301").join("/").toLowerCase());
    expect(objectPath("A").join("/").toLowerCase()).not.toBe(objectPath("a").join("/").toLowerCase());
  });

  it("gives an object and a directory of the same text different names", () => {
    expect(objectPath("a")).toEqual(["a~o"]);
    expect(objectPath("a/b")).toEqual(["a", "b~o"]);
  });

  it("cuts over-long segments into continuation directories between characters", () => {
    const names = objectPath("\u{1F600}".repeat(100)); // 400 bytes, 1200 escaped characters
    expect(names.length).toBeGreaterThan(1);
    expect(names.slice(0, -1).every((name) => name.endsWith("~c"))).toBe(true);
    expect(keyFromPath(names)).toBe("\u{1F600}".repeat(100));
  });

  it("never escapes a piece into . or ..", () => {
    const names = objectPath(`${"a".repeat(MAX_PIECE_LENGTH)}../x`);
    expect(names).toEqual([`${"a".repeat(MAX_PIECE_LENGTH)}~c`, "%2E%2E", "x~o"]);
  });
});

describe("parseEntryName", () => {
  it("rejects names the layout never produces", () => {
    for (const name of ["~tmp", "Upper~o", "%zz~o", "%2e~o", "a~x", "", "~o", "%C3~o"]) {
      expect(parseEntryName(name), name).toBeUndefined();
    }
  });
});

describe("checkKey and checkBucket", () => {
  it("accepts 1 to 1024 bytes of well-formed UTF-8", () => {
    expect(() => checkKey("x")).not.toThrow();
    expect(() => checkKey("\u00e9".repeat(512))).not.toThrow();
    for (const bad of ["", "x".repeat(1025), "\u00e9".repeat(513), "\uD800", 42]) {
      const error = thrown(() => checkKey(bad));
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.reason).toBe(Reason.InvalidName);
    }
  });

  it("refuses bucket names that are not a single directory name", () => {
    for (const bad of ["", ".", "..", "a/b", "../b", "a\\b", "a\0b"]) {
      expect(thrown(() => checkBucket(bad)).reason, bad).toBe(Reason.InvalidName);
    }
    expect(() => checkBucket("my-Bucket.1")).not.toThrow();
  });
});
