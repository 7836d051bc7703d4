/**
 * The idle timeout of a streaming call: a timer that runs while the host waits on the plugin (for
 * the next message or body byte, or for room to send one) and restarts whenever something moves.
 * Time spent waiting on the caller — a body source that produces slowly, a reader that does not
 * read — does not count. When it expires the call fails with `DEADLINE_EXCEEDED`.
 */
import { Code, Reason, StowageError } from "../errors.js";

/** Watches one streaming call for progress. */
export class IdleWatch {
  readonly #timeoutMs: number;
  readonly #what: string;
  readonly #onIdle: (error: StowageError) => void;
  readonly #waiters = new Set<(error: StowageError) => void>();
  #timer: NodeJS.Timeout | undefined;
  #waits = 0;
  #error: StowageError | undefined;

  /**
   * @param timeoutMs - Longest wait without progress; 0 disables the watch.
   * @param what - The call, as error messages name it (for example `the GetObject of "k"`).
   * @param onIdle - Called once when the timeout expires, to cancel the call.
   */
  constructor(timeoutMs: number, what: string, onIdle: (error: StowageError) => void) {
    this.#timeoutMs = timeoutMs;
    this.#what = what;
    this.#onIdle = onIdle;
  }

  /** The error the call failed with when it went idle, if it did. */
  get error(): StowageError | undefined {
    return this.#error;
  }

  /** Starts timing a wait on the plugin (waits may nest; the timer runs while any is open). */
  begin(): void {
    if (this.#timeoutMs <= 0 || this.#error !== undefined) return;
    this.#waits += 1;
    if (this.#waits === 1) this.#arm();
  }

  /** Ends a wait begun with {@link begin}. */
  end(): void {
    if (this.#timeoutMs <= 0 || this.#waits === 0) return;
    this.#waits -= 1;
    if (this.#waits === 0) this.#disarm();
  }

  /** Something moved: the timer restarts. */
  progress(): void {
    if (this.#waits > 0 && this.#error === undefined) this.#arm();
  }

  /**
   * Waits for `promise` under the timer: rejects with the idle error when the plugin makes no
   * progress in time (the promise is then left to settle on its own). Settling counts as progress.
   */
  async wait<T>(promise: Promise<T>): Promise<T> {
    if (this.#timeoutMs <= 0) return promise;
    if (this.#error !== undefined) {
      promise.catch(() => undefined);
      throw this.#error;
    }
    promise.catch(() => undefined);
    let reject: ((error: StowageError) => void) | undefined;
    const idle = new Promise<never>((_resolve, rejectIdle) => {
      reject = rejectIdle;
    });
    const waiter = (error: StowageError): void => reject?.(error);
    this.#waiters.add(waiter);
    this.begin();
    try {
      return await Promise.race([promise, idle]);
    } finally {
      this.#waiters.delete(waiter);
      this.end();
    }
  }

  /** Stops the watch for good (the call ended). */
  stop(): void {
    this.#waits = 0;
    this.#disarm();
  }

  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#fire();
    }, this.#timeoutMs);
    this.#timer.unref();
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#waits = 0;
    const error = new StowageError(
      Code.DeadlineExceeded,
      `${this.#what} was idle: the stream moved no message or body byte for ${String(this.#timeoutMs)} ms (streamIdleTimeoutMs), so the host cancelled it`,
      { reason: Reason.DeadlineExceeded },
    );
    this.#error = error;
    this.#onIdle(error);
    for (const waiter of this.#waiters) waiter(error);
    this.#waiters.clear();
  }
}
