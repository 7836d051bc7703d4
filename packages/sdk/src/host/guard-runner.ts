/**
 * What the host's guarded clients share (docs/observability.md): a slot per call within the
 * plugin's limits, attempts by the host's retry policy, and the operation's span and metrics.
 */
import { context } from "@opentelemetry/api";
import type { CallOptions } from "../types.js";
import type { CallLimiter } from "./call-limiter.js";
import type { Operation, OperationScope, OperationTelemetry } from "./operation-telemetry.js";
import { withRetries, type RetryBudget, type RetrySettings } from "./retry.js";
import { checkCallOptions } from "./validate.js";

/** What the guard of one client shares with the others of its plugin. */
export interface Guard {
  readonly limiter: CallLimiter;
  readonly retry: RetrySettings;
  readonly budget: RetryBudget;
  readonly telemetry: OperationTelemetry;
}

/** The bucket and key an input names, for the operation's span; nothing when it is malformed. */
function targetOf(input: unknown): { bucket?: string; key?: string } {
  if (typeof input !== "object" || input === null) return {};
  const { bucket, key } = input as { bucket?: unknown; key?: unknown };
  return { ...(typeof bucket === "string" ? { bucket } : {}), ...(typeof key === "string" ? { key } : {}) };
}

/** Runs one client's operations under its guard. */
export class GuardRunner {
  readonly #guard: Guard;

  constructor(guard: Guard) {
    this.#guard = guard;
  }

  /** Starts an operation's telemetry, after checking the call options (the guard uses the signal). */
  start(operation: Operation, input: unknown, options: CallOptions | undefined): OperationScope {
    checkCallOptions(options);
    return this.#guard.telemetry.start(operation, targetOf(input));
  }

  /** Waits for a slot, counting the wait as queued. */
  async slot(scope: OperationScope, signal: AbortSignal | undefined): Promise<() => void> {
    if (!this.#guard.limiter.full) return this.#guard.limiter.acquire(signal);
    scope.queued(1);
    try {
      return await this.#guard.limiter.acquire(signal);
    } finally {
      scope.queued(-1);
    }
  }

  /** Runs `attempt` (again, when `retry` and the policy allow), recording retries on the scope. */
  attempts<T>(scope: OperationScope, options: CallOptions | undefined, retry: boolean, attempt: (n: number) => Promise<T>): Promise<T> {
    const settings = retry ? this.#guard.retry : { ...this.#guard.retry, attempts: 1 };
    return withRetries(settings, this.#guard.budget, options?.signal, attempt, {
      onRetry: (event) => {
        scope.retry(event.attempt, event.delayMs, event.error);
      },
    });
  }

  /** A unary operation: slot, attempts, telemetry; `bytes` reports what a success moved. */
  async call<T>(operation: Operation, input: unknown, options: CallOptions | undefined, retry: boolean, fn: (attempt: number) => Promise<T>, bytes?: (value: T) => number): Promise<T> {
    const scope = this.start(operation, input, options);
    return context.with(scope.context, async () => {
      let release: (() => void) | undefined;
      try {
        release = await this.slot(scope, options?.signal);
        const value = await this.attempts(scope, options, retry, fn);
        scope.end(undefined, bytes?.(value));
        return value;
      } catch (error) {
        scope.end(error);
        throw error;
      } finally {
        release?.();
      }
    });
  }
}
