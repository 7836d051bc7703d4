/**
 * An ObjectStore plugin process of the kit's own, called without the host: the kit launches the
 * executable a second time (as the protocol cases do), initialises it with the configuration under
 * test, and calls `stowage.v1.ObjectStoreService` with its own protobuf codec. The direct-transfer
 * cases (contract 5.8) need this: the host uses the five direct-transfer RPCs inside `putObject` and
 * `getObject` and does not expose them, and a kit acting as the host must see every plan as the
 * plugin sent it. Every call of one case goes to this one process, so that an upload ID it issued
 * is honoured and a plugin that keeps objects in its process sees what the kit stored.
 *
 * @packageDocumentation
 */
import type { ServiceError } from "@grpc/grpc-js";
import { ERROR_DOMAIN, MAX_CHUNK_BYTES, StowageError, type ByteRange, type Code } from "@stowage/sdk";
import type { PluginCommand } from "@stowage/sdk/host";
import { RawPlugin } from "./raw-plugin.js";
import * as wire from "./wire.js";

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
      const status = wire.decodeMessage(wire.RpcStatus, raw);
      if (status.message !== "") message = status.message as string;
      for (const detail of status.details as wire.Message[]) {
        if (!(detail.typeUrl as string).endsWith("/google.rpc.ErrorInfo")) continue;
        const info = wire.decodeMessage(wire.ErrorInfo, detail.value as Buffer);
        if (info.domain === ERROR_DOMAIN && info.reason !== "") reason = info.reason as string;
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

function date(value: unknown): Date | undefined {
  if (value === undefined) return undefined;
  const t = value as { seconds: number; nanos: number };
  return new Date(t.seconds * 1000 + Math.floor(t.nanos / 1e6));
}

function objectInfo(value: unknown): RawObjectInfo | undefined {
  if (value === undefined) return undefined;
  const o = value as wire.Message;
  return { key: o.key as string, size: o.size as number, etag: o.etag as string, contentType: o.contentType as string, metadata: o.metadata as Record<string, string> };
}

function httpRequest(value: unknown): RawHttpRequest | undefined {
  if (value === undefined) return undefined;
  const r = value as wire.Message;
  return { method: r.method as string, url: r.url as string, headers: r.headers as Record<string, string> };
}

function range(value: ByteRange | undefined): wire.Message | undefined {
  return value === undefined ? undefined : { offset: value.offset, length: value.length };
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
      const info = wire.decodeMessage(
        wire.GetPluginInfoResponse,
        await call(() => plugin.unaryCall("/stowage.v1.PluginInfoService/GetPluginInfo", wire.encodeMessage(wire.GetPluginInfoRequest, {}), { timeoutMs: 20_000, signal })),
      );
      const descriptor = (info.plugins as wire.Message[]).find((p) => p.name === name && p.kind === 1);
      if (descriptor === undefined) throw new Error(`the executable does not serve the object store ${JSON.stringify(name)} when the kit launches it`);
      const capabilities = (descriptor.capabilities as number[]).map((c) => wire.CAPABILITY_NAMES[c] ?? `capability ${String(c)}`);
      await call(() => plugin.unaryCall(`${SERVICE}Init`, wire.encodeMessage(wire.InitRequest, { plugin: name, config: { ...config } }), { timeoutMs: CALL_TIMEOUT_MS, signal }));
      return new RawObjectStore(plugin, name, info.contractVersion as string, capabilities);
    } catch (error) {
      await plugin.dispose();
      throw error;
    }
  }

  async #unary(method: string, schema: wire.MessageSchema, request: wire.Message, response: wire.MessageSchema, signal?: AbortSignal): Promise<wire.Message> {
    const bytes = await call(() => this.plugin.unaryCall(`${SERVICE}${method}`, wire.encodeMessage(schema, { plugin: this.name, ...request }), { timeoutMs: CALL_TIMEOUT_MS, signal }));
    return wire.decodeMessage(response, bytes);
  }

  /** PutObject: a header (with the size), the body in chunks of at most 1 MiB, a trailer. */
  async putObject(
    input: RawRef & { readonly body: Uint8Array; readonly contentType?: string | undefined; readonly metadata?: Readonly<Record<string, string>> | undefined; readonly sha256?: Uint8Array | undefined },
    signal?: AbortSignal,
  ): Promise<RawPutResult> {
    const messages = [
      wire.encodeMessage(wire.PutObjectRequest, {
        header: { plugin: this.name, bucket: input.bucket, key: input.key, size: input.body.byteLength, contentType: input.contentType, metadata: input.metadata, sha256: input.sha256 },
      }),
    ];
    for (let offset = 0; offset < input.body.byteLength; offset += MAX_CHUNK_BYTES) {
      messages.push(wire.encodeMessage(wire.PutObjectRequest, { chunk: input.body.subarray(offset, offset + MAX_CHUNK_BYTES) }));
    }
    messages.push(wire.encodeMessage(wire.PutObjectRequest, { trailer: { size: input.body.byteLength } }));
    const bytes = await call(() => this.plugin.clientStreamCall(`${SERVICE}PutObject`, messages, { timeoutMs: CALL_TIMEOUT_MS, signal }));
    const res = wire.decodeMessage(wire.PutObjectResponse, bytes);
    return { size: res.size as number, etag: res.etag as string, sha256: res.sha256 as Buffer };
  }

  /** GetObject, read whole (the body in chunk messages). */
  async getObject(input: RawRef & { readonly range?: ByteRange | undefined }, signal?: AbortSignal): Promise<RawGetResult> {
    const request = wire.encodeMessage(wire.GetObjectRequest, { plugin: this.name, bucket: input.bucket, key: input.key, range: range(input.range) });
    let header: wire.Message | undefined;
    const chunks: Buffer[] = [];
    await call(async () => {
      for await (const bytes of this.plugin.serverStreamCall(`${SERVICE}GetObject`, request, { timeoutMs: CALL_TIMEOUT_MS, signal })) {
        const message = wire.decodeMessage(wire.GetObjectResponse, bytes);
        if (message.header !== undefined) header = message.header as wire.Message;
        else if (message.chunk !== undefined) chunks.push(message.chunk as Buffer);
      }
    });
    return {
      object: objectInfo(header?.object),
      contentLength: (header?.contentLength as number | undefined) ?? -1,
      offset: (header?.offset as number | undefined) ?? -1,
      data: Buffer.concat(chunks),
    };
  }

  /** HeadObject: the object, or undefined when it does not exist. */
  async headObject(input: RawRef, signal?: AbortSignal): Promise<RawObjectInfo | undefined> {
    const res = await this.#unary("HeadObject", wire.ObjectRequest, { ...input }, wire.HeadObjectResponse, signal);
    return res.exists === true ? (objectInfo(res.object) ?? { key: input.key, size: -1, etag: "", contentType: "", metadata: {} }) : undefined;
  }

  /** DeleteObject. */
  async deleteObject(input: RawRef, signal?: AbortSignal): Promise<void> {
    await this.#unary("DeleteObject", wire.ObjectRequest, { ...input }, wire.Empty, signal);
  }

  /** PlanGet. */
  async planGet(input: RawRef & { readonly range?: ByteRange | undefined }, signal?: AbortSignal): Promise<RawGetPlan | RawDeclined> {
    const res = await this.#unary("PlanGet", wire.PlanGetRequest, { bucket: input.bucket, key: input.key, range: range(input.range) }, wire.PlanGetResponse, signal);
    if (res.declined !== undefined) return { declined: (res.declined as wire.Message).reason as string };
    const plan = (res.plan ?? {}) as wire.Message;
    return {
      object: objectInfo(plan.object),
      contentLength: (plan.contentLength as number | undefined) ?? 0,
      offset: (plan.offset as number | undefined) ?? 0,
      request: httpRequest(plan.request),
      expiresAt: date(plan.expiresAt),
    };
  }

  /** BeginPut. */
  async beginPut(
    input: RawRef & { readonly size: number; readonly contentType?: string | undefined; readonly metadata?: Readonly<Record<string, string>> | undefined; readonly sha256?: Uint8Array | undefined },
    signal?: AbortSignal,
  ): Promise<RawPutPlan | RawDeclined> {
    const res = await this.#unary("BeginPut", wire.BeginPutRequest, { ...input }, wire.BeginPutResponse, signal);
    if (res.declined !== undefined) return { declined: (res.declined as wire.Message).reason as string };
    const plan = (res.plan ?? {}) as wire.Message;
    const checksum = (plan.partChecksum as number | undefined) ?? 0;
    return {
      uploadId: (plan.uploadId as string | undefined) ?? "",
      partSize: (plan.partSize as number | undefined) ?? 0,
      partChecksum: wire.PART_CHECKSUMS[checksum] ?? checksum,
      maxParallelParts: (plan.maxParallelParts as number | undefined) ?? 0,
      expiresAt: date(plan.expiresAt),
    };
  }

  /** SignPart. */
  async signPart(input: RawUploadRef & { readonly partNumber: number; readonly offset: number; readonly size: number; readonly checksum: Uint8Array }, signal?: AbortSignal): Promise<RawSignedPart> {
    const res = await this.#unary("SignPart", wire.SignPartRequest, { ...input }, wire.SignPartResponse, signal);
    return { request: httpRequest(res.request), expiresAt: date(res.expiresAt) };
  }

  /** CompletePut. */
  async completePut(input: RawUploadRef & { readonly parts: readonly RawCompletedPart[]; readonly size: number; readonly sha256?: Uint8Array | undefined }, signal?: AbortSignal): Promise<RawPutResult> {
    const res = await this.#unary("CompletePut", wire.CompletePutRequest, { ...input, parts: input.parts.map((p) => ({ ...p })) }, wire.CompletePutResponse, signal);
    return { size: res.size as number, etag: res.etag as string, sha256: res.sha256 as Buffer };
  }

  /** AbortPut. */
  async abortPut(input: RawUploadRef, signal?: AbortSignal): Promise<void> {
    await this.#unary("AbortPut", wire.AbortPutRequest, { ...input }, wire.Empty, signal);
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
