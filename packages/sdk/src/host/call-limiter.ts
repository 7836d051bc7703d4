/**
 * A per-plugin limit on calls in flight with a bounded queue (docs/observability.md): a call waits
 * for a slot in arrival order, and fails at once with `RESOURCE_EXHAUSTED` when the queue is full,
 * so a backup server cannot exhaust a plugin's memory or a store's rate limit.
 */
import { Code, Reason, StowageError } from "../errors.js";

/** Limits of one plugin's calls (`PluginHostOptions.limits`). */
export interface CallLimits {
  /** Calls in flight at once (default 256). A GET holds its slot until its body ends or is destroyed. */
  readonly maxInFlight?: number | undefined;
  /** Calls waiting for a slot (default 4096); one more fails with `RESOURCE_EXHAUSTED`. */
  readonly maxQueued?: number | undefined;
}

/** The defaults of {@link CallLimits}. */
export const CALL_LIMIT_DEFAULTS = { maxInFlight: 256, maxQueued: 4096 } as const;

/** Slots for one plugin's calls. */
export class CallLimiter {
  readonly #plugin: string;
  readonly #maxInFlight: number;
  readonly #maxQueued: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(plugin: string, limits: CallLimits = {}) {
    this.#plugin = plugin;
    this.#maxInFlight = limits.maxInFlight ?? CALL_LIMIT_DEFAULTS.maxInFlight;
    this.#maxQueued = limits.maxQueued ?? CALL_LIMIT_DEFAULTS.maxQueued;
  }

  /** Calls holding a slot. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Calls waiting for one. */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Whether a call arriving now would wait for a slot. */
  get full(): boolean {
    return this.#inFlight >= this.#maxInFlight;
  }

  /** Waits for a slot; the returned function releases it (once). */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted();
    if (this.#inFlight >= this.#maxInFlight) {
      if (this.#waiting.length >= this.#maxQueued) {
        throw new StowageError(
          Code.ResourceExhausted,
          `plugin ${this.#plugin} has ${String(this.#inFlight)} calls in flight and ${String(this.#waiting.length)} waiting, the most its limits allow; retry later or raise limits.maxQueued`,
          { metadata: { plugin: this.#plugin } },
        );
      }
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const at = this.#waiting.indexOf(wake);
          if (at >= 0) this.#waiting.splice(at, 1);
          reject(StowageError.from(signal?.reason ?? new StowageError(Code.Canceled, "cancelled while waiting for a slot", { reason: Reason.Cancelled })));
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.#waiting.push(wake);
      });
    } else {
      this.#inFlight += 1;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      // The slot passes straight to the next caller in line.
      if (next === undefined) this.#inFlight -= 1;
      else next();
    };
  }
}
