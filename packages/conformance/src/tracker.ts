/**
 * The resource tracker: every object, snapshot or volume a case creates is registered with a way
 * to remove it, and removed after the case in reverse order, whatever happened (csi-sanity's
 * `Resources`). Removing something already gone counts as removed.
 *
 * @packageDocumentation
 */
import { Code, StowageError } from "@stowage/sdk";

/** One registered resource. */
interface Entry {
  readonly label: string;
  readonly remove: () => Promise<void>;
  /** The call that was to create it failed: a failed removal is then no leak. */
  refused: boolean;
}

/** Removal of one resource failed. */
export interface CleanupFailure {
  /** What the resource is, for example `object conformance/stowage-conformance-…/OS-PUT-EMPTY/empty`. */
  readonly label: string;
  /** Why it could not be removed. */
  readonly error: string;
}

/** Registers resources and removes them in reverse order of registration. */
export class ResourceTracker {
  readonly #entries: Entry[] = [];
  readonly #timeoutMs: number;

  /** @param timeoutMs - Time each removal gets before it counts as failed. */
  constructor(timeoutMs = 30_000) {
    this.#timeoutMs = timeoutMs;
  }

  /** Number of resources registered and not yet removed. */
  get size(): number {
    return this.#entries.length;
  }

  /**
   * Registers a resource. `remove` receives a signal that fires when its time is up; a removal
   * that fails with `NOT_FOUND` counts as done.
   */
  add(label: string, remove: (signal: AbortSignal) => Promise<void>): void {
    const timeoutMs = this.#timeoutMs;
    this.#entries.push({
      label,
      refused: false,
      remove: async () => {
        const signal = AbortSignal.timeout(timeoutMs);
        await Promise.race([
          remove(signal),
          new Promise<never>((_resolve, reject) => {
            signal.addEventListener("abort", () => reject(new Error(`not removed within ${String(timeoutMs)} ms`)), { once: true });
          }),
        ]);
      },
    });
  }

  /** Forgets a resource the case removed itself (the most recent registration with this label). */
  forget(label: string): void {
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      if (this.#entries[i]?.label === label) {
        this.#entries.splice(i, 1);
        return;
      }
    }
  }

  /**
   * Marks a resource (the most recent registration with this label) as refused: the call that was
   * to create it failed, so by contract clause 2.4.4 nothing exists under it. Its removal is still
   * attempted, in case the plugin stored it all the same, but a removal that fails is not reported
   * as a leak: a plugin that refuses a name (a 1025-byte key, a name its backend cannot hold)
   * usually refuses to delete it too, and with an error that need not be `NOT_FOUND`.
   */
  refused(label: string): void {
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      const entry = this.#entries[i];
      if (entry?.label === label) {
        entry.refused = true;
        return;
      }
    }
  }

  /**
   * Removes every registered resource, last registered first, and returns the failures. Every
   * removal is attempted even when earlier ones fail.
   */
  async cleanup(): Promise<CleanupFailure[]> {
    const failures: CleanupFailure[] = [];
    while (this.#entries.length > 0) {
      const entry = this.#entries.pop();
      if (entry === undefined) break;
      try {
        await entry.remove();
      } catch (error) {
        if ((error instanceof StowageError && error.code === Code.NotFound) || entry.refused) continue;
        failures.push({ label: entry.label, error: error instanceof StowageError ? error.rawMessage : error instanceof Error ? error.message : String(error) });
      }
    }
    return failures;
  }
}
