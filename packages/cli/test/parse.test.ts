/**
 * The options that take a duration or a size read the one syntax of Stowage's configuration, a
 * bare number being in the option's historical unit (`--ttl`: seconds, `demo --size`: MiB).
 */
import { describe, expect, it } from "vitest";
import { parseDurationOption, parseSizeOption } from "../src/parse.js";

const MiB = 1024 * 1024;

function usage(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    return (error as { rawMessage: string }).rawMessage;
  }
  throw new Error("expected a usage error");
}

describe("duration options", () => {
  it("read a duration or a bare number of seconds, to the same value", () => {
    for (const [text, ms] of [["3600", 3_600_000], ["1h", 3_600_000], ["60m", 3_600_000], ["3600s", 3_600_000], ["1h30m", 5_400_000], ["90", 90_000], ["1.5", 1500], ["250ms", 250]] as const) {
      expect(parseDurationOption(text, "--ttl", 0), text).toBe(ms);
    }
  });
  it("refuse what is no duration, or out of range, naming the option", () => {
    expect(usage(() => parseDurationOption("soon", "--ttl", 1000))).toBe('--ttl expects a duration (e.g. 90s, 1h, 1h30m; a bare number is seconds), got "soon"');
    expect(usage(() => parseDurationOption("0", "--ttl", 1000))).toMatch(/^--ttl must be from 1s to .*, got "0"$/);
  });
});

describe("size options", () => {
  it("read a size or a bare number of MiB, to the same value", () => {
    for (const [text, bytes] of [["256", 256 * MiB], ["256MiB", 256 * MiB], ["256M", 256 * MiB], ["1GiB", 1024 * MiB], ["1024", 1024 * MiB], ["1.5", 1.5 * MiB]] as const) {
      expect(parseSizeOption(text, "--size", MiB, MiB), text).toBe(bytes);
    }
  });
  it("refuse what is no size, or out of range, naming the option", () => {
    expect(usage(() => parseSizeOption("zero", "--size", MiB, MiB))).toBe('--size expects a size (e.g. 256MiB, 1GiB; a bare number is MiB), got "zero"');
    expect(usage(() => parseSizeOption("512KiB", "--size", MiB, MiB, 1024 * MiB))).toBe('--size must be from 1MiB to 1GiB, got "512KiB"');
  });
});
