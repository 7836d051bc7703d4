/**
 * How an object's protection (contract 5.9: a retention and a legal hold) is stored in its file,
 * so that it can change after the put without rewriting the body.
 *
 * Object files of format 2 (`object-file.ts`) carry, right after the 52-byte preamble of format 1,
 * two fixed-size *slots* of {@link SLOT_BYTES} bytes each:
 *
 * ```text
 * offset  size  field
 *      0     4  generation (uint32, big-endian); 0 means "never written"
 *      4     1  legal hold (0 or 1)
 *      5     1  retention mode (0 none, 1 governance, 2 compliance)
 *      6     2  reserved, 0
 *      8     8  retain_until in milliseconds since the epoch (int64, big-endian; 0 without retention)
 *     16     4  reserved, 0
 *     20     4  check: the first 4 bytes of the SHA-256 of bytes 0–19
 * ```
 *
 * The record in force is the valid slot (check matches, fields in range) with the higher
 * generation. A change writes the *other* slot with the next generation, in one `pwrite` of 24
 * bytes inside the file's first disk sector, then flushes the file: a crash or a torn write
 * leaves at worst that slot invalid, and the previous record still in force. A new file is
 * written with slot 0 at generation 1 and slot 1 empty; it only appears by rename once complete,
 * so a put with protection is atomic (clause 5.9.4).
 *
 * Files of format 1, written before protection existed (or with `objectLock` off), have no slots
 * and read as unprotected; the first protection change rewrites such a file once into format 2
 * (`object-writer.ts`), keeping its body, version tag and modification time.
 *
 * `retain_until` is kept in milliseconds; a finer time is rounded up (clause 5.9.4).
 *
 * @packageDocumentation
 */
import type { ObjectProtection, RetentionMode } from "@stowage/sdk";
import { createHash } from "node:crypto";

/** Bytes of one protection slot. */
export const SLOT_BYTES = 24;
/** Bytes of both slots. */
export const RECORD_BYTES = 2 * SLOT_BYTES;

/** Bytes of a slot covered by its check. */
const CHECKED_BYTES = 20;
const MODES: readonly (RetentionMode | undefined)[] = [undefined, "governance", "compliance"];

/** A decoded protection record: what protects the object, and where it was read from. */
export interface ProtectionRecord {
  /** The protection in force; `{ legalHold: false }` without retention means none. */
  readonly protection: ObjectProtection;
  /** Generation of the slot in force. */
  readonly generation: number;
  /** Index (0 or 1) of the slot in force. */
  readonly slot: number;
}

/** Whether a protection holds anything worth reporting (a retention, even expired, or a hold). */
export function hasProtection(protection: ObjectProtection): boolean {
  return protection.legalHold || protection.retention !== undefined;
}

/** Encodes one slot holding `protection` at `generation`. */
export function encodeSlot(protection: ObjectProtection, generation: number): Buffer {
  const slot = Buffer.alloc(SLOT_BYTES);
  slot.writeUInt32BE(generation, 0);
  slot.writeUInt8(protection.legalHold ? 1 : 0, 4);
  const retention = protection.retention;
  if (retention !== undefined) {
    slot.writeUInt8(MODES.indexOf(retention.mode), 5);
    slot.writeBigInt64BE(BigInt(Math.ceil(retention.retainUntil.getTime())), 8);
  }
  checkOf(slot).copy(slot, CHECKED_BYTES);
  return slot;
}

/** Encodes both slots of a new file: slot 0 holds `protection` at generation 1, slot 1 is empty. */
export function encodeRecord(protection: ObjectProtection): Buffer {
  const record = Buffer.alloc(RECORD_BYTES);
  encodeSlot(protection, 1).copy(record, 0);
  return record;
}

/** Decodes both slots (`bytes` holds at least {@link RECORD_BYTES}); `undefined` when neither is valid. */
export function decodeRecord(bytes: Buffer): ProtectionRecord | undefined {
  let best: ProtectionRecord | undefined;
  for (let slot = 0; slot < 2; slot++) {
    const decoded = decodeSlot(bytes.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES));
    if (decoded !== undefined && (best === undefined || decoded.generation > best.generation)) best = { ...decoded, slot };
  }
  return best;
}

function decodeSlot(slot: Buffer): { protection: ObjectProtection; generation: number } | undefined {
  if (slot.length < SLOT_BYTES || !checkOf(slot).equals(slot.subarray(CHECKED_BYTES, SLOT_BYTES))) return undefined;
  const generation = slot.readUInt32BE(0);
  const hold = slot.readUInt8(4);
  const modeIndex = slot.readUInt8(5);
  const retainUntil = Number(slot.readBigInt64BE(8));
  if (generation === 0 || hold > 1 || modeIndex >= MODES.length) return undefined;
  const mode = MODES[modeIndex];
  return {
    generation,
    protection: {
      legalHold: hold === 1,
      ...(mode === undefined ? {} : { retention: { mode, retainUntil: new Date(retainUntil) } }),
    },
  };
}

function checkOf(slot: Buffer): Buffer {
  return createHash("sha256").update(slot.subarray(0, CHECKED_BYTES)).digest().subarray(0, 4);
}
