/**
 * Upload IDs a plugin process hands to hosts in direct-transfer plans (contract 5.8.8), sealed so
 * that the later calls of an upload can be checked without trusting the host: the ID carries the
 * bucket, key, size, part size, checksum kind and expiry of the plan and the plugin's own upload
 * ID, under an HMAC with a key that never leaves the process. Every plugin gets clauses 5.8.8 and
 * 5.8.9's checks for free; its own methods see only plans it issued.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Code, StowageError } from "../errors.js";
import type { PartChecksum, PutPlan } from "../types.js";
import { PART_CHECKSUM_BYTES, partCount } from "../wire/direct-transfer.js";

/** What a sealed upload ID vouches for. */
export interface SealedUpload {
  readonly bucket: string;
  readonly key: string;
  readonly size: number;
  readonly partSize: number;
  readonly partChecksum: PartChecksum;
  /** Milliseconds since the epoch. */
  readonly expiresAt: number;
  /** The plugin's own upload ID. */
  readonly uploadId: string;
  /** The SHA-256 BeginPut was given, base64, when it was. */
  readonly sha256?: string | undefined;
}

/** How many finished uploads are remembered, so that a late call on one is refused. */
const FINISHED_REMEMBERED = 4096;

function precondition(message: string): StowageError {
  return new StowageError(Code.FailedPrecondition, `${message}; begin a new upload (contract 5.8.8)`);
}

/** Seals and opens the upload IDs of one plugin process. */
export class UploadIds {
  readonly #key = randomBytes(32);
  /** Sealed IDs of uploads completed or aborted, oldest first. */
  readonly #finished = new Set<string>();

  #mac(payload: string): Buffer {
    return createHmac("sha256", this.#key).update(payload).digest();
  }

  /** The upload ID a host receives for `plan`, an upload of `bucket`/`key` of `size` bytes (and `sha256`, when given). */
  seal(bucket: string, key: string, size: number, plan: PutPlan, sha256?: Uint8Array): string {
    const sealed: SealedUpload = {
      ...(sha256 === undefined ? {} : { sha256: Buffer.from(sha256).toString("base64") }),
      bucket,
      key,
      size,
      partSize: plan.partSize,
      partChecksum: plan.partChecksum,
      expiresAt: plan.expiresAt.getTime(),
      uploadId: plan.uploadId,
    };
    const payload = Buffer.from(JSON.stringify(sealed)).toString("base64url");
    return `${payload}.${this.#mac(payload).toString("base64url")}`;
  }

  /**
   * Opens an upload ID a host sent for `bucket`/`key`: FAILED_PRECONDITION when this process did
   * not issue it, or issued it for another object, or (unless `finishedOk`) it has finished.
   */
  open(id: string, bucket: string, key: string, finishedOk = false): SealedUpload | undefined {
    const dot = id.indexOf(".");
    const payload = dot < 0 ? "" : id.slice(0, dot);
    const mac = dot < 0 ? Buffer.alloc(0) : Buffer.from(id.slice(dot + 1), "base64url");
    const expected = this.#mac(payload);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
      if (finishedOk) return undefined;
      throw precondition("the upload_id was not issued by this plugin process (or the process restarted since)");
    }
    const sealed = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as SealedUpload;
    if (sealed.bucket !== bucket || sealed.key !== key) throw precondition("the upload_id belongs to another bucket or key");
    if (!finishedOk && this.#finished.has(id)) throw precondition("the upload was already completed or aborted");
    return sealed;
  }

  /** Remembers that an upload has finished; later SignPart and CompletePut calls on it are refused. */
  finish(id: string): void {
    this.#finished.add(id);
    if (this.#finished.size > FINISHED_REMEMBERED) {
      const oldest = this.#finished.values().next().value;
      if (oldest !== undefined) this.#finished.delete(oldest);
    }
  }
}

/** Checks a part against its upload (clause 5.8.9); INVALID_ARGUMENT names what differs. */
export function checkPart(upload: SealedUpload, partNumber: number, offset: number, size: number, checksum: Uint8Array, now = Date.now()): void {
  const parts = partCount(upload.size, upload.partSize);
  const wrong = (what: string): StowageError => new StowageError(Code.InvalidArgument, `${what} (contract 5.8.9)`);
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > parts) throw wrong(`part number ${String(partNumber)} is not between 1 and ${String(parts)}`);
  const expectedOffset = (partNumber - 1) * upload.partSize;
  const expectedSize = partNumber < parts ? upload.partSize : upload.size - expectedOffset;
  if (offset !== expectedOffset) throw wrong(`part ${String(partNumber)} starts at byte ${String(expectedOffset)}, not ${String(offset)}`);
  if (size !== expectedSize) throw wrong(`part ${String(partNumber)} has ${String(expectedSize)} bytes, not ${String(size)}`);
  const bytes = PART_CHECKSUM_BYTES[upload.partChecksum];
  if (checksum.length !== bytes) throw wrong(`the part checksum (${upload.partChecksum}) has ${String(bytes)} bytes, not ${String(checksum.length)}`);
  if (now > upload.expiresAt) throw precondition(`the upload expired at ${new Date(upload.expiresAt).toISOString()}`);
}
