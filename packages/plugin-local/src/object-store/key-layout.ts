/**
 * Where objects live on disk: the mapping between object keys and paths inside a bucket
 * directory, and the validation of bucket names and keys.
 *
 * ## Layout
 *
 * A bucket is a directory `<root>/<bucket>`. A key is split at every `/` into segments, and each
 * segment becomes one directory level, so `backups/b1/b1.tar.gz` is stored as
 * `<root>/<bucket>/backups/b1/b1.tar.gz~o`:
 *
 * - Every segment is escaped byte by byte: `a`–`z`, `0`–`9`, `.`, `_` and `-` stand for
 *   themselves; every other byte of the segment's UTF-8 encoding, upper-case letters included, is
 *   written `%XX` with upper-case hex digits. Names therefore hold only lower-case ASCII letters
 *   and never need Unicode normalisation, so keys that differ only in case or in NFC/NFD form stay
 *   distinct even on case-insensitive or normalising file systems (macOS, Windows).
 * - The empty segment (from `a//b`, or a leading or trailing `/`) is written `%`; a segment that
 *   would be written `.` or `..` is written `%2E` or `%2E%2E`. No name is ever empty, `.` or
 *   `..`, and none contains a path separator, so no key can reach outside its bucket.
 * - The last segment's name carries the suffix `~o` (object). Escaped names never contain `~`,
 *   so an object file and a directory never share a name: `a` (file `a~o`) and `a/b` (file
 *   `a/b~o`) coexist, as S3 allows.
 * - A segment whose escaped form exceeds {@link MAX_PIECE_LENGTH} characters is cut, between
 *   characters, into pieces of at most that length; every piece but the last becomes a directory
 *   named `<piece>~c` (continuation) and the last one is named as above. All names stay below
 *   the 255-byte limit of common file systems whatever the key.
 * - Each bucket also holds a directory {@link TEMP_DIRECTORY} for uploads in flight. Its name can
 *   neither be produced by the escaping nor carry a suffix, so listings never see it.
 *
 * The mapping is a bijection between keys and canonical paths; anything else found in a bucket
 * (files created by hand, leftovers) is ignored by listings.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";

/** Largest key, in bytes of UTF-8. */
export const MAX_KEY_BYTES = 1024;
/** Longest escaped piece of a segment stored in one file name (before its suffix). */
export const MAX_PIECE_LENGTH = 240;
/** Suffix of object files. */
export const OBJECT_SUFFIX = "~o";
/** Suffix of directories that continue an over-long segment. */
export const CONTINUATION_SUFFIX = "~c";
/** Directory inside each bucket that holds uploads in flight. */
export const TEMP_DIRECTORY = "~tmp";

/** How the empty segment is written. */
const EMPTY_SEGMENT = "%";
/** Escaped form of each ASCII character (`a` is `a`, `A` is `%41`). */
const ASCII_ESCAPES: readonly string[] = Array.from({ length: 128 }, (_, code) =>
  /[a-z0-9._-]/.test(String.fromCharCode(code)) ? String.fromCharCode(code) : percent(code),
);
/** A valid escaped piece (not checked here: that it is canonical). */
const PIECE_PATTERN = /^(?:[a-z0-9._-]|%[0-9A-F]{2})+$/;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

function percent(byte: number): string {
  return `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
}

/** Escapes one character (one code point, given as a string of one or two UTF-16 units). */
function escapeCharacter(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x80) return ASCII_ESCAPES[code] ?? percent(code);
  if (code < 0x800) return percent(0xc0 | (code >> 6)) + percent(0x80 | (code & 0x3f));
  if (code < 0x10000) return percent(0xe0 | (code >> 12)) + percent(0x80 | ((code >> 6) & 0x3f)) + percent(0x80 | (code & 0x3f));
  return (
    percent(0xf0 | (code >> 18)) +
    percent(0x80 | ((code >> 12) & 0x3f)) +
    percent(0x80 | ((code >> 6) & 0x3f)) +
    percent(0x80 | (code & 0x3f))
  );
}

/** Keeps a piece from being the special names `.` and `..`. */
function guardDots(piece: string): string {
  if (piece === ".") return "%2E";
  if (piece === "..") return "%2E%2E";
  return piece;
}

/**
 * Escapes one key segment (text without `/`) into one or more pieces of at most
 * {@link MAX_PIECE_LENGTH} characters, cut between characters.
 */
export function escapeSegment(segment: string): string[] {
  if (segment === "") return [EMPTY_SEGMENT];
  const pieces: string[] = [];
  let current = "";
  for (const char of segment) {
    const escaped = escapeCharacter(char);
    if (current.length + escaped.length > MAX_PIECE_LENGTH) {
      pieces.push(guardDots(current));
      current = "";
    }
    current += escaped;
  }
  pieces.push(guardDots(current));
  return pieces;
}

/**
 * The path of an object file relative to its bucket directory, as a list of names (directories
 * first, the file last). The key must have passed {@link checkKey}.
 *
 * @example `objectPath("a//B.txt")` is `["a", "%", "%42.txt~o"]`.
 */
export function objectPath(key: string): string[] {
  const names: string[] = [];
  const segments = key.split("/");
  for (const [index, segment] of segments.entries()) {
    const pieces = escapeSegment(segment);
    const last = pieces.length - 1;
    for (const [i, piece] of pieces.entries()) {
      if (i < last) names.push(piece + CONTINUATION_SUFFIX);
      else names.push(index === segments.length - 1 ? piece + OBJECT_SUFFIX : piece);
    }
  }
  return names;
}

/** What a directory entry inside a bucket is. */
export type EntryKind =
  /** An object file: the key ends with the decoded text. */
  | "object"
  /** A directory of the next segment: the decoded text is followed by `/`. */
  | "directory"
  /** A directory continuing the same segment. */
  | "continuation";

/** A directory entry of a bucket, decoded. */
export interface ParsedEntry {
  /** What it is. */
  readonly kind: EntryKind;
  /** The part of the key it stands for, without the `/` of a directory. */
  readonly text: string;
}

/**
 * Decodes a name found in a bucket directory, or returns `undefined` for names the layout never
 * produces (the temporary area, stray files). The result is not necessarily canonical: callers
 * that need a key to map back to the same path check it with {@link objectPath}.
 */
export function parseEntryName(name: string): ParsedEntry | undefined {
  let kind: EntryKind;
  let escaped: string;
  if (name.endsWith(OBJECT_SUFFIX)) {
    kind = "object";
    escaped = name.slice(0, -OBJECT_SUFFIX.length);
  } else if (name.endsWith(CONTINUATION_SUFFIX)) {
    kind = "continuation";
    escaped = name.slice(0, -CONTINUATION_SUFFIX.length);
  } else {
    kind = "directory";
    escaped = name;
  }
  const text = unescapePiece(escaped);
  return text === undefined ? undefined : { kind, text };
}

/** Reverses the escaping of one piece; `undefined` when it is not a valid escaped piece. */
function unescapePiece(escaped: string): string | undefined {
  if (escaped === EMPTY_SEGMENT) return "";
  if (!PIECE_PATTERN.test(escaped)) return undefined;
  if (!escaped.includes("%")) return escaped;
  const bytes = new Uint8Array(escaped.length);
  let length = 0;
  for (let i = 0; i < escaped.length; ) {
    if (escaped[i] === "%") {
      bytes[length++] = Number.parseInt(escaped.slice(i + 1, i + 3), 16);
      i += 3;
    } else {
      bytes[length++] = escaped.charCodeAt(i);
      i += 1;
    }
  }
  try {
    return utf8Decoder.decode(bytes.subarray(0, length));
  } catch {
    return undefined; // a piece always holds whole characters; anything else is not ours
  }
}

/**
 * Throws `INVALID_ARGUMENT`/`INVALID_NAME` unless `key` is 1 to {@link MAX_KEY_BYTES} bytes of
 * well-formed UTF-8. Every such key is valid; the layout takes care of the awkward ones.
 */
export function checkKey(key: unknown): asserts key is string {
  if (typeof key !== "string" || key === "" || !key.isWellFormed() || Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) {
    throw new StowageError(
      Code.InvalidArgument,
      `key ${JSON.stringify(key)} is invalid: a key is 1 to ${MAX_KEY_BYTES} bytes of well-formed UTF-8`,
      { reason: Reason.InvalidName, metadata: { key: String(key) } },
    );
  }
}

/**
 * Throws `INVALID_ARGUMENT`/`INVALID_NAME` unless `bucket` can name a directory directly under the
 * root: non-empty well-formed text of at most 255 bytes, without `/`, `\` or NUL, and neither `.`
 * nor `..`.
 */
export function checkBucket(bucket: unknown): asserts bucket is string {
  if (
    typeof bucket !== "string" ||
    bucket === "" ||
    bucket === "." ||
    bucket === ".." ||
    /[/\\\0]/.test(bucket) ||
    !bucket.isWellFormed() ||
    Buffer.byteLength(bucket, "utf8") > 255
  ) {
    throw new StowageError(
      Code.InvalidArgument,
      `bucket name ${JSON.stringify(bucket)} is invalid: it must be a non-empty directory name without "/", "\\" or NUL, and not "." or ".."`,
      { reason: Reason.InvalidName, metadata: { bucket: String(bucket) } },
    );
  }
}
