/**
 * Test data: deterministic pseudo-random bytes of any size, produced as a stream (nothing is held
 * in memory or written to disk), and streaming SHA-256 digests.
 *
 * @packageDocumentation
 */
import { createCipheriv, createHash } from "node:crypto";

/** Bytes in a MiB. */
export const MIB = 1024 * 1024;

/** Largest chunk the generators yield. */
const CHUNK = MIB;

function cipherFor(seed: string) {
  const key = createHash("sha256").update(seed, "utf8").digest();
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
}

/** `size` pseudo-random bytes determined by `seed` (AES-256-CTR keystream), in memory: for small bodies. */
export function pseudoRandomBytes(seed: string, size: number): Buffer {
  return cipherFor(seed).update(Buffer.alloc(size));
}

/** The same bytes as {@link pseudoRandomBytes}, streamed in chunks of at most `chunkBytes`. */
export async function* pseudoRandomStream(seed: string, size: number, chunkBytes = CHUNK): AsyncGenerator<Uint8Array> {
  const cipher = cipherFor(seed);
  const zeros = Buffer.alloc(Math.min(chunkBytes, Math.max(size, 1)));
  for (let sent = 0; sent < size; ) {
    const n = Math.min(zeros.length, size - sent);
    yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
    sent += n;
  }
}

/** Size and SHA-256 (hex) of a byte stream, read to its end. */
export interface Digest {
  /** Bytes read. */
  readonly size: number;
  /** SHA-256, lower-case hex. */
  readonly sha256: string;
}

/** Reads `source` to its end and digests it. */
export async function digestStream(source: AsyncIterable<Uint8Array | string>): Promise<Digest> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of source) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    hash.update(bytes);
    size += bytes.byteLength;
  }
  return { size, sha256: hash.digest("hex") };
}

/** SHA-256 of a buffer, raw 32 bytes. */
export function sha256Bytes(data: Uint8Array | string): Buffer {
  return createHash("sha256").update(data).digest();
}

/** A body of one buffer, as an async iterable (an empty buffer yields nothing). */
export async function* bodyOf(data: Uint8Array | string): AsyncGenerator<Uint8Array> {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  if (bytes.byteLength > 0) yield bytes;
}
