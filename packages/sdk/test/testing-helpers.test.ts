/** The helpers `@stowage/sdk/testing` gives tests: they must fail loudly when the expected failure does not come. */
import { describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import { caught, eventually, rejection, sha256Hex, thrownBy } from "../src/testing.js";

const notFound = new StowageError(Code.NotFound, "no such object", { reason: Reason.ObjectNotFound });

describe("rejection, caught and thrownBy", () => {
  it("return the error a call failed with", async () => {
    expect(await rejection(Promise.reject(notFound))).toBe(notFound);
    const other = new TypeError("boom");
    expect(await caught(Promise.reject(other))).toBe(other);
    expect(
      thrownBy(() => {
        throw notFound;
      }),
    ).toBe(notFound);
  });

  it("throw when the call succeeds", async () => {
    await expect(rejection(Promise.resolve({ key: "k" }))).rejects.toThrow('expected a rejection, but the promise fulfilled with {"key":"k"}');
    await expect(caught(Promise.resolve(undefined))).rejects.toThrow("expected a rejection");
    expect(() => thrownBy(() => 42)).toThrow("expected a StowageError, but the call returned 42");
  });

  it("throw, keeping the cause, when the call fails with something other than a StowageError", async () => {
    const plain = new Error("plain");
    const error = await caught(rejection(Promise.reject(plain)));
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toBe("expected a StowageError, but the promise rejected with Error: plain");
    expect((error as Error).cause).toBe(plain);
    expect(() =>
      thrownBy(() => {
        throw plain;
      }),
    ).toThrow("expected a StowageError, but the call threw Error: plain");
  });
});

describe("sha256Hex", () => {
  it("hashes bytes and UTF-8 text", () => {
    expect(sha256Hex(new Uint8Array())).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(sha256Hex(Buffer.from("abc"))).toBe(sha256Hex("abc"));
  });
});

describe("eventually", () => {
  it("polls until the probe gives a value, and returns it", async () => {
    let calls = 0;
    const value = await eventually(() => (++calls >= 3 ? `after ${String(calls)}` : undefined), { intervalMs: 1 });
    expect(value).toBe("after 3");
    expect(await eventually(async () => Promise.resolve(true))).toBe(true);
    expect(await eventually(() => 0)).toBe(0);
  });

  it("gives up at its bound with what it waited for", async () => {
    await expect(eventually(() => false, { timeoutMs: 30, intervalMs: 5, what: "the plugin to exit" })).rejects.toThrow("the plugin to exit did not come true within 30 ms");
  });

  it("ends at once when the probe throws", async () => {
    let calls = 0;
    await expect(
      eventually(() => {
        calls++;
        throw new Error("probe broke");
      }),
    ).rejects.toThrow("probe broke");
    expect(calls).toBe(1);
  });
});
