/**
 * Runs a store's sweep of temporary files at `init` and then periodically, one at a time.
 *
 * @packageDocumentation
 */

/** A sweep run on demand and every interval, never two at once; its timer never keeps the process alive. */
export class Sweeper {
  readonly #sweep: () => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  /** @param sweep - One sweep; it must not throw (it logs its failures). */
  constructor(sweep: () => Promise<void>) {
    this.#sweep = sweep;
  }

  /** Runs a sweep now (after the one in progress, if any) and waits for it. */
  async now(): Promise<void> {
    await this.#running;
    await this.#start();
  }

  /** Sweeps every `intervalMs` from now on; 0 stops the periodic sweeps. */
  schedule(intervalMs: number): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.#start(), intervalMs);
    this.#timer.unref();
  }

  /** Stops the periodic sweeps and waits for the one in progress. */
  async stop(): Promise<void> {
    this.schedule(0);
    await this.#running;
  }

  /** Starts a sweep unless one runs (then returns that one). */
  #start(): Promise<void> {
    this.#running ??= this.#sweep().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }
}
