/**
 * Per-key serialisation inside one plugin process: the check of an object's protection and the
 * change it allows (a delete, the rename that replaces the object, a protection update) run as one
 * step, so that, for example, a delete racing a `SetLegalHold` on the same key either sees the
 * hold or runs before it is placed, and never loses it.
 *
 * It does not reach other processes sharing the same root; the plugin documentation says so.
 *
 * @packageDocumentation
 */

/** Runs tasks one at a time per key, in call order; tasks of different keys run concurrently. */
export class KeyLocks {
  /** The promise that settles when the last queued task of each busy key has finished. */
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `task` once every earlier task for `id` has finished, and returns its result. */
  async run<T>(id: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(id);
    let release: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous === undefined ? done : previous.then(() => done);
    this.#tails.set(id, tail);
    try {
      await previous;
      return await task();
    } finally {
      release();
      if (this.#tails.get(id) === tail) this.#tails.delete(id);
    }
  }

  /** Number of keys with a task running or queued (for tests). */
  get busyKeys(): number {
    return this.#tails.size;
  }
}
