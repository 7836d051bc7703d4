/**
 * Reads a byte stream as an async iterable of the chunks it emits, without the copying that a
 * byte-mode Readable's own async iterator does (it concatenates its buffer on every read). Flow
 * control: the stream is paused while more than `highWaterMark` bytes wait for the consumer.
 */
import type { Readable } from "node:stream";
import { Code, StowageError } from "../errors.js";

/** Iterates the chunks of `stream` with bounded buffering; errors and premature closes throw. */
export function streamChunks(stream: Readable, highWaterMark = 1024 * 1024): AsyncIterable<Buffer> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<Buffer> {
      const queue: Buffer[] = [];
      let queued = 0;
      // A stream that already ended (for example an empty body whose end was emitted before
      // anyone iterated) emits nothing more.
      let ended = stream.readableEnded;
      let failure: Error | undefined;
      let wake: (() => void) | undefined;
      const notify = (): void => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const onData = (chunk: Buffer): void => {
        queue.push(chunk);
        queued += chunk.length;
        if (queued > highWaterMark) stream.pause();
        notify();
      };
      const onEnd = (): void => {
        ended = true;
        notify();
      };
      const onError = (error: Error): void => {
        failure = error;
        notify();
      };
      const onClose = (): void => {
        if (!ended && failure === undefined) failure = Object.assign(new Error("the stream closed before its end"), { code: "ERR_STREAM_PREMATURE_CLOSE" });
        notify();
      };
      const cleanup = (): void => {
        stream.off("data", onData);
        stream.off("end", onEnd);
        stream.off("error", onError);
        stream.off("close", onClose);
      };
      stream.on("data", onData);
      stream.on("end", onEnd);
      stream.on("error", onError);
      stream.on("close", onClose);
      stream.resume();
      return {
        async next(): Promise<IteratorResult<Buffer>> {
          for (;;) {
            const chunk = queue.shift();
            if (chunk !== undefined) {
              queued -= chunk.length;
              if (queued <= highWaterMark && stream.isPaused()) stream.resume();
              return { done: false, value: chunk };
            }
            if (failure !== undefined) {
              cleanup();
              throw failure;
            }
            if (ended) {
              cleanup();
              return { done: true, value: undefined };
            }
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        },
        async return(): Promise<IteratorResult<Buffer>> {
          cleanup();
          stream.destroy();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * The chunks of a body: byte-mode Node Readables are read without concatenation, other iterables
 * as they are, each chunk checked to be bytes (a chunk that is not fails with INVALID_ARGUMENT).
 */
export function chunksOf(source: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  return isReadable(source) ? streamChunks(source) : bytesOnly(source);
}

async function* bytesOnly(source: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (!(chunk instanceof Uint8Array)) {
      throw new StowageError(Code.InvalidArgument, `the body yielded ${typeof chunk === "string" ? "a string" : chunk === null ? "null" : `a ${typeof chunk}`}; a body yields Uint8Array (or Buffer) chunks`);
    }
    yield chunk;
  }
}

function isReadable(value: unknown): value is Readable {
  return typeof value === "object" && value !== null && typeof (value as Partial<Readable>).pipe === "function" && typeof (value as Partial<Readable>).on === "function" && (value as Partial<Readable>).readableObjectMode === false;
}

/** Wraps a wait on the receiving side of a transfer (the host's idle timeout uses it). */
export type WaitWrapper = <T>(wait: Promise<T>) => Promise<T>;

/**
 * The items of `source` until `signal` fires: a wait on a stalled source then ends at once with
 * the signal's reason, and the source is told to stop (a Readable is destroyed) without waiting
 * for it. A caller's deadline or cancellation thus never waits on a body that sends nothing.
 */
export async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    for (;;) {
      // A fresh abort promise per item: racing every item against one long-lived promise would
      // leave on it a reaction holding each item, and keep the whole body reachable until the end.
      // It listens before `next()` runs, because a source may fire the signal inside it.
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_resolve, reject) => {
        if (signal.aborted) {
          reject(signal.reason as Error);
          return;
        }
        onAbort = () => {
          reject(signal.reason as Error);
        };
        signal.addEventListener("abort", onAbort, { once: true });
      });
      aborted.catch(() => undefined);
      let next: IteratorResult<T>;
      try {
        next = await Promise.race([iterator.next(), aborted]);
      } finally {
        if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
      }
      if (next.done === true) {
        done = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!done) void Promise.resolve(iterator.return?.()).catch(() => undefined);
  }
}

/** The connection failed or closed under a transfer (as opposed to the body source failing). */
export class ConnectionBrokenError extends Error {
  override readonly name = "ConnectionBrokenError";
}

function broken(cause: Error): ConnectionBrokenError {
  return new ConnectionBrokenError(cause.message, { cause });
}

/**
 * Writes every chunk of `source` to `target` with backpressure, then ends it and waits until the
 * data is handed to the kernel. Returns the number of bytes written. Rejects when `signal` fires
 * or the target fails. `during` wraps every wait on the target (for room to write, for the end),
 * not the waits on the source (wrap the source in {@link untilAborted} for those).
 */

export async function pump(
  source: AsyncIterable<Uint8Array>,
  target: NodeJS.WritableStream & { destroyed: boolean; once(event: string, listener: (...args: unknown[]) => void): unknown; off(event: string, listener: (...args: unknown[]) => void): unknown },
  signal?: AbortSignal,
  during: WaitWrapper = (wait) => wait,
): Promise<number> {
  let sent = 0;
  let failure: Error | undefined;
  const onError = (error: unknown): void => {
    failure = error instanceof Error ? error : new Error(String(error));
  };
  // The error listener sets `failure` between awaits; read it through a call so it is re-checked.
  const rethrow = (): void => {
    if (failure !== undefined) throw broken(failure);
  };
  target.once("error", onError);
  try {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      rethrow();
      sent += chunk.byteLength;
      if (!target.write(chunk)) {
        await during(new Promise<void>((resolve, reject) => {
          const done = (): void => {
            target.off("drain", done);
            target.off("close", done);
            signal?.removeEventListener("abort", aborted);
            resolve();
          };
          const aborted = (): void => {
            target.off("drain", done);
            target.off("close", done);
            reject(signal?.reason as Error);
          };
          target.once("drain", done);
          target.once("close", done);
          signal?.addEventListener("abort", aborted, { once: true });
        }));
        rethrow();
        if (target.destroyed) throw new ConnectionBrokenError("the connection closed while sending");
      }
    }
    signal?.throwIfAborted();
    await during(
      new Promise<void>((resolve, reject) => {
        target.end(() => {
          if (failure !== undefined) reject(broken(failure));
          else resolve();
        });
      }),
    );
    return sent;
  } finally {
    target.off("error", onError);
  }
}
