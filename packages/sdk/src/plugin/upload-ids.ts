/**
 * Upload IDs a plugin process hands to hosts in direct-transfer plans (contract 5.8.8), sealed so
 * that the later calls of an upload can be checked without trusting the host: the ID carries the
 * bucket, key, size, part size, checksum kind and expiry of the plan and the plugin's own upload
 * ID, encrypted and authenticated (AES-256-GCM) with a key that never leaves the process. Every plugin gets clauses 5.8.8 and
 * 5.8.9's checks for free; its own methods see only plans it issued.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
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
  /** AES-256-GCM: the host can neither read (a session URL may be inside) nor forge an upload ID. */
  readonly #key = randomBytes(32);
  /** Sealed IDs of uploads completed (true) or aborted (false), oldest first. */
  readonly #finished = new Map<string, boolean>();

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
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    const text = Buffer.concat([cipher.update(JSON.stringify(sealed), "utf8"), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), text]).toString("base64url");
  }

  /**
   * Opens an upload ID a host sent for `bucket`/`key`: FAILED_PRECONDITION when this process did
   * not issue it, or issued it for another object, or (unless `finishedOk`) it has finished.
   */
  open(id: string, bucket: string, key: string, finishedOk = false): SealedUpload | undefined {
    let sealed: SealedUpload;
    try {
      const bytes = Buffer.from(id, "base64url");
      const decipher = createDecipheriv("aes-256-gcm", this.#key, bytes.subarray(0, 12));
      decipher.setAuthTag(bytes.subarray(12, 28));
      sealed = JSON.parse(Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString("utf8")) as SealedUpload;
    } catch {
      if (finishedOk) return undefined;
      throw precondition("the upload_id was not issued by this plugin process (or the process restarted since)");
    }
    if (sealed.bucket !== bucket || sealed.key !== key) throw precondition("the upload_id belongs to another bucket or key");
    if (!finishedOk && this.#finished.has(id)) throw precondition("the upload was already completed or aborted");
    return sealed;
  }

  /** Remembers that an upload has finished; later SignPart and CompletePut calls on it are refused. */
  finish(id: string, completed = false): void {
    this.#finished.set(id, completed);
    if (this.#finished.size > FINISHED_REMEMBERED) {
      const oldest = this.#finished.keys().next().value;
      if (oldest !== undefined) this.#finished.delete(oldest);
    }
  }

  /** Whether CompletePut succeeded for the upload (its abort then must not reach the plugin). */
  completed(id: string): boolean {
    return this.#finished.get(id) === true;
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
