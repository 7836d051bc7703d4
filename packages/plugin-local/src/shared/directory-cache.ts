/**
 * A bounded set of open directories below one base directory, shared by the steps of one long
 * operation (a listing), so that reading many directories and files does not walk from the base
 * for each of them.
 *
 * @packageDocumentation
 */
import type { Directory } from "./confined-root.js";

interface Cached {
  readonly directory: Directory;
  users: number;
}

/**
 * Open directories below `base`, reused while in use and kept (least recently used first out) up
 * to a capacity once released. A directory is closed only when no step uses it. Call
 * {@link close} when the operation ends.
 */
export class DirectoryCache {
  readonly #base: Directory;
  readonly #capacity: number;
  /** In order of last use, oldest first. */
  readonly #entries = new Map<string, Cached>();

  /**
   * @param base - The directory names are relative to; not closed by the cache.
   * @param capacity - Released directories kept open at most.
   */
  constructor(base: Directory, capacity = 16) {
    this.#base = base;
    this.#capacity = capacity;
  }

  /**
   * The directory at `names` below the base, opened (and checked) or reused; `undefined` when it
   * does not exist. Hand it back with {@link release}.
   */
  async acquire(names: readonly string[]): Promise<Directory | undefined> {
    if (names.length === 0) return this.#base;
    const key = names.join("/");
    const hit = this.#take(key);
    if (hit !== undefined) return hit;
    // Walk from the nearest open ancestor.
    let depth = names.length - 1;
    while (depth > 0 && !this.#entries.has(names.slice(0, depth).join("/"))) depth--;
    const ancestor = names.slice(0, depth);
    const from = depth === 0 ? this.#base : this.#take(ancestor.join("/"));
    let opened: Directory | undefined;
    try {
      opened = await (from ?? this.#base).walk(names.slice(from === undefined ? 0 : depth));
    } finally {
      if (depth > 0 && from !== undefined) this.release(ancestor);
    }
    if (opened === undefined) return undefined;
    // Another step may have opened it meanwhile: keep one.
    const raced = this.#take(key);
    if (raced !== undefined) {
      opened.close();
      return raced;
    }
    this.#entries.set(key, { directory: opened, users: 1 });
    this.#evict();
    return opened;
  }

  /** Hands back a directory obtained from {@link acquire} for `names`. */
  release(names: readonly string[]): void {
    if (names.length === 0) return;
    const entry = this.#entries.get(names.join("/"));
    if (entry === undefined) return;
    entry.users--;
    this.#evict();
  }

  /** Closes every directory (none may be in use). */
  close(): void {
    for (const entry of this.#entries.values()) entry.directory.close();
    this.#entries.clear();
  }

  #take(key: string): Directory | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    entry.users++;
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.directory;
  }

  #evict(): void {
    for (const [key, entry] of this.#entries) {
      if (this.#entries.size <= this.#capacity) return;
      if (entry.users > 0) continue;
      entry.directory.close();
      this.#entries.delete(key);
    }
  }
}
