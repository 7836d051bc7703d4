/**
 * Cancellation helpers: turn a fired {@link AbortSignal} into the right {@link StowageError}, and
 * iterate a byte source so that a stuck producer cannot outlive a cancelled call.
 * Shared by every plugin, so that no plugin races chunks against one long-lived abort promise
 * (which keeps every chunk reachable until the call ends).
 */
import { Code, Reason, StowageError } from "../errors.js";

/**
 * The error a call fails with when its signal fires: the reason itself when it already is a
 * StowageError, `DEADLINE_EXCEEDED` for a timeout, `CANCELLED` for anything else.
 */
export function abortError(signal: AbortSignal): StowageError {
  const reason: unknown = signal.reason;
  if (reason instanceof StowageError) return reason;
  if (reason instanceof Error && (reason.name === "AbortError" || reason.name === "TimeoutError")) {
    return StowageError.from(reason);
  }
  return new StowageError(Code.Canceled, `the call was cancelled${reason instanceof Error ? `: ${reason.message}` : ""}`, {
    reason: Reason.Cancelled,
    cause: reason,
  });
}

/** Throws {@link abortError} when `signal` has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortError(signal);
}

/**
 * Waits for `promise`, or fails with {@link abortError} as soon as `signal` fires, for library calls
 * that take no signal themselves (the call runs on unobserved; a later rejection is swallowed). The
 * abort listener lives only as long as this wait.
 */
export async function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  promise.catch(() => undefined);
  throwIfAborted(signal);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      reject(abortError(signal));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
  }
}

/**
 * Iterates `source` until it ends or `signal` fires. Unlike a plain `for await`, a pending
 * `next()` does not keep the caller waiting once the signal fires: the iteration fails at once
 * with {@link abortError} and the source is released without waiting for it: a stream is
 * destroyed, any other iterator's `return()` is called in the background.
 */
export async function* iterateUntilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T, void, undefined> {
  if (signal === undefined) {
    yield* source;
    return;
  }
  throwIfAborted(signal);
  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      throwIfAborted(signal);
      // A fresh abort promise per chunk: racing every chunk against one long-lived promise would
      // leave a reaction holding each chunk on it, and keep the whole body reachable. It listens
      // before `next()` runs, because a generator may fire the signal synchronously inside it.
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_resolve, reject) => {
        onAbort = () => {
          reject(abortError(signal));
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      const next = iterator.next();
      // When the abort wins the race, `next` may still reject later: that must not go unhandled.
      next.catch(() => undefined);
      let result: IteratorResult<T>;
      try {
        result = await Promise.race([next, aborted]);
      } finally {
        if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
      }
      if (result.done === true) {
        finished = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (!finished) release(source, iterator);
  }
}

/**
 * Releases a source that will not be read to its end. A stream is destroyed directly, because the
 * `return()` of its iterator waits for a pending read that may never complete.
 */
function release<T>(source: AsyncIterable<T>, iterator: AsyncIterator<T>): void {
  const destroy: unknown = (source as { destroy?: unknown }).destroy;
  if (typeof destroy === "function") {
    (destroy as () => void).call(source);
    return;
  }
  Promise.resolve()
    .then(() => iterator.return?.())
    .catch(() => undefined);
}
