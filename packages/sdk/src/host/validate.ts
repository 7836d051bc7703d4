/**
 * Checks the arguments of every ObjectStore and BlockStore client method before anything goes on
 * the wire, so that a caller's mistake is an `INVALID_ARGUMENT` that names the field — never a
 * RangeError from `BigInt()`, a serialization failure reported as INTERNAL, or a key silently
 * rewritten by the UTF-8 encoder (a lone UTF-16 surrogate becomes U+FFFD, so two different keys
 * would collide).
 *
 * The host checks what the wire can carry: types, well-formed Unicode, counts that are
 * non-negative safe integers (contract 1.1.8), 32-bit fields, enums. Rules of the contract that a
 * plugin must enforce itself (key length, empty required fields, page-size bounds, a TTL of at
 * least 1 s) are left to the plugin, so that the conformance kit, which calls plugins through the
 * host, still sees the plugin's own answer.
 */
import { Code, Reason, StowageError } from "../errors.js";
import { checkRetentionShape } from "../protection.js";
import type {
  CallOptions,
  DeleteObjectInput,
  Retention,
  SetLegalHoldInput,
  SetRetentionInput,
  CreateSignedUrlInput,
  CreateSnapshotInput,
  CreateVolumeFromSnapshotInput,
  GetObjectInput,
  ListObjectsInput,
  ListSnapshotsInput,
  ObjectRef,
  PluginConfig,
  PutObjectInput,
  VolumeRef,
} from "../types.js";

const INT32_MAX = 2 ** 31 - 1;

function invalid(message: string, reason?: Reason): StowageError {
  return new StowageError(Code.InvalidArgument, message, reason === undefined ? {} : { reason });
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  return `a value of type ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A name or identifier: a string of well-formed Unicode (no lone UTF-16 surrogates). */
export function checkName(value: unknown, field: string): void {
  if (typeof value !== "string") throw invalid(`${field} must be a string, got ${describe(value)}`, Reason.InvalidName);
  if (!value.isWellFormed()) {
    throw invalid(`${field} ${JSON.stringify(value)} is not well-formed Unicode (it holds a lone UTF-16 surrogate); names travel as UTF-8 and would be altered`, Reason.InvalidName);
  }
}

function checkOptionalName(value: unknown, field: string): void {
  if (value !== undefined) checkName(value, field);
}

/**
 * A string map (metadata, tags, a tag filter): a plain object whose keys and values are
 * well-formed strings. Values are named in errors only when `showValues` (never for configuration).
 */
function checkStringMap(value: unknown, field: string, reason: Reason, showValues = true): void {
  if (value === undefined) return;
  if (!isRecord(value)) throw invalid(`${field} must be an object of strings, got ${describe(value)}`, reason);
  for (const [key, entry] of Object.entries(value)) {
    if (!key.isWellFormed()) throw invalid(`${field} has the key ${JSON.stringify(key)}, which is not well-formed Unicode (a lone UTF-16 surrogate)`, Reason.InvalidName);
    if (typeof entry !== "string") {
      throw invalid(`${field}[${JSON.stringify(key)}] must be a string, got ${showValues ? describe(entry) : `a value of type ${entry === null ? "null" : typeof entry}`}`, reason);
    }
    if (!entry.isWellFormed()) {
      throw invalid(`${field}[${JSON.stringify(key)}]${showValues ? ` ${JSON.stringify(entry)}` : ""} is not well-formed Unicode (a lone UTF-16 surrogate)`, Reason.InvalidName);
    }
  }
}

/** A count (contract 1.1.8): a non-negative safe integer, at most `max`. */
function checkCount(value: unknown, field: string, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > max) {
    throw invalid(`${field} must be a whole number from 0 to ${String(max)}, got ${describe(value)}`);
  }
}

function checkOptionalCount(value: unknown, field: string, max?: number): void {
  if (value !== undefined) checkCount(value, field, max);
}

function checkInput(input: unknown, what: string): asserts input is Record<string, unknown> {
  if (!isRecord(input)) throw invalid(`the ${what} input must be an object, got ${describe(input)}`);
}

/**
 * The longest timeout the host accepts, in ms (about 24.8 days): Node's timers and gRPC deadlines
 * cannot hold more (a longer Node timer fires at once).
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Whether `value` is a timeout in ms the host can honour: a number from 0 to {@link MAX_TIMEOUT_MS}. */
export function isTimeout(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= MAX_TIMEOUT_MS;
}

/** The options every call takes: an AbortSignal and a timeout from 0 to {@link MAX_TIMEOUT_MS}. */
export function checkCallOptions(options: CallOptions | undefined): void {
  if (options === undefined) return;
  if (!isRecord(options)) throw invalid(`call options must be an object, got ${describe(options)}`);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalid(`options.signal must be an AbortSignal, got ${describe(options.signal)}`);
  const { timeoutMs } = options;
  if (timeoutMs !== undefined && !isTimeout(timeoutMs)) {
    throw invalid(`options.timeoutMs must be a number of milliseconds from 0 to ${String(MAX_TIMEOUT_MS)}, got ${describe(timeoutMs)}`);
  }
}

/** The configuration of `init`: string keys and values. Values are never quoted (they may be secrets). */
export function checkConfig(config: PluginConfig): void {
  checkStringMap(config, "config", Reason.InvalidConfig, false);
}

/** A bucket and a key. */
export function checkObjectRef(input: ObjectRef): void {
  checkInput(input, "object");
  checkName(input.bucket, "bucket");
  checkName(input.key, "key");
}

/** The input of `putObject`; the body's chunks are checked as they are read (`chunksOf`). */
export function checkPutInput(input: PutObjectInput): void {
  checkObjectRef(input);
  const body: unknown = input.body;
  if (typeof body !== "object" || body === null || typeof (body as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== "function") {
    throw invalid(`body must be an async iterable of byte chunks (a Readable, or an async generator of Uint8Arrays), got ${body instanceof Uint8Array ? "a Uint8Array (wrap it: Readable.from([bytes]))" : describe(body)}`);
  }
  checkOptionalCount(input.size, "size");
  checkOptionalName(input.contentType, "contentType");
  checkStringMap(input.metadata, "metadata", Reason.InvalidName);
  if (input.sha256 !== undefined && !(input.sha256 instanceof Uint8Array)) throw invalid(`sha256 must be a Uint8Array of 32 bytes, got ${describe(input.sha256)}`);
  checkOptionalFlag(input.bypassGovernance, "bypassGovernance");
  const protection: unknown = input.protection;
  if (protection === undefined) return;
  if (!isRecord(protection)) throw invalid(`protection must be an object { retention?, legalHold? }, got ${describe(protection)}`);
  checkOptionalFlag(protection.legalHold, "protection.legalHold");
  checkRetentionInput(protection.retention, "protection.retention");
}

function checkOptionalFlag(value: unknown, field: string): void {
  if (value !== undefined && typeof value !== "boolean") throw invalid(`${field} must be true or false, got ${describe(value)}`);
}

/**
 * A retention asked for: an object with a mode and a valid time. Whether the time is in the future
 * is the plugin's to judge (contract 5.9.4), so that the conformance kit tests its answer.
 */
function checkRetentionInput(retention: unknown, field: string): void {
  if (retention === undefined) return;
  if (!isRecord(retention)) throw invalid(`${field} must be an object { mode, retainUntil }, got ${describe(retention)}`);
  checkRetentionShape(retention as unknown as Retention);
}

/** The input of `deleteObject`. */
export function checkDeleteInput(input: DeleteObjectInput): void {
  checkObjectRef(input);
  checkOptionalFlag(input.bypassGovernance, "bypassGovernance");
}

/** The input of `setRetention`. */
export function checkSetRetentionInput(input: SetRetentionInput): void {
  checkDeleteInput(input);
  checkRetentionInput(input.retention, "retention");
}

/** The input of `setLegalHold`. */
export function checkSetLegalHoldInput(input: SetLegalHoldInput): void {
  checkObjectRef(input);
  if (typeof input.legalHold !== "boolean") throw invalid(`legalHold must be true or false, got ${describe(input.legalHold)}`);
}

/** The input of `getObject`. */
export function checkGetInput(input: GetObjectInput): void {
  checkObjectRef(input);
  if (input.range === undefined) return;
  if (!isRecord(input.range)) throw invalid(`range must be an object { offset, length? }, got ${describe(input.range)}`);
  checkCount(input.range.offset, "range.offset");
  checkOptionalCount(input.range.length, "range.length");
}

/** The input of `listObjects`. */
export function checkListInput(input: ListObjectsInput): void {
  checkInput(input, "listObjects");
  checkName(input.bucket, "bucket");
  checkOptionalName(input.prefix, "prefix");
  checkOptionalName(input.delimiter, "delimiter");
  checkOptionalName(input.pageToken, "pageToken");
  checkOptionalCount(input.pageSize, "pageSize", INT32_MAX);
  checkOptionalCount(input.maxPages, "maxPages", INT32_MAX);
}

/** The input of `createSignedUrl`: the method is exactly "GET" or "PUT" (or absent). */
export function checkSignedUrlInput(input: CreateSignedUrlInput): void {
  checkObjectRef(input);
  const method: unknown = input.method;
  if (method !== undefined && method !== "GET" && method !== "PUT") throw invalid(`method must be "GET" or "PUT", got ${describe(method)}`);
  if (typeof input.ttlSeconds !== "number" || !Number.isSafeInteger(input.ttlSeconds)) {
    throw invalid(`ttlSeconds must be a whole number of seconds, got ${describe(input.ttlSeconds)}`);
  }
}

/** A snapshot ID. */
export function checkSnapshotId(snapshotId: string): void {
  checkName(snapshotId, "snapshotId");
}

/** The input of `createSnapshot`. */
export function checkCreateSnapshotInput(input: CreateSnapshotInput): void {
  checkInput(input, "createSnapshot");
  checkName(input.volumeId, "volumeId");
  checkOptionalName(input.zone, "zone");
  checkStringMap(input.tags, "tags", Reason.InvalidName);
}

/** The input of `listSnapshots`. */
export function checkListSnapshotsInput(input: ListSnapshotsInput): void {
  checkInput(input, "listSnapshots");
  checkStringMap(input.tagFilter, "tagFilter", Reason.InvalidName);
  checkOptionalCount(input.pageSize, "pageSize", INT32_MAX);
  checkOptionalName(input.pageToken, "pageToken");
  checkOptionalCount(input.maxPages, "maxPages", INT32_MAX);
}

/** The input of `createVolumeFromSnapshot`. */
export function checkCreateVolumeInput(input: CreateVolumeFromSnapshotInput): void {
  checkInput(input, "createVolumeFromSnapshot");
  checkName(input.snapshotId, "snapshotId");
  checkOptionalName(input.volumeType, "volumeType");
  checkOptionalName(input.zone, "zone");
  checkOptionalCount(input.iops, "iops");
  checkStringMap(input.tags, "tags", Reason.InvalidName);
}

/** A volume ID and zone. */
export function checkVolumeRef(input: VolumeRef): void {
  checkInput(input, "volume");
  checkName(input.volumeId, "volumeId");
  checkOptionalName(input.zone, "zone");
}

/** A volume ID given on its own (`setVolumeId`). */
export function checkVolumeId(volumeId: string): void {
  checkName(volumeId, "volumeId");
}

/** A PersistentVolume as JSON bytes: a JSON object that `JSON.stringify` can encode. */
export function persistentVolumeBytes(pv: unknown): Uint8Array {
  if (!isRecord(pv)) throw invalid(`persistentVolume must be a JSON object, got ${describe(pv)}`);
  let text: string | undefined;
  try {
    text = JSON.stringify(pv);
  } catch (error) {
    throw new StowageError(Code.InvalidArgument, `persistentVolume cannot be encoded as JSON: ${(error as Error).message}`, { cause: error });
  }
  if (text === undefined) throw invalid("persistentVolume encodes to nothing in JSON (its toJSON returned undefined)");
  return Buffer.from(text, "utf8");
}
