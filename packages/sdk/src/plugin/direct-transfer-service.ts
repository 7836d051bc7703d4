/**
 * The direct-transfer RPCs of stowage.v1.ObjectStoreService (contract 5.8) on top of
 * {@link DirectTransfer} implementations: validation, sealed upload IDs, the checks of every
 * signed request, and the bookkeeping of finished uploads.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { sendUnaryData, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import {
  AbortPutResponseSchema,
  BeginPutResponseSchema,
  CompletePutResponseSchema,
  PlanGetResponseSchema,
  SignPartResponseSchema,
  type AbortPutRequest,
  type AbortPutResponse,
  type BeginPutRequest,
  type BeginPutResponse,
  type CompletePutRequest,
  type CompletePutResponse,
  type PlanGetRequest,
  type PlanGetResponse,
  type SignPartRequest,
  type SignPartResponse,
} from "../gen/stowage/v1/object_store_pb.js";
import type { DirectTransfer, PluginDescriptor } from "../types.js";
import { toNumber } from "../wire/convert.js";
import { checkHttpRequest, getPlanToWire, isDeclined, MAX_PLAN_VALIDITY_MS, PART_CHECKSUM_BYTES, partCount, putPlanToWire } from "../wire/direct-transfer.js";
import { handleUnary, type ServiceDeps, requireNonEmpty } from "./handler.js";
import type { RegistryLookup, ServiceCall } from "./protocol-adapter.js";
import { checkPart, UploadIds } from "./upload-ids.js";

const KIND = "object-store";

function requireSha256(value: Uint8Array, field: string): void {
  if (value.length !== 0 && value.length !== 32) {
    throw new StowageError(Code.InvalidArgument, `${field} must be exactly 32 bytes, got ${String(value.length)} (contract 5.2.7)`);
  }
}

/** A plugin's expiry, checked against clause 5.8.3 (for signed requests: `capped`) before it reaches a host. */
function checkExpiry(expiresAt: Date, what: string, capped = true): Date {
  if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime())) throw new StowageError(Code.Internal, `${what} has no valid expiry`);
  if (capped && expiresAt.getTime() > Date.now() + MAX_PLAN_VALIDITY_MS) {
    throw new StowageError(Code.Internal, `${what} is valid until ${expiresAt.toISOString()}, beyond the 15 minutes contract 5.8.3 allows`);
  }
  return expiresAt;
}

/** The five direct-transfer handlers, merged into the ObjectStoreService implementation. */
export function directTransferService(registryFor: RegistryLookup, descriptors: readonly PluginDescriptor[], deps: ServiceDeps): UntypedServiceImplementation {
  const uploads = new UploadIds();
  const announcing = new Set(descriptors.filter((d) => d.kind === KIND && d.capabilities.includes("DIRECT_TRANSFER")).map((d) => d.name));

  /** The named plugin's direct transfer; UNSUPPORTED without the capability (clause 5.8.1). */
  const direct = (call: ServiceCall, plugin: string): DirectTransfer => {
    const store = registryFor(call).get(KIND, plugin);
    if (!announcing.has(plugin) || store.directTransfer === undefined) {
      throw new StowageError(Code.Unimplemented, `plugin ${plugin} does not announce CAPABILITY_DIRECT_TRANSFER; use PutObject and GetObject`, {
        reason: Reason.Unsupported,
      });
    }
    return store.directTransfer;
  };

  return {
    planGet(call: ServerUnaryCall<PlanGetRequest, PlanGetResponse>, callback: sendUnaryData<PlanGetResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const transfer = direct(call, req.plugin);
        const range =
          req.range === undefined
            ? undefined
            : { offset: toNumber(req.range.offset), length: req.range.length === undefined ? undefined : toNumber(req.range.length) };
        if (range !== undefined && (range.offset < 0 || (range.length ?? 0) < 0)) {
          throw new StowageError(Code.InvalidArgument, "range offset and length must be at least 0 (contract 5.3.11)");
        }
        const answer = await transfer.planGet({ bucket: req.bucket, key: req.key, range }, { signal });
        if (isDeclined(answer)) return create(PlanGetResponseSchema, { result: { case: "declined", value: { reason: answer.declined } } });
        if (answer.contentLength > 0 && answer.request === undefined) throw new StowageError(Code.Internal, "the plugin's read plan has no request");
        if (answer.request !== undefined) checkHttpRequest(answer.request, "the plugin's read plan");
        checkExpiry(answer.expiresAt, "the plugin's read plan");
        return create(PlanGetResponseSchema, { result: { case: "plan", value: getPlanToWire(answer) } });
      });
    },

    beginPut(call: ServerUnaryCall<BeginPutRequest, BeginPutResponse>, callback: sendUnaryData<BeginPutResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        requireSha256(req.sha256, "sha256");
        const size = toNumber(req.size);
        if (size < 0) throw new StowageError(Code.InvalidArgument, `size must be at least 0, got ${String(size)} (contract 5.8.2)`);
        const transfer = direct(call, req.plugin);
        const answer = await transfer.beginPut(
          {
            bucket: req.bucket,
            key: req.key,
            size,
            contentType: req.contentType,
            metadata: req.metadata,
            sha256: req.sha256.length > 0 ? req.sha256 : undefined,
          },
          { signal },
        );
        if (isDeclined(answer)) return create(BeginPutResponseSchema, { result: { case: "declined", value: { reason: answer.declined } } });
        if (!Number.isSafeInteger(answer.partSize) || answer.partSize < 1) throw new StowageError(Code.Internal, `the plugin's upload plan has part size ${String(answer.partSize)}`);
        checkExpiry(answer.expiresAt, "the plugin's upload plan", false);
        const sealed = { ...answer, uploadId: uploads.seal(req.bucket, req.key, size, answer, req.sha256.length > 0 ? req.sha256 : undefined) };
        return create(BeginPutResponseSchema, { result: { case: "plan", value: putPlanToWire(sealed) } });
      });
    },

    signPart(call: ServerUnaryCall<SignPartRequest, SignPartResponse>, callback: sendUnaryData<SignPartResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        const transfer = direct(call, req.plugin);
        const upload = uploads.open(req.uploadId, req.bucket, req.key);
        if (upload === undefined) throw new StowageError(Code.FailedPrecondition, "unknown upload");
        const offset = toNumber(req.offset);
        const size = toNumber(req.size);
        checkPart(upload, req.partNumber, offset, size, req.checksum);
        const signed = await transfer.signPart(
          { bucket: req.bucket, key: req.key, uploadId: upload.uploadId, partNumber: req.partNumber, offset, size, checksum: req.checksum },
          { signal },
        );
        checkHttpRequest(signed.request, `the plugin's request for part ${String(req.partNumber)}`);
        checkExpiry(signed.expiresAt, `the plugin's request for part ${String(req.partNumber)}`);
        return create(SignPartResponseSchema, {
          request: { method: signed.request.method, url: signed.request.url, headers: { ...signed.request.headers } },
          expiresAt: timestampFromDate(signed.expiresAt),
        });
      });
    },

    completePut(call: ServerUnaryCall<CompletePutRequest, CompletePutResponse>, callback: sendUnaryData<CompletePutResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        const transfer = direct(call, req.plugin);
        const upload = uploads.open(req.uploadId, req.bucket, req.key);
        if (upload === undefined) throw new StowageError(Code.FailedPrecondition, "unknown upload");
        requireSha256(req.sha256, "sha256");
        const size = toNumber(req.size);
        const integrity = (message: string): StowageError =>
          new StowageError(Code.DataLoss, `${message}; nothing was stored (contract 5.8.11)`, { reason: Reason.IntegrityMismatch });
        const parts = req.parts.map((p) => ({ partNumber: p.partNumber, size: toNumber(p.size), etag: p.etag, checksum: p.checksum }));
        const ref = { bucket: req.bucket, key: req.key, uploadId: upload.uploadId };
        try {
          if (size !== upload.size) throw integrity(`the host sent ${String(size)} bytes; the upload began for ${String(upload.size)}`);
          const count = partCount(upload.size, upload.partSize);
          if (parts.length !== count) throw integrity(`the upload has ${String(count)} parts; the host reported ${String(parts.length)}`);
          parts.forEach((part, index) => {
            const expected = index + 1 < count ? upload.partSize : upload.size - index * upload.partSize;
            if (part.partNumber !== index + 1 || part.size !== expected) {
              throw integrity(`part ${String(index + 1)} of ${String(expected)} bytes was reported as part ${String(part.partNumber)} of ${String(part.size)} bytes`);
            }
            if (part.checksum.length !== PART_CHECKSUM_BYTES[upload.partChecksum]) throw integrity(`part ${String(index + 1)} was reported without its ${upload.partChecksum} checksum`);
          });
          if (upload.sha256 !== undefined && !Buffer.from(req.sha256).equals(Buffer.from(upload.sha256, "base64"))) {
            throw integrity(req.sha256.length === 0 ? "the host sent no SHA-256 for a body BeginPut gave one for" : "the body's SHA-256 differs from the one BeginPut gave");
          }
          const sha256 = req.sha256.length > 0 ? req.sha256 : undefined;
          const stored = await transfer.completePut({ ...ref, parts, size, sha256 }, { signal });
          uploads.finish(req.uploadId, true);
          return create(CompletePutResponseSchema, { size: BigInt(stored.size), etag: stored.etag, sha256: req.sha256 });
        } catch (error) {
          // A refused completion leaves no upload open (clause 5.8.11); a cancelled one may be retried.
          const failure = StowageError.from(error);
          if (failure.code === Code.DataLoss || failure.code === Code.InvalidArgument) {
            uploads.finish(req.uploadId);
            await transfer.abortPut(ref, { signal }).catch((abortError: unknown) => {
              deps.logger.warn({ error: StowageError.from(abortError).rawMessage }, "aborting a refused upload failed; the store expires it");
            });
          }
          throw error;
        }
      });
    },

    abortPut(call: ServerUnaryCall<AbortPutRequest, AbortPutResponse>, callback: sendUnaryData<AbortPutResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        const transfer = direct(call, req.plugin);
        // Unknown, foreign-process and finished uploads are success (clause 5.8.12).
        const upload = uploads.open(req.uploadId, req.bucket, req.key, true);
        // A completed upload's object is never touched by an abort (clause 5.8.12).
        if (upload !== undefined && !uploads.completed(req.uploadId)) {
          await transfer.abortPut({ bucket: req.bucket, key: req.key, uploadId: upload.uploadId }, { signal });
          uploads.finish(req.uploadId);
        }
        return create(AbortPutResponseSchema);
      });
    },
  };
}
