/**
 * Listing a bucket: an ordered walk of its directory tree, with prefix pruning, delimiter
 * roll-ups and resumable positions (page tokens).
 *
 * ## Order
 *
 * Keys must come out in the byte order of their UTF-8 encoding, but the directory tree does not
 * give that order directly: the object `a!` sorts before `a/x` although the directory `a` holds
 * `a/x`, because `!` is below `/`. The walk therefore keeps a priority queue of pending entries,
 * each with a lower bound of the keys it can yield: an object's bound is its key; a directory's is
 * the text every key under it starts with (`a/` for the directory `a`). Popping the smallest bound
 * and expanding directories only when they reach the front yields every key in order, reading
 * only the directories that lie on the way.
 *
 * ## Pruning
 *
 * A directory is expanded only when its keys can match the prefix and can come after the resume
 * position; with a delimiter, a directory whose bound already contains the delimiter after the
 * prefix is rolled up into one common prefix without being walked (after checking it holds an
 * object at all). A narrow prefix such as `backups/b1/` thus reads only the directories on the
 * way to `backups/b1`.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import { Code, compareUtf8, Reason, StowageError } from "@stowage/sdk";
import { throwIfAborted } from "@stowage/sdk/plugin";
import type { DirectoryCache } from "../shared/directory-cache.js";
import { MinHeap } from "./heap.js";
import { MAX_KEY_BYTES, objectPath, parseEntryName } from "./key-layout.js";

/** A position in a listing: the last entry a page returned. */
export interface ListCursor {
  /** The last key or common prefix returned. */
  readonly after: string;
  /** Whether `after` is a common prefix, which stands for every key under it. */
  readonly isPrefix: boolean;
}

/** One entry of a listing, in order. */
export type ListEntry =
  | {
      readonly kind: "object";
      readonly key: string;
      /** Names of the object's directory below the bucket. */
      readonly directory: readonly string[];
      /** Name of the object file in it. */
      readonly file: string;
    }
  | { readonly kind: "prefix"; readonly prefix: string };

/** What to walk. */
export interface WalkOptions {
  /** Open directories of the bucket (the cache's base). */
  readonly directories: DirectoryCache;
  /** Only keys that start with this. */
  readonly prefix: string;
  /** Roll keys up at this delimiter; empty for none. */
  readonly delimiter: string;
  /** Start after this position. */
  readonly cursor?: ListCursor | undefined;
  /** Stops the walk. */
  readonly signal?: AbortSignal | undefined;
}

/** An entry waiting in the queue. */
interface Pending {
  /** For an object its key; for a directory the text all keys under it start with. */
  readonly bound: string;
  /** Whether this is an object (which sorts before a directory with the same bound). */
  readonly isObject: boolean;
  /** Path below the bucket directory, one name per level. */
  readonly names: readonly string[];
}

function byBound(a: Pending, b: Pending): number {
  return compareUtf8(a.bound, b.bound) || Number(b.isObject) - Number(a.isObject);
}

/**
 * Yields the objects and common prefixes of a bucket in order; see the module description.
 * Objects that vanish while the walk runs may or may not be reported.
 */
export async function* walkBucket(options: WalkOptions): AsyncGenerator<ListEntry, void, undefined> {
  const { directories, prefix, delimiter, cursor, signal } = options;

  /** Whether a pending entry can yield keys this listing wants. */
  const wanted = (entry: Pending): boolean => {
    const { bound } = entry;
    if (entry.isObject ? !bound.startsWith(prefix) : !bound.startsWith(prefix) && !prefix.startsWith(bound)) return false;
    if (cursor === undefined) return true;
    if (cursor.isPrefix && bound.startsWith(cursor.after)) return false; // already covered by that common prefix
    if (entry.isObject) return compareUtf8(bound, cursor.after) > 0;
    // Every key under a directory precedes the cursor when its bound does and is no prefix of it.
    return compareUtf8(bound, cursor.after) >= 0 || cursor.after.startsWith(bound);
  };

  /** The common prefix all keys starting with `text` roll up into, if the delimiter decides it. */
  const rollUp = (text: string): string | undefined => {
    if (delimiter === "" || !text.startsWith(prefix)) return undefined;
    const at = text.indexOf(delimiter, prefix.length);
    return at < 0 ? undefined : text.slice(0, at + delimiter.length);
  };

  const queue = new MinHeap<Pending>(byBound);
  queue.push({ bound: "", isObject: false, names: [] });
  let lastPrefix = cursor?.isPrefix === true ? cursor.after : undefined;
  for (let entry = queue.pop(); entry !== undefined; entry = queue.pop()) {
    throwIfAborted(signal);
    const commonPrefix = rollUp(entry.bound);
    if (commonPrefix !== undefined) {
      // All keys under one common prefix are adjacent in key order, so a repeat can only follow
      // the first occurrence directly.
      if (commonPrefix === lastPrefix) continue;
      if (!entry.isObject && !(await holdsObject(directories, entry))) continue;
      lastPrefix = commonPrefix;
      yield { kind: "prefix", prefix: commonPrefix };
    } else if (entry.isObject) {
      yield { kind: "object", key: entry.bound, directory: entry.names.slice(0, -1), file: entry.names.at(-1) ?? "" };
    } else {
      for (const child of await readChildren(directories, entry)) {
        if (wanted(child)) queue.push(child);
      }
    }
  }
}

/**
 * The entries of a directory that the layout could have produced: object files whose key maps
 * back to their very path, and directories. Symbolic links and stray names are skipped (links are
 * never followed); a directory removed meanwhile has no entries. A directory that is a mount
 * point fails with `UNSAFE_PATH` when it is opened.
 */
async function readChildren(directories: DirectoryCache, directory: Pending): Promise<Pending[]> {
  const open = await directories.acquire(directory.names);
  if (open === undefined) return [];
  let dirents;
  try {
    dirents = await open.entries();
  } finally {
    directories.release(directory.names);
  }
  const children: Pending[] = [];
  for (const dirent of dirents) {
    const parsed = parseEntryName(dirent.name);
    if (parsed === undefined) continue;
    const names = [...directory.names, dirent.name];
    if (parsed.kind === "object") {
      const key = directory.bound + parsed.text;
      if (!dirent.isFile() || Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES || objectPath(key).join("/") !== names.join("/")) continue;
      children.push({ bound: key, isObject: true, names });
    } else if (dirent.isDirectory()) {
      const bound = directory.bound + parsed.text + (parsed.kind === "directory" ? "/" : "");
      children.push({ bound, isObject: false, names });
    }
  }
  return children;
}

/** Whether any object lies under a directory (depth first, stopping at the first one). */
async function holdsObject(directories: DirectoryCache, directory: Pending): Promise<boolean> {
  const stack = [directory];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const children = await readChildren(directories, next);
    if (children.some((child) => child.isObject)) return true;
    stack.push(...children);
  }
  return false;
}

const TOKEN_VERSION = 2;

/**
 * What a page token is valid for: the listing's prefix and delimiter. A token carries a digest of
 * it, so a token from one listing is refused by another (contract clause 5.5.11).
 */
export function listingScope(prefix: string, delimiter: string): string {
  return createHash("sha256").update(`${prefix}\0${delimiter}`, "utf8").digest("base64url").slice(0, 16);
}

/** Encodes a position in a listing of `scope` as an opaque page token (URL-safe base64 of a small JSON array). */
export function encodePageToken(cursor: ListCursor, scope: string): string {
  return Buffer.from(JSON.stringify([TOKEN_VERSION, cursor.isPrefix ? "p" : "o", cursor.after, scope]), "utf8").toString("base64url");
}

/**
 * Decodes a page token made by {@link encodePageToken} for the same `scope`; anything else fails
 * with `INVALID_PAGE_TOKEN`.
 */
export function decodePageToken(token: string, scope: string): ListCursor {
  let value: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token)) throw new Error("not base64url");
    value = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    value = undefined;
  }
  if (
    !Array.isArray(value) ||
    value.length !== 4 ||
    value[0] !== TOKEN_VERSION ||
    (value[1] !== "o" && value[1] !== "p") ||
    typeof value[2] !== "string" ||
    value[3] !== scope
  ) {
    throw new StowageError(Code.InvalidArgument, `page token ${JSON.stringify(token)} is invalid for this listing; pass back a token that a listing with the same prefix and delimiter returned`, {
      reason: Reason.InvalidPageToken,
    });
  }
  return { after: value[2], isPrefix: value[1] === "p" };
}
