/**
 * Serves stowage.v1.ObjectStoreService on top of {@link ObjectStore} implementations: routing by
 * plugin name, body framing and verification, the data channel, cancellation and error mapping.
 */
import { once } from "node:events";
import type { Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { sendUnaryData, ServerReadableStream, ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import {
  CreateSignedURLResponseSchema,
  DeleteObjectResponseSchema,
  GetObjectResponseSchema,
  HeadObjectResponseSchema,
  ListObjectsResponseSchema,
  ObjectStoreServiceInitResponseSchema,
  PutObjectResponseSchema,
  type CreateSignedURLRequest,
  type CreateSignedURLResponse,
  type DeleteObjectRequest,
  type DeleteObjectResponse,
  type GetObjectRequest,
  type GetObjectResponse,
  type HeadObjectRequest,
  type HeadObjectResponse,
  type ListObjectsRequest,
  type ListObjectsResponse,
  type ObjectStoreServiceInitRequest,
  type ObjectStoreServiceInitResponse,
  type PutObjectRequest,
  type PutObjectResponse,
} from "../gen/stowage/v1/object_store_pb.js";
import { MAX_CHUNK_BYTES } from "../protocol/constants.js";
import { ConnectionBrokenError, pump, streamChunks } from "../wire/chunks.js";
import type { ByteSource } from "../types.js";
import { objectInfoToWire, signedUrlMethodFromWire, toNumber } from "../wire/convert.js";
import { rechunk, verifiedBody, type BodyResult } from "./body.js";
import type { DataChannelServer } from "./data-channel-server.js";
import type { RegistryLookup } from "./protocol-adapter.js";
import type { PluginDescriptor } from "../types.js";
import { throwIfAborted } from "./abort.js";
import { cancellationNotice, cancellationSymptom, endStream, endWithCallback, handleUnary, type ServiceDeps, requireNonEmpty } from "./handler.js";
import { directTransferService } from "./direct-transfer-service.js";
import { lockingPlugins, objectLockService, putProtection } from "./object-lock-service.js";

const KIND = "object-store";

/** The error of a data-channel transfer the host abandoned by closing its connection. */
function hostClosed(what: string, cause: unknown): StowageError {
  return new StowageError(Code.Canceled, `the host closed the data-channel connection ${what}`, { reason: Reason.Cancelled, cause });
}

/**
 * A PUT body read from its data-channel connection. The host closes the connection when it
 * cancels the call (which then also reaches the plugin on the gRPC stream): a reset or early close
 * is a cancellation, not an internal error.
 */
async function* hostClosedIsCancel(source: AsyncIterable<Buffer>, outcome: string): AsyncGenerator<Buffer> {
  try {
    yield* source;
  } catch (error) {
    if (error instanceof StowageError) throw error;
    throw hostClosed(`before the body's end; ${outcome}`, error);
  }
}

/**
 * Writes a GET body to its data-channel connection. A connection that the host reset or closed
 * (it does when it cancels the call or gives up on the body) fails the transfer as CANCELLED; a
 * failure of the body itself passes unchanged.
 */
async function pumpToHost(source: AsyncIterable<Uint8Array>, socket: Socket, signal: AbortSignal): Promise<number> {
  try {
    return await pump(source, socket, signal);
  } catch (error) {
    if (error instanceof ConnectionBrokenError) throw hostClosed("before the body was sent", error.cause ?? error);
    throw error;
  }
}

/**
 * The implementation object for `grpc.Server.addService(serviceDefinition(ObjectStoreService), …)`.
 *
 * @param registryFor - The registry that serves a call (the process's one, or the caller's session in network mode).
 * @param descriptors - Every plugin the executable serves (their capabilities do not change).
 */
export function objectStoreService(
  registryFor: RegistryLookup,
  descriptors: readonly PluginDescriptor[],
  dataChannel: DataChannelServer | undefined,
  deps: ServiceDeps,
): UntypedServiceImplementation {
  const locking = lockingPlugins(descriptors);
  return {
    ...directTransferService(registryFor, descriptors, deps),
    ...objectLockService(registryFor, descriptors, deps),

    init(call: ServerUnaryCall<ObjectStoreServiceInitRequest, ObjectStoreServiceInitResponse>, callback: sendUnaryData<ObjectStoreServiceInitResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        await registryFor(call).init(KIND, req.plugin, req.config, signal);
        return create(ObjectStoreServiceInitResponseSchema);
      });
    },

    headObject(call: ServerUnaryCall<HeadObjectRequest, HeadObjectResponse>, callback: sendUnaryData<HeadObjectResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const info = await registryFor(call).get(KIND, req.plugin).headObject({ bucket: req.bucket, key: req.key }, { signal });
        return create(HeadObjectResponseSchema, info === undefined ? { exists: false } : { exists: true, object: objectInfoToWire(info) });
      });
    },

    deleteObject(call: ServerUnaryCall<DeleteObjectRequest, DeleteObjectResponse>, callback: sendUnaryData<DeleteObjectResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const input = { bucket: req.bucket, key: req.key, ...(req.bypassGovernance ? { bypassGovernance: true } : {}) };
        await registryFor(call).get(KIND, req.plugin).deleteObject(input, { signal });
        return create(DeleteObjectResponseSchema);
      });
    },

    createSignedURL(call: ServerUnaryCall<CreateSignedURLRequest, CreateSignedURLResponse>, callback: sendUnaryData<CreateSignedURLResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const ttlSeconds = toNumber(req.ttlSeconds);
        if (ttlSeconds < 1) throw new StowageError(Code.InvalidArgument, `ttl_seconds must be at least 1, got ${String(ttlSeconds)}`);
        const signed = await registryFor(call)
          .get(KIND, req.plugin)
          .createSignedUrl({ bucket: req.bucket, key: req.key, method: signedUrlMethodFromWire(req.method), ttlSeconds }, { signal });
        return create(CreateSignedURLResponseSchema, { url: signed.url, expiresAt: timestampFromDate(signed.expiresAt) });
      });
    },

    putObject(call: ServerReadableStream<PutObjectRequest, PutObjectResponse>, callback: sendUnaryData<PutObjectResponse>) {
      const scope = deps.scope(call);
      const end = endWithCallback(scope, call, deps, callback);
      const requests = call[Symbol.asyncIterator]() as AsyncIterator<PutObjectRequest>;
      const messages = {
        async next(): Promise<IteratorResult<PutObjectRequest>> {
          try {
            return await requests.next();
          } catch (error) {
            // grpc-js destroys the request stream of a call the host cancelled or abandoned.
            if ((error as NodeJS.ErrnoException).code === "ERR_STREAM_PREMATURE_CLOSE") {
              throw new StowageError(Code.Canceled, "the host closed the PutObject stream before its end; nothing was stored", { reason: Reason.Cancelled, cause: error });
            }
            throw error;
          }
        },
      };
      let socket: Socket | undefined;
      let token: Uint8Array | undefined;
      let bodyError: StowageError | undefined;
      const run = async (): Promise<PutObjectResponse> => {
        const first = await messages.next();
        if (first.done === true || first.value.part.case !== "header") {
          throw new StowageError(Code.InvalidArgument, "the first PutObject message must be a header");
        }
        const header = first.value.part.value;
        token = header.dataChannelToken;
        requireNonEmpty(header.bucket, "bucket");
        requireNonEmpty(header.key, "key");
        if (header.sha256.length !== 0 && header.sha256.length !== 32) {
          throw new StowageError(Code.InvalidArgument, `sha256 must be exactly 32 bytes, got ${String(header.sha256.length)} (contract 5.2.7)`);
        }
        const store = registryFor(call).get(KIND, header.plugin);
        const protection = putProtection(header.plugin, store, locking, header.protection);
        const useChannel = header.dataChannelToken.length > 0;
        let raw: ByteSource;
        let trailerSize: () => Promise<number | undefined>;
        if (useChannel) {
          if (dataChannel === undefined) {
            throw new StowageError(Code.Unimplemented, "this plugin offers no data channel; send the body in chunk messages", { reason: Reason.Unsupported });
          }
          const claimed = await dataChannel.claim(header.dataChannelToken, scope.signal);
          socket = claimed;
          raw = hostClosedIsCancel(streamChunks(claimed), "nothing was stored");
          trailerSize = async () => {
            const next = await messages.next();
            if (next.done === true || next.value.part.case !== "trailer") {
              throw cancellationSymptom(
                new StowageError(Code.DataLoss, "the PutObject stream ended without a trailer after a data-channel body; nothing was stored", {
                  reason: Reason.IntegrityMismatch,
                }),
              );
            }
            return toNumber(next.value.part.value.size);
          };
        } else {
          let trailer: number | undefined;
          raw = {
            async *[Symbol.asyncIterator]() {
              for (;;) {
                const next = await messages.next();
                if (next.done === true) {
                  // gRPC ends a cancelled request stream as if the caller had half-closed it and
                  // reports the cancellation a moment later. Without a trailer to vouch for the
                  // body, wait for that report before the body counts as complete (clause 5.2.4).
                  if (trailer === undefined) await cancellationNotice(scope.signal);
                  throwIfAborted(scope.signal);
                  return;
                }
                const part = next.value.part;
                if (part.case === "chunk") {
                  if (trailer !== undefined) throw new StowageError(Code.InvalidArgument, "a PutObject chunk arrived after the trailer");
                  yield part.value;
                } else if (part.case === "trailer") {
                  trailer = toNumber(part.value.size);
                } else {
                  throw new StowageError(Code.InvalidArgument, "a PutObject stream carries exactly one header, first");
                }
              }
            },
          };
          trailerSize = () => Promise.resolve(trailer);
        }
        const result: BodyResult = { size: 0, sha256: undefined };
        const checked = verifiedBody(raw, { size: header.size === undefined ? undefined : toNumber(header.size), sha256: header.sha256, trailerSize }, result);
        const body: ByteSource = {
          async *[Symbol.asyncIterator]() {
            try {
              yield* checked;
            } catch (error) {
              bodyError = StowageError.from(error);
              throw bodyError;
            }
          },
        };
        const stored = await store.putObject(
          {
            bucket: header.bucket,
            key: header.key,
            body,
            size: header.size === undefined ? undefined : toNumber(header.size),
            contentType: header.contentType,
            metadata: header.metadata,
            sha256: header.sha256.length > 0 ? header.sha256 : undefined,
            ...(protection === undefined ? {} : { protection }),
            ...(header.bypassGovernance ? { bypassGovernance: true } : {}),
          },
          { signal: scope.signal },
        );
        if (bodyError !== undefined) throw bodyError;
        return create(PutObjectResponseSchema, {
          size: BigInt(stored.size),
          etag: stored.etag,
          sha256: stored.sha256 ?? result.sha256 ?? new Uint8Array(),
        });
      };
      run().then(
        (response) => {
          // The body was read to its end: the connection has done its work (clause 2.6.5).
          socket?.destroy();
          end.ok(response);
        },
        (error: unknown) => {
          if (socket !== undefined) socket.destroy();
          else if (token !== undefined) dataChannel?.discard(token);
          end.fail(bodyError ?? error);
        },
      );
    },

    getObject(call: ServerWritableStream<GetObjectRequest, GetObjectResponse>) {
      const scope = deps.scope(call);
      const end = endStream(scope, call, deps);
      let socket: Socket | undefined;
      let claiming: Promise<Socket> | undefined;
      const run = async (): Promise<void> => {
        const req = call.request;
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const store = registryFor(call).get(KIND, req.plugin);
        const useChannel = req.dataChannelToken.length > 0;
        if (useChannel && dataChannel === undefined) {
          throw new StowageError(Code.Unimplemented, "this plugin offers no data channel", { reason: Reason.Unsupported });
        }
        // Claimed as the call arrives, not once the store has answered: the host opened the
        // connection before the call, and a backend slower than the wait for an unclaimed
        // connection would otherwise have it closed as abandoned.
        if (useChannel && dataChannel !== undefined) {
          claiming = dataChannel.claim(req.dataChannelToken, scope.signal);
          // Awaited below; a failure before then is handled where the call fails.
          claiming.catch(() => undefined);
        }
        const range =
          req.range === undefined
            ? undefined
            : { offset: toNumber(req.range.offset), length: req.range.length === undefined ? undefined : toNumber(req.range.length) };
        if (range !== undefined && range.offset < 0) throw new StowageError(Code.InvalidArgument, "range offset must be at least 0");
        const out = await store.getObject({ bucket: req.bucket, key: req.key, range }, { signal: scope.signal });
        // An implementation may destroy its body with an error when the call's signal fires (a
        // cancellation, a deadline), also while nothing reads it: the reader below sees the error,
        // and this listener keeps it from becoming an uncaught exception meanwhile.
        out.body.on("error", () => undefined);
        const abortBody = (): void => {
          out.body.destroy();
        };
        scope.signal.addEventListener("abort", abortBody, { once: true });
        let complete = false;
        try {
          throwIfAborted(scope.signal);
          call.write(
            create(GetObjectResponseSchema, {
              part: {
                case: "header",
                value: { object: objectInfoToWire(out.object), contentLength: BigInt(out.contentLength), offset: BigInt(out.offset) },
              },
            }),
          );
          let sent = 0;
          if (claiming !== undefined) {
            socket = await claiming;
            sent = await pumpToHost(streamChunks(out.body), socket, scope.signal);
          } else {
            for await (const chunk of rechunk(streamChunks(out.body), MAX_CHUNK_BYTES)) {
              sent += chunk.byteLength;
              // A call that already ended (its signal fired) takes no more messages.
              throwIfAborted(scope.signal);
              if (!call.write(create(GetObjectResponseSchema, { part: { case: "chunk", value: chunk } }))) {
                await once(call, "drain", { signal: scope.signal });
              }
            }
          }
          if (sent !== out.contentLength) {
            throw new StowageError(Code.DataLoss, `the plugin produced ${String(sent)} bytes but announced ${String(out.contentLength)}`, {
              reason: Reason.IntegrityMismatch,
            });
          }
          throwIfAborted(scope.signal);
          call.write(create(GetObjectResponseSchema, { part: { case: "trailer", value: { size: BigInt(sent) } } }));
          complete = true;
        } finally {
          scope.signal.removeEventListener("abort", abortBody);
          // A body that will not be read to its end is released now, not when the process exits.
          if (!complete) abortBody();
        }
      };
      run().then(
        () => {
          // pump() has ended our side; the host closes its side when it has read the trailer.
          socket?.destroySoon();
          end.ok(undefined);
        },
        (error: unknown) => {
          // A call that failed before its body moved gives up the connection the host opened,
          // whether it has arrived yet or not.
          if (claiming === undefined) dataChannel?.discard(call.request.dataChannelToken);
          else
            void claiming.then(
              (claimed) => claimed.destroy(),
              () => dataChannel?.discard(call.request.dataChannelToken),
            );
          end.fail(error);
        },
      );
    },

    listObjects(call: ServerWritableStream<ListObjectsRequest, ListObjectsResponse>) {
      const scope = deps.scope(call);
      const end = endStream(scope, call, deps);
      const run = async (): Promise<void> => {
        const req = call.request;
        requireNonEmpty(req.bucket, "bucket");
        if (req.pageSize < 0 || req.pageSize > 1000) throw new StowageError(Code.InvalidArgument, `page_size must be between 0 and 1000, got ${String(req.pageSize)}`);
        if (req.maxPages < 0) throw new StowageError(Code.InvalidArgument, `max_pages must not be negative, got ${String(req.maxPages)} (contract 5.5.9)`);
        const pages = registryFor(call).get(KIND, req.plugin).listObjects(
          {
            bucket: req.bucket,
            prefix: req.prefix,
            delimiter: req.delimiter,
            pageSize: req.pageSize === 0 ? undefined : req.pageSize,
            pageToken: req.pageToken === "" ? undefined : req.pageToken,
            maxPages: req.maxPages === 0 ? undefined : req.maxPages,
          },
          { signal: scope.signal },
        );
        let count = 0;
        for await (const page of pages) {
          const message = create(ListObjectsResponseSchema, {
            objects: page.objects.map(objectInfoToWire),
            commonPrefixes: [...page.commonPrefixes],
            nextPageToken: page.nextPageToken,
          });
          throwIfAborted(scope.signal);
          if (!call.write(message)) await once(call, "drain", { signal: scope.signal });
          count += 1;
          if (req.maxPages > 0 && count >= req.maxPages) break;
        }
      };
      run().then(
        () => {
          end.ok(undefined);
        },
        (error: unknown) => {
          end.fail(error);
        },
      );
    },
  };
}
