/**
 * Demo data: a fast, deterministic pseudo-random byte stream generated on the fly (never held in
 * memory as a whole), and SHA-256 helpers for streams and files.
 *
 * @packageDocumentation
 */
import { createCipheriv, createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";

/** Size of the generated chunks. */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * Yields `totalBytes` pseudo-random bytes in chunks of {@link CHUNK_BYTES}: the AES-256-CTR
 * keystream for a key derived from `seed`. The same seed always yields the same bytes, at
 * several hundred MiB/s, holding one chunk at a time.
 */
export async function* pseudoRandomBytes(totalBytes: number, seed: string): AsyncGenerator<Buffer> {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK_BYTES);
  for (let sent = 0; sent < totalBytes; sent += CHUNK_BYTES) {
    const n = Math.min(CHUNK_BYTES, totalBytes - sent);
    yield cipher.update(n === CHUNK_BYTES ? zeros : zeros.subarray(0, n));
  }
}

/** One block of {@link pseudoRandomBytes}, for filling volumes with a repeating pattern. */
export function pseudoRandomBlock(bytes: number, seed: string): Buffer {
  const key = createHash("sha256").update(seed).digest();
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

/** Counts and hashes the bytes that pass through it. */
export class Digest {
  readonly #hash: Hash = createHash("sha256");
  /** Bytes seen so far. */
  bytes = 0;

  /** Adds a chunk. */
  update(chunk: Uint8Array): void {
    this.#hash.update(chunk);
    this.bytes += chunk.byteLength;
  }

  /** The SHA-256 of everything seen, as hex (call once). */
  hex(): string {
    return this.#hash.digest("hex");
  }
}

/** Reads a whole byte stream, returning its SHA-256 (hex) and length. */
export async function digestStream(source: AsyncIterable<Uint8Array>, onChunk?: (chunk: Uint8Array) => void): Promise<{ sha256: string; bytes: number }> {
  const digest = new Digest();
  for await (const chunk of source) {
    digest.update(chunk);
    onChunk?.(chunk);
  }
  return { sha256: digest.hex(), bytes: digest.bytes };
}

/** SHA-256 (hex) and size of a file on disk. */
export async function digestFile(path: string): Promise<{ sha256: string; bytes: number }> {
  return digestStream(createReadStream(path, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>);
}
