/**
 * Waiting: sleeps that honour a signal, and polling until a condition holds.
 *
 * @packageDocumentation
 */
import { setTimeout as delay } from "node:timers/promises";
import { CaseFailure } from "./expect.js";

/** Sleeps `ms`, or rejects when `signal` fires. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(Math.max(0, ms), undefined, signal === undefined ? undefined : { signal });
}

/**
 * Resolves with `fn`'s result, or rejects with an error that says `what` did not finish within
 * `ms` (the promise itself keeps running; callers abort it through their own signal).
 */
export async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new TimeoutFailure(`${what} did not finish within ${String(ms)} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A time limit was exceeded. */
export class TimeoutFailure extends CaseFailure {
  /** @param message - What did not finish in time. */
  constructor(message: string) {
    super(message);
    this.name = "TimeoutFailure";
  }
}
