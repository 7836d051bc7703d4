/**
 * The plugin side of Velero interop: the same plugin executable, started by Velero (`VELERO_PLUGIN=hello`),
 * serves Velero's protocol — go-plugin handshake with app version 2, health, GRPCController,
 * GRPCStdio, `generated.PluginLister`, `generated.ObjectStore` and `generated.VolumeSnapshotter` —
 * backed by the very same ObjectStore/BlockStore implementations. See docs/velero.md.
 */
import { once } from "node:events";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import {
  type sendUnaryData,
  type ServerReadableStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { Code, StowageError } from "../../errors.js";
import {
  BytesSchema,
  CreateSignedURLResponseSchema,
  ListCommonPrefixesResponseSchema,
  ListObjectsResponseSchema,
  ObjectExistsResponseSchema,
  ObjectStore as VeleroObjectStoreService,
  type Bytes,
  type CreateSignedURLRequest,
  type CreateSignedURLResponse,
  type DeleteObjectRequest,
  type GetObjectRequest,
  type ListCommonPrefixesRequest,
  type ListCommonPrefixesResponse,
  type ListObjectsRequest,
  type ListObjectsResponse,
  type ObjectExistsRequest,
  type ObjectExistsResponse,
  type ObjectStoreInitRequest,
  type PutObjectRequest,
} from "../../gen/generated/ObjectStore_pb.js";
import { ListPluginsResponseSchema, PluginLister, type ListPluginsResponse } from "../../gen/generated/PluginLister_pb.js";
import { EmptySchema, type Empty } from "../../gen/generated/Shared_pb.js";
import {
  CreateSnapshotResponseSchema,
  CreateVolumeResponseSchema,
  GetVolumeIDResponseSchema,
  GetVolumeInfoResponseSchema,
  SetVolumeIDResponseSchema,
  VolumeSnapshotter,
  type CreateSnapshotRequest,
  type CreateSnapshotResponse,
  type CreateVolumeRequest,
  type CreateVolumeResponse,
  type DeleteSnapshotRequest,
  type GetVolumeIDRequest,
  type GetVolumeIDResponse,
  type GetVolumeInfoRequest,
  type GetVolumeInfoResponse,
  type SetVolumeIDRequest,
  type SetVolumeIDResponse,
  type VolumeSnapshotterInitRequest,
} from "../../gen/generated/VolumeSnapshotter_pb.js";
import type { Logger } from "../../logging.js";
import { callScope, type CallScope } from "../../plugin/call-context.js";
import type { PluginRegistry } from "../../plugin/registry.js";
import type { ServeProtocolAdapter } from "../../plugin/protocol-adapter.js";
import type { ByteSource, PluginConfig, PluginDescriptor, PluginKind } from "../../types.js";
import { serviceDefinition } from "../../wire/rpc.js";
import { VELERO_APP_PROTOCOL_VERSION, VELERO_CHUNK_BYTES, VELERO_COOKIE_KEY, VELERO_COOKIE_VALUE, VELERO_PROTOCOL, VELERO_INJECTED_KEYS, VELERO_KIND_OBJECT_STORE, VELERO_KIND_VOLUME_SNAPSHOTTER } from "./constants.js";
import { toVeleroStatus } from "./errors.js";

/**
 * Whether this process is a Node single executable application. Looked up at run time, not
 * imported: other runtimes that serve plugins (Bun, Deno) have no `node:sea`.
 */
function isSingleExecutable(): boolean {
  try {
    return process.getBuiltinModule("node:sea")?.isSea() ?? false;
  } catch {
    return false;
  }
}

/**
 * The path Velero can re-execute: the started script (node), or the executable itself when the
 * plugin is a single executable (there `argv[1]` is the name it was started by, not a script).
 */
export function reexecCommand(argv: readonly string[] = process.argv, execPath: string = process.execPath, singleExecutable: boolean = isSingleExecutable()): string {
  if (singleExecutable) return execPath;
  const script = argv[1];
  return script !== undefined && script !== "" && !script.startsWith("-") ? resolve(script) : execPath;
}

/** Velero's kind string for one of ours. */
export function veleroKind(kind: PluginKind): string {
  return kind === "object-store" ? VELERO_KIND_OBJECT_STORE : VELERO_KIND_VOLUME_SNAPSHOTTER;
}

/**
 * Velero always injects `bucket`, `prefix` and, when configured, `caCert` and `credentialsFile`
 * (Velero's own validation accepts the first three for every plugin). Keys of these a plugin does not
 * declare are dropped so its strict config validation does not refuse them; Velero already puts the
 * prefix into every key it sends.
 */
export function veleroConfig(config: PluginConfig, descriptor: PluginDescriptor | undefined): Record<string, string> {
  const declared = new Set((descriptor?.configKeys ?? []).map((k) => k.name));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) {
    if (VELERO_INJECTED_KEYS.includes(k) && declared.size > 0 && !declared.has(k)) continue;
    out[k] = v;
  }
  return out;
}

interface Ctx {
  readonly registry: PluginRegistry;
  readonly logger: Logger;
  readonly shutdown: AbortSignal;
  readonly descriptors: readonly PluginDescriptor[];
}

function scopeOf(ctx: Ctx, call: Parameters<typeof callScope>[0]): CallScope {
  return callScope(call, ctx.shutdown);
}

/** Runs a unary handler with Velero's error shape. */
function unary<Req, Res>(ctx: Ctx, call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>, fn: (req: Req, signal: AbortSignal) => Promise<Res>): void {
  const scope = scopeOf(ctx, call);
  // Synchronous throws become rejections with the original error (so a bug still reads as a panic).
  const promise = Promise.resolve().then(() => fn(call.request, scope.signal));
  promise.then(
    (res) => {
      scope.done();
      callback(null, res);
    },
    (error: unknown) => {
      scope.done();
      callback(toVeleroStatus(error, call.getPath(), ctx.logger));
    },
  );
}

async function collectListing(ctx: Ctx, plugin: string, bucket: string, prefix: string, delimiter: string | undefined, signal: AbortSignal): Promise<{ keys: string[]; prefixes: string[] }> {
  const store = ctx.registry.get("object-store", plugin);
  const keys: string[] = [];
  const prefixes: string[] = [];
  let pageToken: string | undefined;
  for (;;) {
    let next = "";
    for await (const page of store.listObjects({ bucket, prefix, delimiter, pageSize: 1000, ...(pageToken === undefined ? {} : { pageToken }) }, { signal })) {
      for (const o of page.objects) keys.push(o.key);
      prefixes.push(...page.commonPrefixes);
      next = page.nextPageToken;
    }
    // A listObjects iteration normally runs to the end; resume if an implementation stopped early.
    if (next === "" || next === pageToken) break;
    pageToken = next;
  }
  return { keys, prefixes: [...new Set(prefixes)] };
}

function objectStoreService(ctx: Ctx): UntypedServiceImplementation {
  const descriptor = (name: string): PluginDescriptor | undefined => ctx.descriptors.find((d) => d.kind === "object-store" && d.name === name);
  return {
    init(call: ServerUnaryCall<ObjectStoreInitRequest, Empty>, callback: sendUnaryData<Empty>) {
      unary(ctx, call, callback, async (req, signal) => {
        await ctx.registry.init("object-store", req.plugin, veleroConfig(req.config, descriptor(req.plugin)), signal);
        return create(EmptySchema);
      });
    },
    putObject(call: ServerReadableStream<PutObjectRequest, Empty>, callback: sendUnaryData<Empty>) {
      const scope = scopeOf(ctx, call);
      const messages = call[Symbol.asyncIterator]() as AsyncIterator<PutObjectRequest>;
      (async () => {
        const first = await messages.next();
        if (first.done === true) {
          // Velero's Go client sends no message at all for an empty body, so the bucket and key are unknown.
          throw new StowageError(Code.InvalidArgument, "PutObject carried no message, so there is no bucket or key: nothing was stored (Velero's client sends no message for an empty body)");
        }
        const { plugin, bucket, key } = first.value;
        const store = ctx.registry.get("object-store", plugin);
        const head = first.value.body;
        const body: ByteSource = {
          async *[Symbol.asyncIterator]() {
            if (head.byteLength > 0) yield head;
            for (;;) {
              const next = await messages.next();
              if (next.done === true) {
                // A cancelled stream must not read as a complete body. grpc-js ends the message stream
                // of a cancelled call like a half-closed one and flags the cancellation a moment later,
                // so wait briefly for that flag (this costs each Velero-mode PutObject up to 20 ms).
                if (!call.cancelled && !scope.signal.aborted) {
                  const stopWaiting = new AbortController();
                  await Promise.race([once(call, "cancelled", { signal: stopWaiting.signal }).catch(() => undefined), sleep(20)]);
                  stopWaiting.abort();
                }
                if (call.cancelled || scope.signal.aborted) throw new StowageError(Code.Canceled, "the caller cancelled the upload; nothing was stored");
                return;
              }
              if (next.value.body.byteLength > 0) yield next.value.body;
            }
          },
        };
        await store.putObject({ bucket, key, body }, { signal: scope.signal });
        return create(EmptySchema);
      })().then(
        (res) => {
          scope.done();
          callback(null, res);
        },
        (error: unknown) => {
          scope.done();
          callback(toVeleroStatus(error, call.getPath(), ctx.logger));
        },
      );
    },
    objectExists(call: ServerUnaryCall<ObjectExistsRequest, ObjectExistsResponse>, callback: sendUnaryData<ObjectExistsResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const info = await ctx.registry.get("object-store", req.plugin).headObject({ bucket: req.bucket, key: req.key }, { signal });
        return create(ObjectExistsResponseSchema, { exists: info !== undefined });
      });
    },
    getObject(call: ServerWritableStream<GetObjectRequest, Bytes>) {
      const scope = scopeOf(ctx, call);
      (async () => {
        const req = call.request;
        const out = await ctx.registry.get("object-store", req.plugin).getObject({ bucket: req.bucket, key: req.key }, { signal: scope.signal });
        try {
          for await (const chunk of out.body as AsyncIterable<Uint8Array>) {
            for (let offset = 0; offset < chunk.byteLength; offset += VELERO_CHUNK_BYTES) {
              const data = chunk.subarray(offset, Math.min(chunk.byteLength, offset + VELERO_CHUNK_BYTES));
              if (!call.write(create(BytesSchema, { data }))) await once(call, "drain", { signal: scope.signal });
            }
          }
        } finally {
          out.body.destroy();
        }
        call.end();
      })().then(
        () => {
          scope.done();
        },
        (error: unknown) => {
          scope.done();
          call.emit("error", toVeleroStatus(error, call.getPath(), ctx.logger));
        },
      );
    },
    listCommonPrefixes(call: ServerUnaryCall<ListCommonPrefixesRequest, ListCommonPrefixesResponse>, callback: sendUnaryData<ListCommonPrefixesResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const { prefixes } = await collectListing(ctx, req.plugin, req.bucket, req.prefix, req.delimiter === "" ? "/" : req.delimiter, signal);
        return create(ListCommonPrefixesResponseSchema, { prefixes });
      });
    },
    listObjects(call: ServerUnaryCall<ListObjectsRequest, ListObjectsResponse>, callback: sendUnaryData<ListObjectsResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const { keys } = await collectListing(ctx, req.plugin, req.bucket, req.prefix, undefined, signal);
        return create(ListObjectsResponseSchema, { keys });
      });
    },
    deleteObject(call: ServerUnaryCall<DeleteObjectRequest, Empty>, callback: sendUnaryData<Empty>) {
      unary(ctx, call, callback, async (req, signal) => {
        await ctx.registry.get("object-store", req.plugin).deleteObject({ bucket: req.bucket, key: req.key }, { signal });
        return create(EmptySchema);
      });
    },
    createSignedURL(call: ServerUnaryCall<CreateSignedURLRequest, CreateSignedURLResponse>, callback: sendUnaryData<CreateSignedURLResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        // Velero sends a Go time.Duration: nanoseconds.
        const ttlSeconds = Math.max(1, Number(req.ttl / 1_000_000_000n));
        const signed = await ctx.registry.get("object-store", req.plugin).createSignedUrl({ bucket: req.bucket, key: req.key, method: "GET", ttlSeconds }, { signal });
        return create(CreateSignedURLResponseSchema, { url: signed.url });
      });
    },
  };
}

function parsePv(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString("utf8")) as unknown;
  } catch (error) {
    throw new StowageError(Code.InvalidArgument, `persistentVolume is not JSON: ${(error as Error).message}`);
  }
}

function volumeSnapshotterService(ctx: Ctx): UntypedServiceImplementation {
  const descriptor = (name: string): PluginDescriptor | undefined => ctx.descriptors.find((d) => d.kind === "block-store" && d.name === name);
  const store = (name: string) => ctx.registry.get("block-store", name);
  const iops = (value: bigint): number | undefined => (value === 0n ? undefined : Number(value));
  return {
    init(call: ServerUnaryCall<VolumeSnapshotterInitRequest, Empty>, callback: sendUnaryData<Empty>) {
      unary(ctx, call, callback, async (req, signal) => {
        await ctx.registry.init("block-store", req.plugin, veleroConfig(req.config, descriptor(req.plugin)), signal);
        return create(EmptySchema);
      });
    },
    createVolumeFromSnapshot(call: ServerUnaryCall<CreateVolumeRequest, CreateVolumeResponse>, callback: sendUnaryData<CreateVolumeResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const volumeID = await store(req.plugin).createVolumeFromSnapshot(
          { snapshotId: req.snapshotID, volumeType: req.volumeType, zone: req.volumeAZ, iops: iops(req.iops) },
          { signal },
        );
        return create(CreateVolumeResponseSchema, { volumeID });
      });
    },
    getVolumeInfo(call: ServerUnaryCall<GetVolumeInfoRequest, GetVolumeInfoResponse>, callback: sendUnaryData<GetVolumeInfoResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const volume = await store(req.plugin).getVolumeInfo({ volumeId: req.volumeID, zone: req.volumeAZ }, { signal });
        return create(GetVolumeInfoResponseSchema, { volumeType: volume.volumeType, iops: BigInt(Math.trunc(volume.iops ?? 0)) });
      });
    },
    createSnapshot(call: ServerUnaryCall<CreateSnapshotRequest, CreateSnapshotResponse>, callback: sendUnaryData<CreateSnapshotResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const snapshot = await store(req.plugin).createSnapshot({ volumeId: req.volumeID, zone: req.volumeAZ, tags: { ...req.tags } }, { signal });
        return create(CreateSnapshotResponseSchema, { snapshotID: snapshot.snapshotId });
      });
    },
    deleteSnapshot(call: ServerUnaryCall<DeleteSnapshotRequest, Empty>, callback: sendUnaryData<Empty>) {
      unary(ctx, call, callback, async (req, signal) => {
        await store(req.plugin).deleteSnapshot(req.snapshotID, { signal });
        return create(EmptySchema);
      });
    },
    getVolumeID(call: ServerUnaryCall<GetVolumeIDRequest, GetVolumeIDResponse>, callback: sendUnaryData<GetVolumeIDResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const volumeID = await store(req.plugin).getVolumeId(parsePv(req.persistentVolume), { signal });
        return create(GetVolumeIDResponseSchema, { volumeID });
      });
    },
    setVolumeID(call: ServerUnaryCall<SetVolumeIDRequest, SetVolumeIDResponse>, callback: sendUnaryData<SetVolumeIDResponse>) {
      unary(ctx, call, callback, async (req, signal) => {
        const pv = await store(req.plugin).setVolumeId(parsePv(req.persistentVolume), req.volumeID, { signal });
        return create(SetVolumeIDResponseSchema, { persistentVolume: Buffer.from(JSON.stringify(pv), "utf8") });
      });
    },
  };
}

function pluginListerService(ctx: Ctx, command: string): UntypedServiceImplementation {
  const order = (kind: PluginKind): number => (kind === "object-store" ? 0 : 1);
  return {
    listPlugins(_call: ServerUnaryCall<Empty, ListPluginsResponse>, callback: sendUnaryData<ListPluginsResponse>) {
      const plugins = [...ctx.descriptors]
        .sort((a, b) => order(a.kind) - order(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .map((d) => ({ command, kind: veleroKind(d.kind), name: d.name }));
      callback(null, create(ListPluginsResponseSchema, { plugins }));
    },
  };
}

/**
 * Velero's protocol, as `serve()` speaks it when Velero starts the executable: `PluginLister`,
 * `ObjectStore` and `VolumeSnapshotter` over the same implementations. ListPlugins reports the
 * command Velero should re-execute: the absolute path of the script or binary that was started.
 */
export const veleroServeAdapter: ServeProtocolAdapter = {
  name: VELERO_PROTOCOL,
  cookie: { key: VELERO_COOKIE_KEY, value: VELERO_COOKIE_VALUE },
  appVersion: VELERO_APP_PROTOCOL_VERSION,
  peer: "Velero",
  async register(server, { registry, logger, shutdown }) {
    const ctx: Ctx = { registry, logger, shutdown, descriptors: registry.descriptors() };
    server.addService(serviceDefinition(PluginLister), pluginListerService(ctx, reexecCommand()));
    server.addService(serviceDefinition(VeleroObjectStoreService), objectStoreService(ctx));
    server.addService(serviceDefinition(VolumeSnapshotter), volumeSnapshotterService(ctx));
    return undefined;
  },
};
