/**
 * {@link DirectTransfer} over a plugin process's ObjectStoreService (contract 5.8): the five RPCs,
 * with the plans checked as they arrive. The host's executor runs on it exactly as it would on an
 * in-process implementation.
 */
import { Code, StowageError } from "../errors.js";
import { ObjectStoreService } from "../gen/stowage/v1/object_store_pb.js";
import type {
  BeginPutInput,
  CallOptions,
  CompletePutInput,
  DirectTransfer,
  GetObjectInput,
  GetPlan,
  PutObjectResult,
  PutPlan,
  SignedPart,
  SignPartInput,
  TransferDeclined,
  UploadRef,
} from "../types.js";
import { toNumber } from "../wire/convert.js";
import { expiryFromWire, getPlanFromWire, httpRequestFromWire, putPlanFromWire } from "../wire/direct-transfer.js";
import type { RpcChannel } from "./rpc-channel.js";

/** Whether a contract version (`MAJOR.MINOR`) defines direct transfer: 1.1 or a later 1.x. */
export function definesDirectTransfer(contractVersion: string): boolean {
  const match = /^(\d+)\.(\d+)$/.exec(contractVersion);
  return match !== null && Number(match[1]) === 1 && Number(match[2]) >= 1;
}

/** The direct-transfer RPCs of one plugin, over one process's channel. */
export class RemoteDirectTransfer implements DirectTransfer {
  readonly #channel: RpcChannel;
  readonly #plugin: string;
  readonly #defaultTimeoutMs: number;

  constructor(channel: RpcChannel, plugin: string, defaultTimeoutMs: number) {
    this.#channel = channel;
    this.#plugin = plugin;
    this.#defaultTimeoutMs = defaultTimeoutMs;
  }

  #options(options: CallOptions | undefined): CallOptions {
    return { signal: options?.signal, timeoutMs: options?.timeoutMs ?? (this.#defaultTimeoutMs > 0 ? this.#defaultTimeoutMs : undefined) };
  }

  async planGet(input: GetObjectInput, options?: CallOptions): Promise<GetPlan | TransferDeclined> {
    const range = input.range;
    const res = await this.#channel.unary(
      ObjectStoreService.method.planGet,
      {
        plugin: this.#plugin,
        bucket: input.bucket,
        key: input.key,
        ...(range === undefined ? {} : { range: { offset: BigInt(range.offset), ...(range.length === undefined ? {} : { length: BigInt(range.length) }) } }),
      },
      this.#options(options),
    );
    if (res.result.case === "declined") return { declined: res.result.value.reason };
    if (res.result.case !== "plan") throw new StowageError(Code.Internal, "the plugin answered PlanGet with neither a plan nor a refusal");
    return getPlanFromWire(res.result.value, "PlanGet");
  }

  async beginPut(input: BeginPutInput, options?: CallOptions): Promise<PutPlan | TransferDeclined> {
    const res = await this.#channel.unary(
      ObjectStoreService.method.beginPut,
      {
        plugin: this.#plugin,
        bucket: input.bucket,
        key: input.key,
        size: BigInt(input.size),
        contentType: input.contentType ?? "",
        metadata: { ...input.metadata },
        sha256: input.sha256 ?? new Uint8Array(),
      },
      this.#options(options),
    );
    if (res.result.case === "declined") return { declined: res.result.value.reason };
    if (res.result.case !== "plan") throw new StowageError(Code.Internal, "the plugin answered BeginPut with neither a plan nor a refusal");
    return putPlanFromWire(res.result.value, "BeginPut");
  }

  async signPart(input: SignPartInput, options?: CallOptions): Promise<SignedPart> {
    const res = await this.#channel.unary(
      ObjectStoreService.method.signPart,
      {
        plugin: this.#plugin,
        bucket: input.bucket,
        key: input.key,
        uploadId: input.uploadId,
        partNumber: input.partNumber,
        offset: BigInt(input.offset),
        size: BigInt(input.size),
        checksum: input.checksum,
      },
      this.#options(options),
    );
    const what = `SignPart ${String(input.partNumber)}`;
    return { request: httpRequestFromWire(res.request, what), expiresAt: expiryFromWire(res.expiresAt, what) };
  }

  async completePut(input: CompletePutInput, options?: CallOptions): Promise<PutObjectResult> {
    const res = await this.#channel.unary(
      ObjectStoreService.method.completePut,
      {
        plugin: this.#plugin,
        bucket: input.bucket,
        key: input.key,
        uploadId: input.uploadId,
        parts: input.parts.map((p) => ({ partNumber: p.partNumber, size: BigInt(p.size), etag: p.etag, checksum: p.checksum })),
        size: BigInt(input.size),
        sha256: input.sha256 ?? new Uint8Array(),
      },
      this.#options(options),
    );
    return { size: toNumber(res.size), etag: res.etag, sha256: res.sha256.length > 0 ? res.sha256 : input.sha256 };
  }

  async abortPut(input: UploadRef, options?: CallOptions): Promise<void> {
    await this.#channel.unary(
      ObjectStoreService.method.abortPut,
      { plugin: this.#plugin, bucket: input.bucket, key: input.key, uploadId: input.uploadId },
      this.#options(options),
    );
  }
}
