/**
 * Flow control of the host's Velero ObjectStore client (protocols/velero/object-store-client.ts)
 * against a fake Velero plugin in process: a grpc-js server serving `generated.ObjectStore` that
 * stops reading a PutObject stream, or whose GetObject reader stops reading, and counts the bytes
 * that reached its gRPC layer (PUT) or that its transport took (GET). The assertions are on bytes
 * only: how far the host reads its source ahead of the plugin (PUT) and how far it reads the
 * plugin's stream ahead of its own consumer (GET). Waits end when the counts stop moving, never on
 * a clock.
 */
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Client, Server, ServerCredentials, credentials, type ServerReadableStream, type ServerWritableStream, type UntypedServiceImplementation, type sendUnaryData } from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BytesSchema, ObjectStore as VeleroObjectStoreService, type GetObjectRequest, type PutObjectRequest } from "../src/gen/generated/ObjectStore_pb.js";
import { EmptySchema, type Empty } from "../src/gen/generated/Shared_pb.js";
import type { LaunchedProcess, ProcessSource } from "../src/host/protocol-adapter.js";
import { RpcChannel } from "../src/host/rpc-channel.js";
import { VELERO_CHUNK_BYTES } from "../src/protocols/velero/constants.js";
import { VeleroObjectStore } from "../src/protocols/velero/object-store-client.js";
import type { PluginDescriptor } from "../src/types.js";
import { serviceDefinition } from "../src/wire/rpc.js";
import { eventually } from "../src/testing.js";
import { stillReachable } from "./support/gc.js";

const MIB = 1024 * 1024;
/** The object each test moves: far more than any buffer on the way. */
const TOTAL = 96 * MIB;
/**
 * How far the host may read its source ahead of the plugin: PutObject messages waiting for the
 * transport (at most 2 MiB once a write resolves, so 3 MiB while one waits), the chunks its body
 * reader queued (it pauses the body once more than 1 MiB wait, so at most 2 MiB of 1 MiB chunks), and
 * 1 MiB to spare. Before the host waited for the transport, grpc-js queued 16 messages of 1 MiB
 * before a write waited, and the host read 18 MiB ahead here.
 */
const PUT_AHEAD_BOUND = 6 * MIB;
const DESCRIPTOR: PluginDescriptor = { name: "fake.stowage.io/velero", kind: "object-store", capabilities: [], description: "", configKeys: [] };

/** Resolves once `count()` has not changed over several polls (the stream in question is stuck). */
async function settled(count: () => number): Promise<number> {
  let last = -1;
  let same = 0;
  while (same < 10) {
    await sleep(20);
    const now = count();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

let server: Server;
let client: Client;
let store: VeleroObjectStore;
/** What the fake plugin does with PutObject and GetObject in the current test. */
let onPut: (call: ServerReadableStream<PutObjectRequest, Empty>, callback: sendUnaryData<Empty>) => void;
let onGet: (call: ServerWritableStream<GetObjectRequest, unknown>) => void;
/** PutObject body bytes that reached the fake plugin's gRPC layer (decoded, read or not). */
let received = 0;

beforeEach(async () => {
  received = 0;
  server = new Server();
  const generated = serviceDefinition(VeleroObjectStoreService);
  const put = generated.putObject;
  if (put === undefined) throw new Error("no putObject in generated.ObjectStore");
  const decode = put.requestDeserialize;
  // Counted where grpc-js decodes a message, that is, once it reached the plugin.
  const definition = {
    ...generated,
    putObject: {
      ...put,
      requestDeserialize: (bytes: Buffer) => {
        const message = decode(bytes) as PutObjectRequest;
        received += message.body.byteLength;
        return message;
      },
    },
  };
  const implementation: UntypedServiceImplementation = {
    init: ((_call: unknown, callback: sendUnaryData<Empty>) => {
      callback(null, create(EmptySchema));
    }) as never,
    putObject: ((call: ServerReadableStream<PutObjectRequest, Empty>, callback: sendUnaryData<Empty>) => {
      onPut(call, callback);
    }) as never,
    getObject: ((call: ServerWritableStream<GetObjectRequest, unknown>) => {
      onGet(call);
    }) as never,
  };
  server.addService(definition, implementation);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) => {
      if (error === null) resolve(bound);
      else reject(error);
    });
  });
  // The channel options of the host's own connection to a plugin (host/plugin-process.ts).
  client = new Client(`127.0.0.1:${String(port)}`, credentials.createInsecure(), {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    "grpc.enable_retries": 0,
  });
  const proc: LaunchedProcess = {
    channel: new RpcChannel(client),
    info: { contractVersion: "velero/2", runtime: "in-process fake", plugins: [DESCRIPTOR], dataChannelAddress: "" },
    pid: process.pid,
    name: "fake",
  };
  const source: ProcessSource = { acquire: () => Promise.resolve(proc), rememberInit: () => undefined };
  store = new VeleroObjectStore(source, DESCRIPTOR, { defaultTimeoutMs: 0, dataChannel: false });
  await store.init({});
});

afterEach(async () => {
  client.close();
  await new Promise<void>((resolve) => {
    server.tryShutdown(() => {
      resolve();
    });
  });
  server.forceShutdown();
});

describe("the host's PutObject to a Velero plugin", () => {
  it("reads the body no further ahead of the plugin than a few messages while the plugin does not read", async () => {
    let reader: ServerReadableStream<PutObjectRequest, Empty> | undefined;
    onPut = (call, callback) => {
      reader = call;
      call.pause();
      call.on("data", () => undefined);
      call.on("end", () => {
        callback(null, create(EmptySchema));
      });
      call.pause();
    };
    const block = Buffer.alloc(VELERO_CHUNK_BYTES, 7);
    let pushed = 0;
    const body = new Readable({
      highWaterMark: MIB,
      read() {
        if (pushed >= TOTAL) {
          this.push(null);
          return;
        }
        pushed += block.length;
        this.push(block);
      },
    });
    // What the host took from the body: what was pushed less what still waits in its buffer.
    const pulled = (): number => pushed - body.readableLength;
    const put = store.putObject({ bucket: "b", key: "k", body, size: TOTAL });
    await settled(() => pulled() + received);
    expect(reader).toBeDefined();
    expect(pulled()).toBeLessThan(TOTAL);
    expect(pulled() - received).toBeLessThanOrEqual(PUT_AHEAD_BOUND);
    // And the stream goes on once the plugin reads: the whole body arrives.
    reader?.resume();
    expect(await put).toMatchObject({ size: TOTAL });
    expect(received).toBe(TOTAL);
  });
});

describe("the host's PutObject to a Velero plugin, memory", () => {
  it("keeps no chunk of the body reachable once the plugin has it, while the upload goes on", async () => {
    onPut = (call, callback) => {
      call.on("data", () => undefined);
      call.on("end", () => {
        callback(null, create(EmptySchema));
      });
    };
    const CHUNKS = 24;
    const refs: WeakRef<ArrayBuffer>[] = [];
    let release: (() => void) | undefined;
    // Fresh 1 MiB chunks, as a file or a network stream gives them; then the body stalls.
    async function* body(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < CHUNKS; i++) {
        const chunk = new Uint8Array(VELERO_CHUNK_BYTES);
        refs.push(new WeakRef(chunk.buffer));
        yield chunk;
      }
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    }
    const put = store.putObject({ bucket: "b", key: "k", body: body() });
    await eventually(() => received === CHUNKS * VELERO_CHUNK_BYTES && release !== undefined);
    // Before, every chunk stayed reachable until the upload ended (24 here; a whole 512 MiB body
    // in the benchmark); now at most the last one, which the body's generator may still hold.
    expect(await stillReachable(refs)).toBeLessThanOrEqual(1);
    release?.();
    expect(await put).toMatchObject({ size: CHUNKS * VELERO_CHUNK_BYTES });
  });
});

describe("the host's PutObject messages", () => {
  it("are what protobuf-es decodes: plugin, bucket, key and the body, whatever the chunk sizes and however many", async () => {
    const seen: PutObjectRequest[] = [];
    onPut = (call, callback) => {
      call.on("data", (message: PutObjectRequest) => {
        seen.push(message);
      });
      call.on("end", () => {
        callback(null, create(EmptySchema));
      });
    };
    // Lengths around the varint boundaries of the body field's length, and past one message.
    const sizes = [0, 1, 127, 128, 16_383, 16_384, VELERO_CHUNK_BYTES + 1];
    const chunks = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    const body = Buffer.concat(chunks);
    expect(await store.putObject({ bucket: "a-bucket", key: "a/key", body: Readable.from(chunks) })).toMatchObject({ size: body.length });
    expect(seen.every((m) => m.plugin === DESCRIPTOR.name && m.bucket === "a-bucket" && m.key === "a/key" && m.$unknown === undefined)).toBe(true);
    expect(Buffer.concat(seen.map((m) => m.body)).equals(body)).toBe(true);
    // An empty body is one message with no body.
    seen.length = 0;
    await store.putObject({ bucket: "a-bucket", key: "empty", body: Readable.from([]) });
    expect(seen.map((m) => [m.key, m.body.length])).toEqual([["empty", 0]]);
  });

  it("each carry their own bytes while their buffers are reused, with a plugin that reads slowly", async () => {
    const seen: PutObjectRequest[] = [];
    onPut = (call, callback) => {
      // One message per few turns of the event loop: the host's writes wait, and messages queue
      // in grpc-js while the buffers of earlier ones come back for reuse.
      call.on("data", (message: PutObjectRequest) => {
        seen.push(message);
        call.pause();
        setTimeout(() => call.resume(), 2);
      });
      call.on("end", () => {
        callback(null, create(EmptySchema));
      });
    };
    const blocks = Array.from({ length: 24 }, (_, i) => Buffer.alloc(VELERO_CHUNK_BYTES, 0x40 + i));
    await store.putObject({ bucket: "a-bucket", key: "many", body: Readable.from(blocks) });
    expect(seen.map((m) => [m.body.length, m.body[0], m.body.every((b) => b === m.body[0])])).toEqual(blocks.map((b) => [b.length, b[0], true]));
  });
});

describe("the host's GetObject from a Velero plugin", () => {
  it("takes the plugin's stream no faster than its caller reads the body", async () => {
    /** Body bytes the fake plugin's transport took (their write callback ran). */
    let flushed = 0;
    onGet = (call) => {
      const data = Buffer.alloc(VELERO_CHUNK_BYTES, 9);
      void (async () => {
        for (let sent = 0; sent < TOTAL; sent += data.length) {
          const room = call.write(create(BytesSchema, { data }), () => {
            flushed += data.length;
          });
          if (!room) await new Promise((resolve) => call.once("drain", resolve));
        }
        call.end();
      })();
    };
    const out = await store.getObject({ bucket: "b", key: "k" });
    // grpc-js keeps up to 16 messages in its readable stream, and the body's Readable up to 1 MiB
    // and one more chunk: the host holds at most about 18 MiB that its caller has not read.
    const bound = 16 * VELERO_CHUNK_BYTES + 3 * MIB;
    expect(await settled(() => flushed)).toBeLessThanOrEqual(bound);
    const chunks = out.body[Symbol.asyncIterator]();
    let consumed = 0;
    while (consumed < 8 * MIB) {
      const next = await chunks.next();
      if (next.done === true) throw new Error("the body ended early");
      consumed += (next.value as Buffer).length;
    }
    expect((await settled(() => flushed)) - consumed).toBeLessThanOrEqual(bound);
    expect(flushed).toBeLessThan(TOTAL);
    // Reading on, the whole object arrives.
    for (;;) {
      const next = await chunks.next();
      if (next.done === true) break;
      consumed += (next.value as Buffer).length;
    }
    expect(consumed).toBe(TOTAL);
  });
});
