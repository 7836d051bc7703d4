import { describe, expect, it } from "vitest";
import { Reason, StowageError } from "../src/errors.js";
import {
  contentRangeTotal,
  decodeHeaderValue,
  decodePageToken,
  encodeHeaderValue,
  encodePageToken,
  iterateUntilAborted,
  parseRetryAfter,
  retryAfterMetadata,
  untilAborted,
} from "../src/plugin.js";

describe("page tokens", () => {
  it("round-trip the store's position for the same listing", () => {
    const token = encodePageToken("marker/é", "backups/", "/");
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken(token, "backups/", "/")).toBe("marker/é");
  });

  it.each([
    ["another prefix", () => decodePageToken(encodePageToken("m", "a/", "/"), "b/", "/")],
    ["another delimiter", () => decodePageToken(encodePageToken("m", "a/", "/"), "a/", "")],
    ["fewer scope parts", () => decodePageToken(encodePageToken("m", "a/", "/"), "a/")],
    ["garbage", () => decodePageToken("%%%not-a-token", "a/", "/")],
    ["an empty position", () => decodePageToken(encodePageToken("", "a/", "/"), "a/", "/")],
  ])("refuses a token from %s with INVALID_PAGE_TOKEN", (_name, decode) => {
    let caught: unknown;
    try {
      decode();
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StowageError);
    expect((caught as StowageError).reason).toBe(Reason.InvalidPageToken);
  });
});

describe("header values", () => {
  it.each(["plain ascii", "", "naïve ✓", " padded ", "=?looks-encoded?=", "line\nbreak"])("round-trips %j through a header-safe form", (value) => {
    const encoded = encodeHeaderValue(value);
    expect(encoded).toMatch(/^[\x20-\x7e]*$/);
    expect(encoded.trim()).toBe(encoded);
    expect(decodeHeaderValue(encoded)).toBe(value);
  });

  it("keeps printable ASCII as it is and decodes what S3 returns", () => {
    expect(encodeHeaderValue("v1")).toBe("v1");
    expect(decodeHeaderValue("=?utf-8?b?w6k=?=")).toBe("é");
  });

  it("reads the complete size from Content-Range", () => {
    expect(contentRangeTotal("bytes 0-9/100")).toBe(100);
    expect(contentRangeTotal("bytes 0-9/*")).toBeUndefined();
    expect(contentRangeTotal(undefined)).toBeUndefined();
  });
});

describe("cancellation helpers", () => {
  it("iterateUntilAborted ends a body that fires the signal inside next() and then never yields", async () => {
    const controller = new AbortController();
    async function* body(): AsyncGenerator<number> {
      yield 1;
      controller.abort();
      await new Promise(() => undefined);
    }
    const seen: number[] = [];
    let caught: unknown;
    try {
      for await (const n of iterateUntilAborted(body(), controller.signal)) seen.push(n);
    } catch (error) {
      caught = error;
    }
    expect(seen).toEqual([1]);
    expect(caught).toBeInstanceOf(StowageError);
    expect((caught as StowageError).reason).toBe(Reason.Cancelled);
  });

  it("untilAborted returns the value, or fails at once when the signal fires", async () => {
    expect(await untilAborted(Promise.resolve(7), new AbortController().signal)).toBe(7);
    const controller = new AbortController();
    const pending = untilAborted(new Promise<never>(() => undefined), controller.signal);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ reason: Reason.Cancelled });
  });
});

describe("Retry-After for hosts (contract 4.6.3)", () => {
  it("reads delta-seconds and HTTP dates, from Headers, records and arrays, and ignores what it cannot read", () => {
    const now = Date.parse("2026-12-03T00:00:00Z");
    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("Thu, 03 Dec 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 02 Dec 2026 23:00:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("99999999", now)).toBe(3_600_000);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(retryAfterMetadata(new Headers({ "Retry-After": "2" }))).toEqual({ retry_after_ms: "2000" });
    expect(retryAfterMetadata({ "retry-after": "1" })).toEqual({ retry_after_ms: "1000" });
    expect(retryAfterMetadata({ "Retry-After": ["3"] })).toEqual({ retry_after_ms: "3000" });
    expect(retryAfterMetadata(undefined)).toEqual({});
    expect(retryAfterMetadata({ "content-type": "x" })).toEqual({});
  });
});
