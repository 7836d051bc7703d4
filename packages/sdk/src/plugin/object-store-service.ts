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
import { pump, streamChunks } from "../wire/chunks.js";
import type { ByteSource } from "../types.js";
import { objectInfoToWire, signedUrlMethodFromWire, toNumber } from "../wire/convert.js";
import { rechunk, verifiedBody, type BodyResult } from "./body.js";
import type { DataChannelServer } from "./data-channel-server.js";
import type { PluginRegistry } from "./registry.js";
import { handleUnary, type ServiceDeps, reportError } from "./handler.js";

const KIND = "object-store";

function requireNonEmpty(value: string, field: string): void {
  if (value === "") throw new StowageError(Code.InvalidArgument, `${field} is required`, { reason: Reason.InvalidName });
}

/** The implementation object for `grpc.Server.addService(serviceDefinition(ObjectStoreService), …)`. */
export function objectStoreService(registry: PluginRegistry, dataChannel: DataChannelServer | undefined, deps: ServiceDeps): UntypedServiceImplementation {
  return {
    init(call: ServerUnaryCall<ObjectStoreServiceInitRequest, ObjectStoreServiceInitResponse>, callback: sendUnaryData<ObjectStoreServiceInitResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        await registry.init(KIND, req.plugin, req.config, signal);
        return create(ObjectStoreServiceInitResponseSchema);
      });
    },

    headObject(call: ServerUnaryCall<HeadObjectRequest, HeadObjectResponse>, callback: sendUnaryData<HeadObjectResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const info = await registry.get(KIND, req.plugin).headObject({ bucket: req.bucket, key: req.key }, { signal });
        return create(HeadObjectResponseSchema, info === undefined ? { exists: false } : { exists: true, object: objectInfoToWire(info) });
      });
    },

    deleteObject(call: ServerUnaryCall<DeleteObjectRequest, DeleteObjectResponse>, callback: sendUnaryData<DeleteObjectResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        await registry.get(KIND, req.plugin).deleteObject({ bucket: req.bucket, key: req.key }, { signal });
        return create(DeleteObjectResponseSchema);
      });
    },

    createSignedURL(call: ServerUnaryCall<CreateSignedURLRequest, CreateSignedURLResponse>, callback: sendUnaryData<CreateSignedURLResponse>) {
      handleUnary(call, callback, deps, async (req, signal) => {
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const ttlSeconds = toNumber(req.ttlSeconds);
        if (ttlSeconds < 1) throw new StowageError(Code.InvalidArgument, `ttl_seconds must be at least 1, got ${String(ttlSeconds)}`);
        const signed = await registry
          .get(KIND, req.plugin)
          .createSignedUrl({ bucket: req.bucket, key: req.key, method: signedUrlMethodFromWire(req.method), ttlSeconds }, { signal });
        return create(CreateSignedURLResponseSchema, { url: signed.url, expiresAt: timestampFromDate(signed.expiresAt) });
      });
    },

    putObject(call: ServerReadableStream<PutObjectRequest, PutObjectResponse>, callback: sendUnaryData<PutObjectResponse>) {
      const scope = deps.scope(call);
      const messages = call[Symbol.asyncIterator]() as AsyncIterator<PutObjectRequest>;
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
        const store = registry.get(KIND, header.plugin);
        const useChannel = header.dataChannelToken.length > 0;
        let raw: ByteSource;
        let trailerSize: () => Promise<number | undefined>;
        if (useChannel) {
          if (dataChannel === undefined) {
            throw new StowageError(Code.Unimplemented, "this plugin offers no data channel; send the body in chunk messages", { reason: Reason.Unsupported });
          }
          const claimed = await dataChannel.claim(header.dataChannelToken, scope.signal);
          socket = claimed;
          raw = streamChunks(claimed);
          trailerSize = async () => {
            const next = await messages.next();
            if (next.done === true || next.value.part.case !== "trailer") {
              throw new StowageError(Code.DataLoss, "the PutObject stream ended without a trailer after a data-channel body; nothing was stored", {
                reason: Reason.IntegrityMismatch,
              });
            }
            return toNumber(next.value.part.value.size);
          };
        } else {
          let trailer: number | undefined;
          raw = {
            async *[Symbol.asyncIterator]() {
              for (;;) {
                const next = await messages.next();
                if (next.done === true) return;
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
          scope.done();
          // The body was read to its end: the connection has done its work (clause 2.6.5).
          socket?.destroy();
          callback(null, response);
        },
        (error: unknown) => {
          scope.done();
          if (socket !== undefined) socket.destroy();
          else if (token !== undefined) dataChannel?.discard(token);
          callback(reportError(bodyError ?? error, call.getPath(), deps.logger));
        },
      );
    },

    getObject(call: ServerWritableStream<GetObjectRequest, GetObjectResponse>) {
      const scope = deps.scope(call);
      let socket: Socket | undefined;
      const run = async (): Promise<void> => {
        const req = call.request;
        requireNonEmpty(req.bucket, "bucket");
        requireNonEmpty(req.key, "key");
        const store = registry.get(KIND, req.plugin);
        const useChannel = req.dataChannelToken.length > 0;
        if (useChannel && dataChannel === undefined) {
          throw new StowageError(Code.Unimplemented, "this plugin offers no data channel", { reason: Reason.Unsupported });
        }
        const range =
          req.range === undefined
            ? undefined
            : { offset: toNumber(req.range.offset), length: req.range.length === undefined ? undefined : toNumber(req.range.length) };
        if (range !== undefined && range.offset < 0) throw new StowageError(Code.InvalidArgument, "range offset must be at least 0", { reason: Reason.InvalidRange });
        const out = await store.getObject({ bucket: req.bucket, key: req.key, range }, { signal: scope.signal });
        const abortBody = (): void => {
          out.body.destroy();
        };
        scope.signal.addEventListener("abort", abortBody, { once: true });
        try {
          call.write(
            create(GetObjectResponseSchema, {
              part: {
                case: "header",
                value: { object: objectInfoToWire(out.object), contentLength: BigInt(out.contentLength), offset: BigInt(out.offset) },
              },
            }),
          );
          let sent = 0;
          if (useChannel && dataChannel !== undefined) {
            socket = await dataChannel.claim(req.dataChannelToken, scope.signal);
            sent = await pump(streamChunks(out.body), socket, scope.signal);
          } else {
            for await (const chunk of rechunk(streamChunks(out.body), MAX_CHUNK_BYTES)) {
              sent += chunk.byteLength;
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
          call.write(create(GetObjectResponseSchema, { part: { case: "trailer", value: { size: BigInt(sent) } } }));
        } finally {
          scope.signal.removeEventListener("abort", abortBody);
        }
      };
      run().then(
        () => {
          scope.done();
          // pump() has ended our side; the host closes its side when it has read the trailer.
          socket?.destroySoon();
          call.end();
        },
        (error: unknown) => {
          scope.done();
          // A call that failed before its body moved never claimed the connection the host opened.
          if (socket !== undefined) socket.destroy();
          else dataChannel?.discard(call.request.dataChannelToken);
          call.emit("error", reportError(error, call.getPath(), deps.logger));
        },
      );
    },

    listObjects(call: ServerWritableStream<ListObjectsRequest, ListObjectsResponse>) {
      const scope = deps.scope(call);
      const run = async (): Promise<void> => {
        const req = call.request;
        requireNonEmpty(req.bucket, "bucket");
        if (req.pageSize < 0 || req.pageSize > 1000) throw new StowageError(Code.InvalidArgument, `page_size must be between 0 and 1000, got ${String(req.pageSize)}`);
        const pages = registry.get(KIND, req.plugin).listObjects(
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
          if (!call.write(message)) await once(call, "drain", { signal: scope.signal });
          count += 1;
          if (req.maxPages > 0 && count >= req.maxPages) break;
        }
      };
      run().then(
        () => {
          scope.done();
          call.end();
        },
        (error: unknown) => {
          scope.done();
          call.emit("error", reportError(error, call.getPath(), deps.logger));
        },
      );
    },
  };
}
