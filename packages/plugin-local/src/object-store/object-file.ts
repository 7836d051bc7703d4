/**
 * The format of an object file: a fixed binary preamble, the object's attributes as JSON, then the
 * body. Keeping attributes and body in one file makes them change together in one atomic rename,
 * so a reader can never see data without its matching metadata, and a listing learns everything
 * about an object from one small read.
 *
 * ```text
 * offset  size  field
 *      0     8  magic "STOWOBJ1"
 *      8     4  length N of the attribute JSON (uint32, big-endian)
 *     12     8  body size in bytes (uint64, big-endian)
 *     20    32  version tag (SHA-256 of the body when checked at PUT, else random)
 *     52     N  attribute JSON: {"contentType": string, "metadata": {string: string}}
 *   52+N  size  body
 * ```
 *
 * The size and the digest are only known once the body has been received; the writer reserves
 * them and fills them in before the file is renamed into place (see `object-writer.ts`).
 *
 * Format 2 (magic `STOWOBJ2`) inserts the object's protection record, two slots of 24 bytes, at
 * offset 52, so that the attribute JSON starts at 100; `protection-record.ts` describes it and how
 * it is updated in place. The plugin writes format 2 when `objectLock` is on, format 1 otherwise
 * (so that a root without protection stays readable by earlier versions), and reads both; a
 * format-1 file is unprotected.
 *
 * @packageDocumentation
 */
import { Code, StowageError, type ObjectProtection } from "@stowage/sdk";
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { writeFully } from "../shared/fs.js";
import { RECORD_BYTES, SLOT_BYTES, decodeRecord, encodeRecord, encodeSlot, hasProtection, type ProtectionRecord } from "./protection-record.js";

/** Magic bytes of format 1 (no protection record). */
const MAGIC = Buffer.from("STOWOBJ1", "latin1");
/** Magic bytes of format 2 (with a protection record). */
const MAGIC_2 = Buffer.from("STOWOBJ2", "latin1");
/** Bytes before the attribute JSON in format 1, and before the protection record in format 2. */
export const PREAMBLE_BYTES = 52;
/** Offset of the protection record in format 2. */
export const RECORD_OFFSET = PREAMBLE_BYTES;
/** Bytes before the attribute JSON in format 2. */
const PREAMBLE_2_BYTES = PREAMBLE_BYTES + RECORD_BYTES;
/** Offset of the body size; the digest follows it. */
export const SIZE_OFFSET = 12;
/** Largest attribute JSON accepted (content type plus user metadata). */
export const MAX_ATTRIBUTE_BYTES = 64 * 1024;
/** Bytes read at once when opening an object: enough for the attributes of almost every object. */
const FIRST_READ_BYTES = 4096;

/** The attributes stored with an object. */
export interface ObjectAttributes {
  /** MIME type; empty when unknown. */
  readonly contentType: string;
  /** User metadata. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** What the start of an object file says. */
export interface ObjectHeader extends ObjectAttributes {
  /** Offset of the first body byte in the file. */
  readonly bodyOffset: number;
  /** Body size in bytes. */
  readonly size: number;
  /** Version tag (SHA-256 of the body when it was checked at PUT, random otherwise); the etag. */
  readonly sha256: Buffer;
  /** When the object was stored (the file's modification time). */
  readonly lastModified: Date;
  /** The protection record of a format-2 file; `undefined` in format 1 (unprotected). */
  readonly record?: ProtectionRecord | undefined;
}

/** The protection an object file's header reports; `undefined` when it has none (clause 5.9.3). */
export function headerProtection(header: Pick<ObjectHeader, "record">): ObjectProtection | undefined {
  const protection = header.record?.protection;
  return protection !== undefined && hasProtection(protection) ? protection : undefined;
}

/**
 * Encodes the start of a new object file with a zero size and digest, to be completed by
 * {@link encodeSizeAndDigest} once the body is known: format 2 holding `protection` when it is
 * given (`{ legalHold: false }` for none), format 1 otherwise. Fails with `INVALID_ARGUMENT` when
 * the attributes exceed {@link MAX_ATTRIBUTE_BYTES}.
 */
export function encodeHeader(attributes: ObjectAttributes, protection?: ObjectProtection): Buffer {
  const json = Buffer.from(JSON.stringify({ contentType: attributes.contentType, metadata: attributes.metadata }), "utf8");
  if (json.length > MAX_ATTRIBUTE_BYTES) {
    throw new StowageError(Code.InvalidArgument, `content type and metadata take ${json.length} bytes; at most ${MAX_ATTRIBUTE_BYTES} are allowed`);
  }
  const preamble = protection === undefined ? PREAMBLE_BYTES : PREAMBLE_2_BYTES;
  const header = Buffer.alloc(preamble + json.length);
  (protection === undefined ? MAGIC : MAGIC_2).copy(header, 0);
  header.writeUInt32BE(json.length, 8);
  if (protection !== undefined) encodeRecord(protection).copy(header, RECORD_OFFSET);
  json.copy(header, preamble);
  return header;
}

/** The 40 bytes to write at {@link SIZE_OFFSET} once the body is complete. */
export function encodeSizeAndDigest(size: number, sha256: Uint8Array): Buffer {
  const bytes = Buffer.alloc(40);
  bytes.writeBigUInt64BE(BigInt(size), 0);
  bytes.set(sha256, 8);
  return bytes;
}

/**
 * Reads and checks the header of an open object file (`stats` are the file's). A file that is not
 * a complete object file fails with `DATA_LOSS`: object files only appear by rename once complete,
 * so a bad one was damaged or put there by something else.
 */
export async function readHeader(file: FileHandle, stats: Stats, path: string): Promise<ObjectHeader> {
  const first = Buffer.alloc(FIRST_READ_BYTES);
  const { bytesRead } = await file.read(first, 0, first.length, 0);
  const format = formatOf(first, bytesRead);
  if (format === undefined) throw corrupt(path, "bad preamble");
  const preamble = format === 1 ? PREAMBLE_BYTES : PREAMBLE_2_BYTES;
  if (bytesRead < preamble) throw corrupt(path, "truncated preamble");
  let record: ProtectionRecord | undefined;
  if (format === 2) {
    record = decodeRecord(first.subarray(RECORD_OFFSET, RECORD_OFFSET + RECORD_BYTES));
    if (record === undefined) throw corrupt(path, "no valid protection record");
  }
  const jsonLength = first.readUInt32BE(8);
  if (jsonLength > MAX_ATTRIBUTE_BYTES) throw corrupt(path, "attribute block too large");
  const size = Number(first.readBigUInt64BE(SIZE_OFFSET));
  const sha256 = Buffer.from(first.subarray(20, PREAMBLE_BYTES));
  let json: Buffer;
  if (preamble + jsonLength <= bytesRead) {
    json = first.subarray(preamble, preamble + jsonLength);
  } else {
    json = Buffer.alloc(jsonLength);
    const more = await file.read(json, 0, jsonLength, preamble);
    if (more.bytesRead < jsonLength) throw corrupt(path, "truncated attribute block");
  }
  const bodyOffset = preamble + jsonLength;
  if (stats.size !== bodyOffset + size) throw corrupt(path, `file holds ${stats.size - bodyOffset} body bytes, header says ${size}`);
  return { ...parseAttributes(json, path), bodyOffset, size, sha256, lastModified: stats.mtime, record };
}

/**
 * Reads only the protection of an open object file, for the checks before a delete or an
 * overwrite: `undefined` for a format-1 file and for a file that is not an object file at all
 * (nothing the plugin protected); `DATA_LOSS` for a format-2 file whose record is unreadable (it
 * may have been protected, so it is not treated as unprotected).
 */
export async function readProtection(file: FileHandle, path: string): Promise<ProtectionRecord | undefined> {
  const first = Buffer.alloc(PREAMBLE_2_BYTES);
  const { bytesRead } = await file.read(first, 0, first.length, 0);
  if (formatOf(first, bytesRead) !== 2) return undefined;
  const record = bytesRead < PREAMBLE_2_BYTES ? undefined : decodeRecord(first.subarray(RECORD_OFFSET, RECORD_OFFSET + RECORD_BYTES));
  if (record === undefined) throw corrupt(path, "no valid protection record");
  return record;
}

/**
 * Replaces the protection of a format-2 object file in place (`file` open for writing, `record`
 * the one in force): writes the other slot with the next generation, puts the modification time
 * back to `lastModified` (a protection change is not a new version of the content) and flushes
 * the file. See `protection-record.ts` for why a crash at any point leaves one valid record.
 */
export async function writeProtection(file: FileHandle, record: ProtectionRecord, protection: ObjectProtection, lastModified: Date): Promise<ProtectionRecord> {
  const slot = 1 - record.slot;
  const generation = record.generation + 1;
  await writeFully(file, encodeSlot(protection, generation), RECORD_OFFSET + slot * SLOT_BYTES);
  await file.utimes(lastModified, lastModified);
  await file.sync();
  return { protection, generation, slot };
}

/** The format named by the magic bytes at the start of `bytes`, if any. */
function formatOf(bytes: Buffer, length: number): 1 | 2 | undefined {
  if (length < MAGIC.length) return undefined;
  const magic = bytes.subarray(0, MAGIC.length);
  if (magic.equals(MAGIC)) return 1;
  if (magic.equals(MAGIC_2)) return 2;
  return undefined;
}

function parseAttributes(json: Buffer, path: string): ObjectAttributes {
  let value: unknown;
  try {
    value = JSON.parse(json.toString("utf8"));
  } catch {
    throw corrupt(path, "attribute block is not JSON");
  }
  if (typeof value !== "object" || value === null) throw corrupt(path, "attribute block is not an object");
  const { contentType, metadata } = value as { contentType?: unknown; metadata?: unknown };
  if (typeof contentType !== "string" || typeof metadata !== "object" || metadata === null) throw corrupt(path, "bad attributes");
  const entries = Object.entries(metadata);
  if (!entries.every((entry): entry is [string, string] => typeof entry[1] === "string")) throw corrupt(path, "bad metadata value");
  // fromEntries defines own properties, so a key such as "__proto__" stays plain data.
  return { contentType, metadata: Object.fromEntries(entries) };
}

function corrupt(path: string, why: string): StowageError {
  return new StowageError(Code.DataLoss, `object file ${path} is damaged (${why})`, { metadata: { path } });
}
