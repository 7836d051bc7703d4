/**
 * A small protobuf codec for the messages the kit sends and receives itself, outside the host
 * (the direct-transfer RPCs of contract 5.8, and the object calls around them). Written from the
 * `.proto` files with the wire format of the protobuf specification, so that the kit checks what a
 * plugin puts on the wire without relying on the SDK's own code: scalars (strings, bytes, 32- and
 * 64-bit integers, booleans, enums), nested messages, repeated fields (packed or not) and
 * `map<string, string>`. Unknown fields are skipped, as protobuf requires.
 *
 * @packageDocumentation
 */

/** The type of a field. */
export type FieldType = "string" | "bytes" | "int64" | "int32" | "bool" | "enum" | "map" | MessageSchema;

/** One field of a message. */
export interface FieldSpec {
  /** Field number. */
  readonly no: number;
  /** Name in the JavaScript object (camelCase). */
  readonly name: string;
  /** Type; `map` is `map<string, string>`. */
  readonly type: FieldType;
  /** Repeated field. */
  readonly repeated?: boolean | undefined;
  /**
   * Explicit presence (`optional`, or a member of a `oneof`): the scalar is written whenever it is
   * set, even to its default, and read back as `undefined` when absent.
   */
  readonly explicit?: boolean | undefined;
}

/** A message: its fully-qualified name (for messages) and fields. */
export interface MessageSchema {
  /** Fully-qualified name, for example `stowage.v1.PlanGetRequest`. */
  readonly name: string;
  /** The fields. */
  readonly fields: readonly FieldSpec[];
}

/** A decoded or to-be-encoded message: field names to values. */
export type Message = Record<string, unknown>;

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Appends bytes to a growing list. */
class Writer {
  readonly #parts: Buffer[] = [];

  varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    const out: number[] = [];
    while (v > 0x7fn) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.#parts.push(Buffer.from(out));
  }

  tag(no: number, wire: number): void {
    this.varint(BigInt((no << 3) | wire));
  }

  bytes(no: number, data: Uint8Array): void {
    this.tag(no, WIRE_LEN);
    this.varint(BigInt(data.byteLength));
    this.#parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  finish(): Buffer {
    return Buffer.concat(this.#parts);
  }
}

function isDefault(type: FieldType, value: unknown): boolean {
  if (typeof type === "object") return false;
  switch (type) {
    case "string":
      return value === "";
    case "bytes":
      return (value as Uint8Array).byteLength === 0;
    case "bool":
      return value === false;
    case "map":
      return Object.keys(value as object).length === 0;
    default:
      return value === 0 || value === 0n;
  }
}

function integer(value: unknown, field: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "boolean") return value ? 1n : 0n;
  throw new TypeError(`field ${field} needs an integer, got ${String(value)}`);
}

function writeValue(writer: Writer, spec: FieldSpec, value: unknown): void {
  const { no, type } = spec;
  if (typeof type === "object") {
    writer.bytes(no, encodeMessage(type, value as Message));
    return;
  }
  switch (type) {
    case "string":
      writer.bytes(no, Buffer.from(String(value), "utf8"));
      return;
    case "bytes":
      writer.bytes(no, value as Uint8Array);
      return;
    case "map":
      for (const [k, v] of Object.entries(value as Record<string, string>)) {
        writer.bytes(no, encodeMessage(MAP_ENTRY, { key: k, value: v }));
      }
      return;
    default:
      writer.tag(no, WIRE_VARINT);
      writer.varint(integer(value, spec.name));
  }
}

/** Encodes `message` by `schema`; fields missing from the object are not written. */
export function encodeMessage(schema: MessageSchema, message: Message): Buffer {
  const writer = new Writer();
  for (const spec of schema.fields) {
    const value = message[spec.name];
    if (value === undefined || value === null) continue;
    if (spec.repeated === true) {
      for (const item of value as unknown[]) writeValue(writer, spec, item);
      continue;
    }
    if (spec.explicit !== true && isDefault(spec.type, value)) continue;
    writeValue(writer, spec, value);
  }
  return writer.finish();
}

/** Reads a message's bytes. */
class Reader {
  #pos = 0;

  constructor(private readonly data: Buffer) {}

  get done(): boolean {
    return this.#pos >= this.data.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.#pos >= this.data.length) throw new Error("truncated varint");
      const b = this.data[this.#pos++] ?? 0;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new Error("varint longer than 10 bytes");
    }
  }

  take(length: number): Buffer {
    if (this.#pos + length > this.data.length) throw new Error("truncated field");
    const out = this.data.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return out;
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_I64) this.take(8);
    else if (wire === WIRE_LEN) this.take(Number(this.varint()));
    else if (wire === WIRE_I32) this.take(4);
    else throw new Error(`unsupported wire type ${String(wire)}`);
  }
}

function scalarFrom(type: FieldType, raw: bigint): unknown {
  switch (type) {
    case "bool":
      return raw !== 0n;
    case "int64":
      return Number(BigInt.asIntN(64, raw));
    default:
      return Number(BigInt.asIntN(32, raw));
  }
}

function defaultOf(spec: FieldSpec): unknown {
  if (spec.repeated === true) return [];
  if (spec.explicit === true || typeof spec.type === "object") return undefined;
  switch (spec.type) {
    case "string":
      return "";
    case "bytes":
      return Buffer.alloc(0);
    case "bool":
      return false;
    case "map":
      return {};
    default:
      return 0;
  }
}

/** Decodes `data` by `schema`: every field of the schema is present, with its default when absent. */
export function decodeMessage(schema: MessageSchema, data: Uint8Array): Message {
  const out: Message = {};
  for (const spec of schema.fields) out[spec.name] = defaultOf(spec);
  const byNumber = new Map(schema.fields.map((f) => [f.no, f]));
  const reader = new Reader(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  while (!reader.done) {
    const tag = Number(reader.varint());
    const no = tag >>> 3;
    const wire = tag & 7;
    const spec = byNumber.get(no);
    if (spec === undefined) {
      reader.skip(wire);
      continue;
    }
    const { type } = spec;
    if (typeof type === "object" || type === "string" || type === "bytes" || type === "map") {
      if (wire !== WIRE_LEN) throw new Error(`${schema.name}.${spec.name}: wire type ${String(wire)} for a length-delimited field`);
      const bytes = Buffer.from(reader.take(Number(reader.varint())));
      if (type === "map") {
        const entry = decodeMessage(MAP_ENTRY, bytes);
        (out[spec.name] as Record<string, string>)[entry.key as string] = entry.value as string;
        continue;
      }
      const value = typeof type === "object" ? decodeMessage(type, bytes) : type === "string" ? bytes.toString("utf8") : bytes;
      if (spec.repeated === true) (out[spec.name] as unknown[]).push(value);
      else out[spec.name] = value;
      continue;
    }
    if (wire === WIRE_LEN && spec.repeated === true) {
      // A packed repeated scalar.
      const packed = new Reader(reader.take(Number(reader.varint())));
      while (!packed.done) (out[spec.name] as unknown[]).push(scalarFrom(type, packed.varint()));
      continue;
    }
    if (wire !== WIRE_VARINT) throw new Error(`${schema.name}.${spec.name}: wire type ${String(wire)} for a varint field`);
    const value = scalarFrom(type, reader.varint());
    if (spec.repeated === true) (out[spec.name] as unknown[]).push(value);
    else out[spec.name] = value;
  }
  return out;
}

/** The entry of a `map<string, string>`. */
const MAP_ENTRY: MessageSchema = {
  name: "map entry",
  fields: [
    { no: 1, name: "key", type: "string" },
    { no: 2, name: "value", type: "string" },
  ],
};

function message(name: string, fields: readonly FieldSpec[]): MessageSchema {
  return { name, fields };
}

const PLUGIN = { no: 1, name: "plugin", type: "string" } as const;
const BUCKET = { no: 2, name: "bucket", type: "string" } as const;
const KEY = { no: 3, name: "key", type: "string" } as const;

/** `google.protobuf.Timestamp`. */
export const Timestamp = message("google.protobuf.Timestamp", [
  { no: 1, name: "seconds", type: "int64" },
  { no: 2, name: "nanos", type: "int32" },
]);

/** `google.protobuf.Any`. */
export const Any = message("google.protobuf.Any", [
  { no: 1, name: "typeUrl", type: "string" },
  { no: 2, name: "value", type: "bytes" },
]);

/** `google.rpc.Status`. */
export const RpcStatus = message("google.rpc.Status", [
  { no: 1, name: "code", type: "int32" },
  { no: 2, name: "message", type: "string" },
  { no: 3, name: "details", type: Any, repeated: true },
]);

/** `google.rpc.ErrorInfo`. */
export const ErrorInfo = message("google.rpc.ErrorInfo", [
  { no: 1, name: "reason", type: "string" },
  { no: 2, name: "domain", type: "string" },
  { no: 3, name: "metadata", type: "map" },
]);

/** `stowage.v1.PluginDescriptor` (config keys skipped). */
export const PluginDescriptor = message("stowage.v1.PluginDescriptor", [
  { no: 1, name: "name", type: "string" },
  { no: 2, name: "kind", type: "enum" },
  { no: 3, name: "capabilities", type: "enum", repeated: true },
]);

/** `stowage.v1.GetPluginInfoRequest`. */
export const GetPluginInfoRequest = message("stowage.v1.GetPluginInfoRequest", []);

/** `stowage.v1.GetPluginInfoResponse`. */
export const GetPluginInfoResponse = message("stowage.v1.GetPluginInfoResponse", [
  { no: 1, name: "contractVersion", type: "string" },
  { no: 2, name: "plugins", type: PluginDescriptor, repeated: true },
  { no: 3, name: "runtime", type: "string" },
  { no: 4, name: "dataChannelAddress", type: "string" },
]);

/** `stowage.v1.ObjectStoreServiceInitRequest`. */
export const InitRequest = message("stowage.v1.ObjectStoreServiceInitRequest", [PLUGIN, { no: 2, name: "config", type: "map" }]);

/** Responses without fields. */
export const Empty = message("empty", []);

/** `stowage.v1.ByteRange`. */
export const ByteRange = message("stowage.v1.ByteRange", [
  { no: 1, name: "offset", type: "int64" },
  { no: 2, name: "length", type: "int64", explicit: true },
]);

/** `stowage.v1.ObjectInfo`. */
export const ObjectInfo = message("stowage.v1.ObjectInfo", [
  { no: 1, name: "key", type: "string" },
  { no: 2, name: "size", type: "int64" },
  { no: 3, name: "etag", type: "string" },
  { no: 4, name: "lastModified", type: Timestamp },
  { no: 5, name: "contentType", type: "string" },
  { no: 6, name: "metadata", type: "map" },
]);

/** `stowage.v1.PutObjectHeader`. */
export const PutObjectHeader = message("stowage.v1.PutObjectHeader", [
  PLUGIN,
  BUCKET,
  KEY,
  { no: 4, name: "size", type: "int64", explicit: true },
  { no: 5, name: "contentType", type: "string" },
  { no: 6, name: "metadata", type: "map" },
  { no: 7, name: "sha256", type: "bytes" },
]);

/** `stowage.v1.PutObjectTrailer`. */
export const PutObjectTrailer = message("stowage.v1.PutObjectTrailer", [{ no: 1, name: "size", type: "int64" }]);

/** `stowage.v1.PutObjectRequest`. */
export const PutObjectRequest = message("stowage.v1.PutObjectRequest", [
  { no: 1, name: "header", type: PutObjectHeader },
  { no: 2, name: "chunk", type: "bytes", explicit: true },
  { no: 3, name: "trailer", type: PutObjectTrailer },
]);

/** `stowage.v1.PutObjectResponse`. */
export const PutObjectResponse = message("stowage.v1.PutObjectResponse", [
  { no: 1, name: "size", type: "int64" },
  { no: 2, name: "etag", type: "string" },
  { no: 3, name: "sha256", type: "bytes" },
]);

/** `stowage.v1.GetObjectRequest`. */
export const GetObjectRequest = message("stowage.v1.GetObjectRequest", [PLUGIN, BUCKET, KEY, { no: 4, name: "range", type: ByteRange }]);

/** `stowage.v1.GetObjectHeader`. */
export const GetObjectHeader = message("stowage.v1.GetObjectHeader", [
  { no: 1, name: "object", type: ObjectInfo },
  { no: 2, name: "contentLength", type: "int64" },
  { no: 3, name: "offset", type: "int64" },
]);

/** `stowage.v1.GetObjectResponse`. */
export const GetObjectResponse = message("stowage.v1.GetObjectResponse", [
  { no: 1, name: "header", type: GetObjectHeader },
  { no: 2, name: "chunk", type: "bytes", explicit: true },
  { no: 3, name: "trailer", type: message("stowage.v1.GetObjectTrailer", [{ no: 1, name: "size", type: "int64" }]) },
]);

/** `stowage.v1.HeadObjectRequest` and `DeleteObjectRequest`. */
export const ObjectRequest = message("stowage.v1.HeadObjectRequest", [PLUGIN, BUCKET, KEY]);

/** `stowage.v1.HeadObjectResponse`. */
export const HeadObjectResponse = message("stowage.v1.HeadObjectResponse", [
  { no: 1, name: "exists", type: "bool" },
  { no: 2, name: "object", type: ObjectInfo },
]);

/** `stowage.v1.HttpRequest`. */
export const HttpRequest = message("stowage.v1.HttpRequest", [
  { no: 1, name: "method", type: "string" },
  { no: 2, name: "url", type: "string" },
  { no: 3, name: "headers", type: "map" },
]);

/** `stowage.v1.TransferDeclined`. */
export const TransferDeclined = message("stowage.v1.TransferDeclined", [{ no: 1, name: "reason", type: "string" }]);

/** `stowage.v1.PlanGetRequest`. */
export const PlanGetRequest = message("stowage.v1.PlanGetRequest", [PLUGIN, BUCKET, KEY, { no: 4, name: "range", type: ByteRange }]);

/** `stowage.v1.GetPlan`. */
export const GetPlan = message("stowage.v1.GetPlan", [
  { no: 1, name: "object", type: ObjectInfo },
  { no: 2, name: "contentLength", type: "int64" },
  { no: 3, name: "offset", type: "int64" },
  { no: 4, name: "request", type: HttpRequest },
  { no: 5, name: "expiresAt", type: Timestamp },
]);

/** `stowage.v1.PlanGetResponse`. */
export const PlanGetResponse = message("stowage.v1.PlanGetResponse", [
  { no: 1, name: "declined", type: TransferDeclined },
  { no: 2, name: "plan", type: GetPlan },
]);

/** `stowage.v1.BeginPutRequest`. */
export const BeginPutRequest = message("stowage.v1.BeginPutRequest", [
  PLUGIN,
  BUCKET,
  KEY,
  { no: 4, name: "size", type: "int64" },
  { no: 5, name: "contentType", type: "string" },
  { no: 6, name: "metadata", type: "map" },
  { no: 7, name: "sha256", type: "bytes" },
]);

/** `stowage.v1.PutPlan`. */
export const PutPlan = message("stowage.v1.PutPlan", [
  { no: 1, name: "uploadId", type: "string" },
  { no: 2, name: "partSize", type: "int64" },
  { no: 3, name: "partChecksum", type: "enum" },
  { no: 4, name: "maxParallelParts", type: "int32" },
  { no: 5, name: "expiresAt", type: Timestamp },
]);

/** `stowage.v1.BeginPutResponse`. */
export const BeginPutResponse = message("stowage.v1.BeginPutResponse", [
  { no: 1, name: "declined", type: TransferDeclined },
  { no: 2, name: "plan", type: PutPlan },
]);

const UPLOAD_ID = { no: 4, name: "uploadId", type: "string" } as const;

/** `stowage.v1.SignPartRequest`. */
export const SignPartRequest = message("stowage.v1.SignPartRequest", [
  PLUGIN,
  BUCKET,
  KEY,
  UPLOAD_ID,
  { no: 5, name: "partNumber", type: "int32" },
  { no: 6, name: "offset", type: "int64" },
  { no: 7, name: "size", type: "int64" },
  { no: 8, name: "checksum", type: "bytes" },
]);

/** `stowage.v1.SignPartResponse`. */
export const SignPartResponse = message("stowage.v1.SignPartResponse", [
  { no: 1, name: "request", type: HttpRequest },
  { no: 2, name: "expiresAt", type: Timestamp },
]);

/** `stowage.v1.CompletedPart`. */
export const CompletedPart = message("stowage.v1.CompletedPart", [
  { no: 1, name: "partNumber", type: "int32" },
  { no: 2, name: "size", type: "int64" },
  { no: 3, name: "etag", type: "string" },
  { no: 4, name: "checksum", type: "bytes" },
]);

/** `stowage.v1.CompletePutRequest`. */
export const CompletePutRequest = message("stowage.v1.CompletePutRequest", [
  PLUGIN,
  BUCKET,
  KEY,
  UPLOAD_ID,
  { no: 5, name: "parts", type: CompletedPart, repeated: true },
  { no: 6, name: "size", type: "int64" },
  { no: 7, name: "sha256", type: "bytes" },
]);

/** `stowage.v1.CompletePutResponse`. */
export const CompletePutResponse = message("stowage.v1.CompletePutResponse", [
  { no: 1, name: "size", type: "int64" },
  { no: 2, name: "etag", type: "string" },
  { no: 3, name: "sha256", type: "bytes" },
]);

/** `stowage.v1.AbortPutRequest`. */
export const AbortPutRequest = message("stowage.v1.AbortPutRequest", [PLUGIN, BUCKET, KEY, UPLOAD_ID]);

/** `stowage.v1.Capability` numbers, as the SDK names them. */
export const CAPABILITY_NAMES: Readonly<Record<number, string>> = {
  1: "RANGED_READS",
  2: "SIGNED_GET_URLS",
  3: "SIGNED_PUT_URLS",
  4: "OBJECT_METADATA",
  5: "SNAPSHOT_PROGRESS",
  6: "LIST_SNAPSHOTS",
  7: "DELETE_VOLUME",
  8: "DIRECT_TRANSFER",
};

/** `stowage.v1.PartChecksum` numbers. */
export const PART_CHECKSUMS: Readonly<Record<number, "none" | "sha256" | "md5" | "crc32">> = { 0: "none", 1: "sha256", 2: "md5", 3: "crc32" };
