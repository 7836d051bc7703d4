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
 * @packageDocumentation
 */
import { Code, StowageError } from "@stowage/sdk";
import type { Stats } from "node:fs";
import type { FileHandle } from "node:fs/promises";

/** Magic bytes every object file starts with. */
const MAGIC = Buffer.from("STOWOBJ1", "latin1");
/** Bytes before the attribute JSON. */
export const PREAMBLE_BYTES = 52;
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
}

/**
 * Encodes the start of a new object file with a zero size and digest, to be completed by
 * {@link encodeSizeAndDigest} once the body is known. Fails with `INVALID_ARGUMENT` when the
 * attributes exceed {@link MAX_ATTRIBUTE_BYTES}.
 */
export function encodeHeader(attributes: ObjectAttributes): Buffer {
  const json = Buffer.from(JSON.stringify({ contentType: attributes.contentType, metadata: attributes.metadata }), "utf8");
  if (json.length > MAX_ATTRIBUTE_BYTES) {
    throw new StowageError(Code.InvalidArgument, `content type and metadata take ${json.length} bytes; at most ${MAX_ATTRIBUTE_BYTES} are allowed`);
  }
  const header = Buffer.alloc(PREAMBLE_BYTES + json.length);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(json.length, 8);
  json.copy(header, PREAMBLE_BYTES);
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
  if (bytesRead < PREAMBLE_BYTES || !first.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(path, "bad preamble");
  const jsonLength = first.readUInt32BE(8);
  if (jsonLength > MAX_ATTRIBUTE_BYTES) throw corrupt(path, "attribute block too large");
  const size = Number(first.readBigUInt64BE(SIZE_OFFSET));
  const sha256 = Buffer.from(first.subarray(20, PREAMBLE_BYTES));
  let json: Buffer;
  if (PREAMBLE_BYTES + jsonLength <= bytesRead) {
    json = first.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + jsonLength);
  } else {
    json = Buffer.alloc(jsonLength);
    const more = await file.read(json, 0, jsonLength, PREAMBLE_BYTES);
    if (more.bytesRead < jsonLength) throw corrupt(path, "truncated attribute block");
  }
  const bodyOffset = PREAMBLE_BYTES + jsonLength;
  if (stats.size !== bodyOffset + size) throw corrupt(path, `file holds ${stats.size - bodyOffset} body bytes, header says ${size}`);
  return { ...parseAttributes(json, path), bodyOffset, size, sha256, lastModified: stats.mtime };
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
