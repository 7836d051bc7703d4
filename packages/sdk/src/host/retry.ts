/**
 * The host's retry policy (docs/observability.md): idempotent calls that fail with `UNAVAILABLE`,
 * `RESOURCE_EXHAUSTED` or `ABORTED` are tried again after an exponential backoff with full jitter,
 * at least as long as the `retry_after_ms` a plugin sent (cloud plugins fill it from a 429 or 503
 * `Retry-After`), within a retry budget shared by every call of one plugin, and never once the
 * caller's signal fired.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Code, StowageError } from "../errors.js";

/** Tuning of the host's retries (`PluginHostOptions.retry`). */
export interface RetryOptions {
  /** Attempts per call, the first included (default 3; 1 turns retries off). */
  readonly attempts?: number | undefined;
  /** Backoff cap before the first retry, in ms (default 100); it doubles per retry. */
  readonly initialBackoffMs?: number | undefined;
  /** Largest backoff, in ms (default 5000). */
  readonly maxBackoffMs?: number | undefined;
  /** Longest `retry_after_ms` hint honoured, in ms (default 30 000); a longer one fails the call. */
  readonly maxRetryAfterMs?: number | undefined;
  /**
   * Retry budget per plugin: retries may not exceed this fraction of calls (default 0.2), plus a
   * reserve of 10 retries, so that a store that is down is not hammered by every caller at once.
   */
  readonly budgetRatio?: number | undefined;
}

/** The policy with its defaults applied. */
export interface RetrySettings {
  readonly attempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxRetryAfterMs: number;
  readonly budgetRatio: number;
}

/** The defaults of {@link RetryOptions}. */
export const RETRY_DEFAULTS: RetrySettings = { attempts: 3, initialBackoffMs: 100, maxBackoffMs: 5000, maxRetryAfterMs: 30_000, budgetRatio: 0.2 };

const RETRYABLE = new Set<Code>([Code.Unavailable, Code.ResourceExhausted, Code.Aborted]);

/** The metadata key in which a plugin suggests how long to wait before a retry, in ms (contract 4.3.3). */
export const RETRY_AFTER_KEY = "retry_after_ms";

/** A token bucket of retries: each call deposits `ratio`, each retry takes 1, at most `reserve` saved. */
export class RetryBudget {
  readonly #ratio: number;
  readonly #reserve: number;
  #tokens: number;

  constructor(ratio: number, reserve = 10) {
    this.#ratio = ratio;
    this.#reserve = reserve;
    this.#tokens = reserve;
  }

  /** Called once per call. */
  deposit(): void {
    this.#tokens = Math.min(this.#reserve, this.#tokens + this.#ratio);
  }

  /** Takes one retry's token; false when the budget is spent. */
  take(): boolean {
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** What a retry loop reports, for spans. */
export interface RetryEvent {
  /** The attempt about to start, from 2. */
  readonly attempt: number;
  /** The wait before it, in ms. */
  readonly delayMs: number;
  /** The error of the attempt before. */
  readonly error: StowageError;
}

/** The wait before retry `retry` (1 for the first): full jitter under a doubling cap, at least the hint. */
export function backoffMs(settings: RetrySettings, retry: number, hintMs: number | undefined, random: () => number = Math.random): number {
  const cap = Math.min(settings.maxBackoffMs, settings.initialBackoffMs * 2 ** (retry - 1));
  return Math.max(Math.floor(random() * cap), hintMs ?? 0);
}

function retryAfter(error: StowageError): number | undefined {
  const text = error.metadata[RETRY_AFTER_KEY];
  if (text === undefined) return undefined;
  const ms = Number(text);
  return Number.isSafeInteger(ms) && ms >= 0 ? ms : undefined;
}

/**
 * Runs `attempt` until it succeeds, fails with an error that is not retryable, runs out of
 * attempts or budget, or the signal fires. `retryable` can veto a retry (for example once bytes
 * reached the caller).
 */
export async function withRetries<T>(
  settings: RetrySettings,
  budget: RetryBudget,
  signal: AbortSignal | undefined,
  attempt: (n: number) => Promise<T>,
  hooks: { readonly retryable?: (error: StowageError) => boolean; readonly onRetry?: (event: RetryEvent) => void } = {},
): Promise<T> {
  budget.deposit();
  for (let n = 1; ; n += 1) {
    try {
      return await attempt(n);
    } catch (caught) {
      const error = StowageError.from(caught);
      if (n >= settings.attempts || signal?.aborted === true || !RETRYABLE.has(error.code)) throw error;
      if (hooks.retryable !== undefined && !hooks.retryable(error)) throw error;
      const hint = retryAfter(error);
      if (hint !== undefined && hint > settings.maxRetryAfterMs) throw error;
      if (!budget.take()) throw error;
      const delayMs = backoffMs(settings, n, hint);
      hooks.onRetry?.({ attempt: n + 1, delayMs, error });
      try {
        await sleep(delayMs, undefined, { signal });
      } catch {
        throw StowageError.from(signal?.reason ?? error);
      }
    }
  }
}
