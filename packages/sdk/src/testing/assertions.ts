/**
 * Helpers for tests of plugins and hosts: catching the error of a call that must fail, hashing a
 * body, and waiting for a condition without sleeping for a fixed time. They depend on no test
 * runner: a failed expectation throws an `Error` that any runner reports.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { StowageError } from "../errors.js";

function describeValue(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/**
 * Awaits `promise`, which must reject, and returns what it rejected with, whatever its type.
 *
 * @param promise - The call that must fail.
 * @returns The rejection reason.
 * @throws Error when the promise fulfils.
 */
export async function caught(promise: Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    return error;
  }
  throw new Error(`expected a rejection, but the promise fulfilled with ${describeValue(value)}`);
}

/**
 * Awaits `promise`, which must reject with a {@link StowageError}, and returns that error so that
 * a test can check its code, reason, message and metadata.
 *
 * ```ts
 * const error = await rejection(store.getObject({ bucket: "b", key: "missing" }));
 * expect(error).toMatchObject({ code: Code.NotFound, reason: Reason.ObjectNotFound });
 * ```
 *
 * @param promise - The call that must fail.
 * @returns The StowageError it rejected with.
 * @throws Error when the promise fulfils or rejects with anything but a StowageError (that error
 * is the thrown error's `cause`).
 */
export async function rejection(promise: Promise<unknown>): Promise<StowageError> {
  const error = await caught(promise);
  if (error instanceof StowageError) return error;
  throw new Error(`expected a StowageError, but the promise rejected with ${describeValue(error)}`, { cause: error });
}

/**
 * Calls `fn`, which must throw a {@link StowageError} synchronously, and returns that error.
 *
 * @param fn - The call that must fail.
 * @returns The StowageError it threw.
 * @throws Error when `fn` returns, or throws anything but a StowageError (that error is the
 * thrown error's `cause`).
 */
export function thrownBy(fn: () => unknown): StowageError {
  let value: unknown;
  try {
    value = fn();
  } catch (error) {
    if (error instanceof StowageError) return error;
    throw new Error(`expected a StowageError, but the call threw ${describeValue(error)}`, { cause: error });
  }
  throw new Error(`expected a StowageError, but the call returned ${describeValue(value)}`);
}

/**
 * The SHA-256 digest of `data` in lower-case hexadecimal (strings are hashed as UTF-8), as object
 * checksums are compared in tests.
 *
 * @param data - The bytes (or text) to hash.
 * @returns 64 hexadecimal digits.
 */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Options of {@link eventually}. */
export interface EventuallyOptions {
  /** The longest wait, in milliseconds (default 10 000): a guard against a hang, never a measurement. */
  readonly timeoutMs?: number | undefined;
  /** The pause between two probes, in milliseconds (default 20). */
  readonly intervalMs?: number | undefined;
  /** What is awaited, for the error message (default "the condition"). */
  readonly what?: string | undefined;
}

/**
 * Polls `probe` until it returns a value other than `undefined`, `null` or `false` and returns that
 * value: the way to wait for something another process or an event does, without betting on how
 * long it takes. The bound only keeps a broken test from hanging; make it generous.
 *
 * ```ts
 * await eventually(() => !alive(pid), { what: "the plugin process to exit" });
 * const pid = await eventually(async () => (await listPids()).at(0));
 * ```
 *
 * @param probe - Checks the condition; it may be async. An exception it throws ends the wait.
 * @param options - Bound, pause and description.
 * @returns The probe's first truthy-enough value.
 * @throws Error when the bound passes first.
 */
export async function eventually<T>(probe: () => T | undefined | null | false | Promise<T | undefined | null | false>, options: EventuallyOptions = {}): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const end = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (performance.now() > end) throw new Error(`${options.what ?? "the condition"} did not come true within ${String(timeoutMs)} ms`);
    await sleep(intervalMs);
  }
}
