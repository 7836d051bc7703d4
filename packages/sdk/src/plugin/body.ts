import { createHash, timingSafeEqual } from "node:crypto";
import { Code, Reason, StowageError } from "../errors.js";
import type { ByteSource } from "../types.js";

/** What a PutObject body must match. */
export interface BodyExpectations {
  /** Size announced in the header. */
  readonly size?: number | undefined;
  /** SHA-256 announced in the header. */
  readonly sha256?: Uint8Array | undefined;
  /**
   * Called when the source ends; resolves to the size announced by the trailer, or undefined when
   * no trailer is required. Rejects when a required trailer is missing.
   */
  readonly trailerSize?: (() => Promise<number | undefined>) | undefined;
}

/** The outcome of a verified body, known once it has been read to the end. */
export interface BodyResult {
  size: number;
  sha256: Uint8Array | undefined;
}

function mismatch(message: string): StowageError {
  return new StowageError(Code.DataLoss, `${message}; nothing was stored`, { reason: Reason.IntegrityMismatch });
}

/**
 * Wraps a PutObject body so that the implementation never sees a clean end of a body that does not
 * match its announced size, checksum or trailer: instead the iteration throws INTEGRITY_MISMATCH
 * where the body would have ended (or as soon as it runs over), and the implementation discards
 * what it wrote. The result is filled in as the body is read.
 */
export function verifiedBody(source: ByteSource, expect: BodyExpectations, result: BodyResult): ByteSource {
  const hash = expect.sha256 !== undefined && expect.sha256.length > 0 ? createHash("sha256") : undefined;
  return {
    async *[Symbol.asyncIterator]() {
      let count = 0;
      for await (const chunk of source) {
        count += chunk.byteLength;
        if (expect.size !== undefined && count > expect.size) {
          throw mismatch(`the body is longer than the announced ${String(expect.size)} bytes`);
        }
        hash?.update(chunk);
        result.size = count;
        yield chunk;
      }
      const trailer = expect.trailerSize === undefined ? undefined : await expect.trailerSize();
      if (trailer !== undefined && trailer !== count) {
        throw mismatch(`received ${String(count)} body bytes but the sender reports ${String(trailer)}`);
      }
      if (expect.size !== undefined && count !== expect.size) {
        throw mismatch(`received ${String(count)} body bytes, the header announced ${String(expect.size)}`);
      }
      if (hash !== undefined && expect.sha256 !== undefined) {
        const digest = hash.digest();
        if (digest.length !== expect.sha256.length || !timingSafeEqual(digest, expect.sha256)) {
          throw mismatch(`the body's SHA-256 ${digest.toString("hex")} differs from the announced ${Buffer.from(expect.sha256).toString("hex")}`);
        }
        result.sha256 = digest;
      }
      result.size = count;
    },
  };
}

/** Splits chunks larger than `max` bytes into views of at most `max` bytes. */
export async function* rechunk(source: ByteSource, max: number): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    if (chunk.byteLength <= max) {
      yield chunk;
      continue;
    }
    for (let i = 0; i < chunk.byteLength; i += max) yield chunk.subarray(i, Math.min(i + max, chunk.byteLength));
  }
}
