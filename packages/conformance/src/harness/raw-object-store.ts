/**
 * An ObjectStore plugin process of the kit's own, called without the host: the kit launches the
 * executable a second time (as the protocol cases do), initialises it with the configuration under
 * test, and calls `stowage.v1.ObjectStoreService` itself. The direct-transfer
 * cases (contract 5.8) need this: the host uses the five direct-transfer RPCs inside `putObject` and
 * `getObject` and does not expose them, and a kit acting as the host must see every plan as the
 * plugin sent it. Every call of one case goes to this one process, so that an upload ID it issued
 * is honoured and a plugin that keeps objects in its process sees what the kit stored. The
 * messages are the kit's own, generated with protoc-gen-es from the same `.proto` files as the
 * SDK's (`src/gen`), so that the kit checks what a plugin puts on the wire without the SDK's code.
 *
 * @packageDocumentation
 */
import { create, fromBinary, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { ServiceError } from "@grpc/grpc-js";
import { ERROR_DOMAIN, MAX_CHUNK_BYTES, StowageError, type ByteRange, type Code } from "@stowage/sdk";
import type { PluginCommand } from "@stowage/sdk/host";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import {
  AbortPutRequestSchema,
  AbortPutResponseSchema,
  BeginPutRequestSchema,
  BeginPutResponseSchema,
  ByteRangeSchema,
  CompletePutRequestSchema,
  CompletePutResponseSchema,
  DeleteObjectRequestSchema,
  DeleteObjectResponseSchema,
  GetBucketProtectionRequestSchema,
  GetBucketProtectionResponseSchema,
  GetObjectRequestSchema,
  GetObjectResponseSchema,
  HeadObjectRequestSchema,
  ObjectProtectionSchema,
  HeadObjectResponseSchema,
  ObjectStoreServiceInitRequestSchema,
  ObjectStoreServiceInitResponseSchema,
  PartChecksum,
  PlanGetRequestSchema,
  PlanGetResponseSchema,
  PutObjectRequestSchema,
  PutObjectResponseSchema,
  RetentionMode,
  SetLegalHoldRequestSchema,
  SetLegalHoldResponseSchema,
  SetRetentionRequestSchema,
  SetRetentionResponseSchema,
  SignPartRequestSchema,
  SignPartResponseSchema,
  type GetObjectHeader,
  type HttpRequest,
  type ObjectInfo,
  type ObjectProtection,
  type PutObjectRequest,
} from "../gen/stowage/v1/object_store_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Capability, GetPluginInfoRequestSchema, GetPluginInfoResponseSchema, PluginKind } from "../gen/stowage/v1/plugin_info_pb.js";
import { RawPlugin } from "./raw-plugin.js";

/** Default deadline of one call. */
const CALL_TIMEOUT_MS = 60_000;

const SERVICE = "/stowage.v1.ObjectStoreService/";

/** An HTTP request of a plan, as the plugin sent it (method and URL unchecked). */
export interface RawHttpRequest {
  /** Method. */
  readonly method: string;
  /** URL: a credential, never shown. */
  readonly url: string;
  /** Headers: values are credentials, never shown. */
  readonly headers: Readonly<Record<string, string>>;
}

/** An object's attributes as the plugin sent them. */
export interface RawObjectInfo {
  /** Key. */
  readonly key: string;
  /** Size. */
  readonly size: number;
  /** Entity tag. */
  readonly etag: string;
  /** Content type. */
  readonly contentType: string;
  /** Metadata. */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * A retention as the kit sends it: the mode's wire number (`RETENTION_MODE_UNSPECIFIED` is 0, so
 * that the kit can send what a host never would) and the time.
 */
export interface RawRetention {
  /** `stowage.v1.RetentionMode`: 0 unspecified, 1 governance, 2 compliance. */
  readonly mode: RetentionMode;
  /** `retain_until`. */
  readonly retainUntil: Date;
}

/** An object's protection as the kit sends or the plugin reports it. */
export interface RawProtection {
  /** The retention, if any. */
  readonly retention?: RawRetention | undefined;
  /** Whether a legal hold is on. */
  readonly legalHold: boolean;
}

/** The wire numbers of the retention modes. */
export const RAW_RETENTION_MODE = { unspecified: RetentionMode.UNSPECIFIED, governance: RetentionMode.GOVERNANCE, compliance: RetentionMode.COMPLIANCE } as const;

function protectionToWire(value: RawProtection | undefined): MessageInitShape<typeof ObjectProtectionSchema> | undefined {
  if (value === undefined) return undefined;
  return {
    legalHold: value.legalHold,
    ...(value.retention === undefined ? {} : { retention: { mode: value.retention.mode, retainUntil: timestampFromDate(value.retention.retainUntil) } }),
  };
}

function protectionFromWire(value: ObjectProtection | undefined): RawProtection | undefined {
  if (value === undefined) return undefined;
  const retention = value.retention;
  return { legalHold: value.legalHold, ...(retention === undefined ? {} : { retention: { mode: retention.mode, retainUntil: date(retention.retainUntil) ?? new Date(0) } }) };
}

/** A refusal to plan. */
export interface RawDeclined {
  /** The plugin's reason. */
  readonly declined: string;
}

/** A read plan, as sent. */
export interface RawGetPlan {
  /** The object described; undefined when the plan has none. */
  readonly object: RawObjectInfo | undefined;
  /** Bytes to read. */
  readonly contentLength: number;
  /** First byte. */
  readonly offset: number;
  /** The request; undefined when absent. */
  readonly request: RawHttpRequest | undefined;
  /** Expiry; undefined when absent. */
  readonly expiresAt: Date | undefined;
}

/** An upload plan, as sent. */
export interface RawPutPlan {
  /** Upload ID. */
  readonly uploadId: string;
  /** Part size. */
  readonly partSize: number;
  /** Checksum per part: `none`, `sha256`, `md5`, `crc32`, or the number of one this kit does not know. */
  readonly partChecksum: "none" | "sha256" | "md5" | "crc32" | number;
  /** Parts in flight at once (0: any). */
  readonly maxParallelParts: number;
  /** Expiry; undefined when absent. */
  readonly expiresAt: Date | undefined;
}

/** A signed part request, as sent. */
export interface RawSignedPart {
  /** The request; undefined when absent. */
  readonly request: RawHttpRequest | undefined;
  /** Expiry; undefined when absent. */
  readonly expiresAt: Date | undefined;
}

/** A part reported to CompletePut. */
export interface RawCompletedPart {
  /** Part number. */
  readonly partNumber: number;
  /** Size. */
  readonly size: number;
  /** The store's ETag answer. */
  readonly etag: string;
  /** The checksum the part was signed with. */
  readonly checksum: Uint8Array;
}

/** What PutObject and CompletePut report. */
export interface RawPutResult {
  /** Bytes stored. */
  readonly size: number;
  /** Entity tag. */
  readonly etag: string;
  /** SHA-256, empty when not reported. */
  readonly sha256: Buffer;
}

/** An object read with GetObject. */
export interface RawGetResult {
  /** The header's object. */
  readonly object: RawObjectInfo | undefined;
  /** The header's content_length. */
  readonly contentLength: number;
  /** The header's offset. */
  readonly offset: number;
  /** The body. */
  readonly data: Buffer;
}

/** Names an object. */
export interface RawRef {
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
}

/** Names an upload. */
export interface RawUploadRef extends RawRef {
  /** Upload ID. */
  readonly uploadId: string;
}

const DETAILS_KEY = "grpc-status-details-bin";

function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === "number" && "metadata" in value;
}

/** A raw call's error as a StowageError: its code, and the reason of its ErrorInfo detail in Stowage's domain. */
export function rawError(error: unknown): StowageError {
  if (!isServiceError(error)) return StowageError.from(error);
  let reason: string | undefined;
  let message = error.details;
  const raw = error.metadata.get(DETAILS_KEY)[0];
  if (raw instanceof Buffer) {
    try {
      const status = fromBinary(StatusSchema, raw);
      if (status.message !== "") message = status.message;
      for (const detail of status.details) {
        if (!detail.typeUrl.endsWith("/google.rpc.ErrorInfo")) continue;
        const info = fromBinary(ErrorInfoSchema, detail.value);
        if (info.domain === ERROR_DOMAIN && info.reason !== "") reason = info.reason;
      }
    } catch {
      // A malformed details trailer still leaves the code and message.
    }
  }
  // Code mirrors gRPC's status numbers one for one.
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- same numbering by construction
  const code: Code = error.code.valueOf();
  return new StowageError(code, message, reason === undefined ? {} : { reason });
}

function date(value: Timestamp | undefined): Date | undefined {
  if (value === undefined) return undefined;
  return new Date(Number(value.seconds) * 1000 + Math.floor(value.nanos / 1e6));
}

function objectInfo(value: ObjectInfo | undefined): RawObjectInfo | undefined {
  if (value === undefined) return undefined;
  return { key: value.key, size: Number(value.size), etag: value.etag, contentType: value.contentType, metadata: value.metadata };
}

function httpRequest(value: HttpRequest | undefined): RawHttpRequest | undefined {
  if (value === undefined) return undefined;
  return { method: value.method, url: value.url, headers: value.headers };
}

function range(value: ByteRange | undefined): MessageInitShape<typeof ByteRangeSchema> | undefined {
  return value === undefined ? undefined : { offset: BigInt(value.offset), ...(value.length === undefined ? {} : { length: BigInt(value.length) }) };
}

/** A Buffer over `bytes`, without a copy. */
function buffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The part checksums this kit knows, by `stowage.v1.PartChecksum`. */
const PART_CHECKSUMS: Readonly<Partial<Record<number, "none" | "sha256" | "md5" | "crc32">>> = {
  [PartChecksum.UNSPECIFIED]: "none",
  [PartChecksum.SHA256]: "sha256",
  [PartChecksum.MD5]: "md5",
  [PartChecksum.CRC32]: "crc32",
};

/** A capability's name as the SDK names it (`DIRECT_TRANSFER`), or `capability N` for one unknown. */
function capabilityName(value: Capability): string {
  const name = value === Capability.UNSPECIFIED ? undefined : (Capability as Partial<Record<number, string>>)[value];
  return name ?? `capability ${String(value)}`;
}

/** A plugin process of the kit's own, initialised, with typed raw calls. */
export class RawObjectStore {
  /** The process. */
  readonly plugin: RawPlugin;
  /** The plugin name every request carries. */
  readonly name: string;
  /** The contract version GetPluginInfo reported. */
  readonly contractVersion: string;
  /** The capabilities GetPluginInfo reported for the plugin. */
  readonly capabilities: readonly string[];

  private constructor(plugin: RawPlugin, name: string, contractVersion: string, capabilities: readonly string[]) {
    this.plugin = plugin;
    this.name = name;
    this.contractVersion = contractVersion;
    this.capabilities = capabilities;
  }

  /**
   * Launches `command`, reads its plugin information and initialises the object store `name`
   * with `config`. The process is disposed of when any step fails.
   */
  static async launch(command: PluginCommand, name: string, config: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<RawObjectStore> {
    const plugin = await RawPlugin.launch(command, 20_000);
    try {
      const info = await call(() =>
        plugin.unaryCall("/stowage.v1.PluginInfoService/GetPluginInfo", GetPluginInfoRequestSchema, create(GetPluginInfoRequestSchema), GetPluginInfoResponseSchema, { timeoutMs: 20_000, signal }),
      );
      const descriptor = info.plugins.find((p) => p.name === name && p.kind === PluginKind.OBJECT_STORE);
      if (descriptor === undefined) throw new Error(`the executable does not serve the object store ${JSON.stringify(name)} when the kit launches it`);
      const capabilities = descriptor.capabilities.map(capabilityName);
      await call(() =>
        plugin.unaryCall(`${SERVICE}Init`, ObjectStoreServiceInitRequestSchema, create(ObjectStoreServiceInitRequestSchema, { plugin: name, config: { ...config } }), ObjectStoreServiceInitResponseSchema, {
          timeoutMs: CALL_TIMEOUT_MS,
          signal,
        }),
      );
      return new RawObjectStore(plugin, name, info.contractVersion, capabilities);
    } catch (error) {
      await plugin.dispose();
      throw error;
    }
  }

  /** A unary call of ObjectStoreService with `request` (the plugin name added), converting its error. */
  async #unary<I extends DescMessage, O extends DescMessage>(method: string, input: I, request: MessageInitShape<I>, output: O, signal?: AbortSignal): Promise<MessageShape<O>> {
    const message = create(input, { plugin: this.name, ...request });
    return call(() => this.plugin.unaryCall(`${SERVICE}${method}`, input, message, output, { timeoutMs: CALL_TIMEOUT_MS, signal }));
  }

  /** PutObject: a header (with the size), the body in chunks of at most 1 MiB, a trailer. */
  async putObject(
    input: RawRef & {
      readonly body: Uint8Array;
      readonly contentType?: string | undefined;
      readonly metadata?: Readonly<Record<string, string>> | undefined;
      readonly sha256?: Uint8Array | undefined;
      readonly protection?: RawProtection | undefined;
      readonly bypassGovernance?: boolean | undefined;
    },
    signal?: AbortSignal,
  ): Promise<RawPutResult> {
    const size = BigInt(input.body.byteLength);
    const messages: PutObjectRequest[] = [
      create(PutObjectRequestSchema, {
        part: {
          case: "header",
          value: {
            plugin: this.name,
            bucket: input.bucket,
            key: input.key,
            size,
            contentType: input.contentType ?? "",
            metadata: { ...input.metadata },
            sha256: input.sha256 ?? new Uint8Array(0),
            protection: protectionToWire(input.protection),
            bypassGovernance: input.bypassGovernance === true,
          },
        },
      }),
    ];
    for (let offset = 0; offset < input.body.byteLength; offset += MAX_CHUNK_BYTES) {
      messages.push(create(PutObjectRequestSchema, { part: { case: "chunk", value: input.body.subarray(offset, offset + MAX_CHUNK_BYTES) } }));
    }
    messages.push(create(PutObjectRequestSchema, { part: { case: "trailer", value: { size } } }));
    const res = await call(() => this.plugin.clientStreamCall(`${SERVICE}PutObject`, PutObjectRequestSchema, messages, PutObjectResponseSchema, { timeoutMs: CALL_TIMEOUT_MS, signal }));
    return { size: Number(res.size), etag: res.etag, sha256: buffer(res.sha256) };
  }

  /** GetObject, read whole (the body in chunk messages). */
  async getObject(input: RawRef & { readonly range?: ByteRange | undefined }, signal?: AbortSignal): Promise<RawGetResult> {
    const request = create(GetObjectRequestSchema, { plugin: this.name, bucket: input.bucket, key: input.key, range: range(input.range) });
    let header: GetObjectHeader | undefined;
    const chunks: Buffer[] = [];
    await call(async () => {
      for await (const message of this.plugin.serverStreamCall(`${SERVICE}GetObject`, GetObjectRequestSchema, request, GetObjectResponseSchema, { timeoutMs: CALL_TIMEOUT_MS, signal })) {
        if (message.part.case === "header") header = message.part.value;
        else if (message.part.case === "chunk") chunks.push(buffer(message.part.value));
      }
    });
    return {
      object: objectInfo(header?.object),
      contentLength: header === undefined ? -1 : Number(header.contentLength),
      offset: header === undefined ? -1 : Number(header.offset),
      data: Buffer.concat(chunks),
    };
  }

  /** HeadObject: the object, or undefined when it does not exist. */
  async headObject(input: RawRef, signal?: AbortSignal): Promise<RawObjectInfo | undefined> {
    const res = await this.#unary("HeadObject", HeadObjectRequestSchema, { bucket: input.bucket, key: input.key }, HeadObjectResponseSchema, signal);
    return res.exists ? (objectInfo(res.object) ?? { key: input.key, size: -1, etag: "", contentType: "", metadata: {} }) : undefined;
  }

  /** DeleteObject. */
  async deleteObject(input: RawRef & { readonly bypassGovernance?: boolean | undefined }, signal?: AbortSignal): Promise<void> {
    await this.#unary("DeleteObject", DeleteObjectRequestSchema, { bucket: input.bucket, key: input.key, bypassGovernance: input.bypassGovernance === true }, DeleteObjectResponseSchema, signal);
  }

  /** GetBucketProtection (contract 5.9.11). */
  async getBucketProtection(input: { readonly bucket: string }, signal?: AbortSignal): Promise<{ lockable: boolean; enforcedBy: string }> {
    const res = await this.#unary("GetBucketProtection", GetBucketProtectionRequestSchema, { bucket: input.bucket }, GetBucketProtectionResponseSchema, signal);
    return { lockable: res.lockable, enforcedBy: res.enforcedBy };
  }

  /** SetRetention (contract 5.9.9): the protection the plugin reports afterwards. */
  async setRetention(input: RawRef & { readonly retention?: RawRetention | undefined; readonly bypassGovernance?: boolean | undefined }, signal?: AbortSignal): Promise<RawProtection | undefined> {
    const retention = input.retention === undefined ? undefined : { mode: input.retention.mode, retainUntil: timestampFromDate(input.retention.retainUntil) };
    const res = await this.#unary(
      "SetRetention",
      SetRetentionRequestSchema,
      { bucket: input.bucket, key: input.key, ...(retention === undefined ? {} : { retention }), bypassGovernance: input.bypassGovernance === true },
      SetRetentionResponseSchema,
      signal,
    );
    return protectionFromWire(res.protection);
  }

  /** SetLegalHold (contract 5.9.10): the protection the plugin reports afterwards. */
  async setLegalHold(input: RawRef & { readonly legalHold: boolean }, signal?: AbortSignal): Promise<RawProtection | undefined> {
    const res = await this.#unary("SetLegalHold", SetLegalHoldRequestSchema, { bucket: input.bucket, key: input.key, legalHold: input.legalHold }, SetLegalHoldResponseSchema, signal);
    return protectionFromWire(res.protection);
  }

  /** PlanGet. */
  async planGet(input: RawRef & { readonly range?: ByteRange | undefined }, signal?: AbortSignal): Promise<RawGetPlan | RawDeclined> {
    const res = await this.#unary("PlanGet", PlanGetRequestSchema, { bucket: input.bucket, key: input.key, range: range(input.range) }, PlanGetResponseSchema, signal);
    if (res.result.case === "declined") return { declined: res.result.value.reason };
    const plan = res.result.case === "plan" ? res.result.value : undefined;
    return {
      object: objectInfo(plan?.object),
      contentLength: Number(plan?.contentLength ?? 0),
      offset: Number(plan?.offset ?? 0),
      request: httpRequest(plan?.request),
      expiresAt: date(plan?.expiresAt),
    };
  }

  /** BeginPut. */
  async beginPut(
    input: RawRef & { readonly size: number; readonly contentType?: string | undefined; readonly metadata?: Readonly<Record<string, string>> | undefined; readonly sha256?: Uint8Array | undefined },
    signal?: AbortSignal,
  ): Promise<RawPutPlan | RawDeclined> {
    const res = await this.#unary(
      "BeginPut",
      BeginPutRequestSchema,
      { bucket: input.bucket, key: input.key, size: BigInt(input.size), contentType: input.contentType ?? "", metadata: { ...input.metadata }, sha256: input.sha256 ?? new Uint8Array(0) },
      BeginPutResponseSchema,
      signal,
    );
    if (res.result.case === "declined") return { declined: res.result.value.reason };
    const plan = res.result.case === "plan" ? res.result.value : undefined;
    const checksum: number = plan?.partChecksum ?? PartChecksum.UNSPECIFIED;
    return {
      uploadId: plan?.uploadId ?? "",
      partSize: Number(plan?.partSize ?? 0),
      partChecksum: PART_CHECKSUMS[checksum] ?? checksum,
      maxParallelParts: plan?.maxParallelParts ?? 0,
      expiresAt: date(plan?.expiresAt),
    };
  }

  /** SignPart. */
  async signPart(input: RawUploadRef & { readonly partNumber: number; readonly offset: number; readonly size: number; readonly checksum: Uint8Array }, signal?: AbortSignal): Promise<RawSignedPart> {
    const res = await this.#unary(
      "SignPart",
      SignPartRequestSchema,
      { bucket: input.bucket, key: input.key, uploadId: input.uploadId, partNumber: input.partNumber, offset: BigInt(input.offset), size: BigInt(input.size), checksum: input.checksum },
      SignPartResponseSchema,
      signal,
    );
    return { request: httpRequest(res.request), expiresAt: date(res.expiresAt) };
  }

  /** CompletePut. */
  async completePut(input: RawUploadRef & { readonly parts: readonly RawCompletedPart[]; readonly size: number; readonly sha256?: Uint8Array | undefined }, signal?: AbortSignal): Promise<RawPutResult> {
    const res = await this.#unary(
      "CompletePut",
      CompletePutRequestSchema,
      {
        bucket: input.bucket,
        key: input.key,
        uploadId: input.uploadId,
        parts: input.parts.map((p) => ({ partNumber: p.partNumber, size: BigInt(p.size), etag: p.etag, checksum: p.checksum })),
        size: BigInt(input.size),
        sha256: input.sha256 ?? new Uint8Array(0),
      },
      CompletePutResponseSchema,
      signal,
    );
    return { size: Number(res.size), etag: res.etag, sha256: buffer(res.sha256) };
  }

  /** AbortPut. */
  async abortPut(input: RawUploadRef, signal?: AbortSignal): Promise<void> {
    await this.#unary("AbortPut", AbortPutRequestSchema, { bucket: input.bucket, key: input.key, uploadId: input.uploadId }, AbortPutResponseSchema, signal);
  }

  /** Stops the process: Shutdown, then a kill if it is still running. */
  async dispose(): Promise<void> {
    await this.plugin.shutdown(2000).catch(() => undefined);
    await Promise.race([this.plugin.exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
    await this.plugin.dispose();
  }
}

/** Runs a raw call and converts its error. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw rawError(error);
  }
}
