/**
 * The data channel (docs/contract.md clause 2.6) in process: the plugin end
 * (plugin/data-channel-server.ts) on a real unix socket, and the byte movers both ends use
 * (wire/chunks.ts): token matching in either order, unclaimed and unanswered timeouts, discards,
 * bounded buffering, cancellation of a stalled source, and broken connections. Every wait is on an
 * event; the short timeouts given to the server are the behaviour under test, not a measurement.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable, Writable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Code, StowageError } from "../src/errors.js";
import { silentLogger } from "../src/logging.js";
import { DataChannelServer } from "../src/plugin/data-channel-server.js";
import { DATA_CHANNEL_TOKEN_BYTES } from "../src/protocol/constants.js";
import { ConnectionBrokenError, chunksOf, pump, streamChunks, untilAborted } from "../src/wire/chunks.js";
import { caught, eventually, rejection } from "../src/testing.js";
import { stillReachable } from "./support/gc.js";

let dir: string;
let server: DataChannelServer | undefined;
const sockets: Socket[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "dc-"));
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await server?.close();
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function listen(timeoutMs = 10_000): Promise<DataChannelServer> {
  server = await DataChannelServer.listen(join(dir, "data.sock"), silentLogger, timeoutMs);
  return server;
}

/** Opens a connection as the host does and sends `bytes` (the token, and maybe more). */
async function open(channel: DataChannelServer, bytes: Uint8Array): Promise<Socket> {
  const socket = connect(channel.address.slice("unix:".length));
  sockets.push(socket);
  // The plugin end may reset the connection when it drops it; the tests look at "close".
  socket.on("error", () => undefined);
  await once(socket, "connect");
  socket.write(bytes);
  return socket;
}

/** Resolves when the other end closed `socket`. */
async function closedByPeer(socket: Socket): Promise<void> {
  if (socket.closed) return;
  socket.resume();
  // Not events.once: it rejects on the "error" (ECONNRESET) that may come before "close".
  await new Promise((resolve) => socket.once("close", resolve));
}

const token = (): Buffer => randomBytes(DATA_CHANNEL_TOKEN_BYTES);

/** Every item of an async iterable (Array.fromAsync is beyond the ES2024 library this repository targets). */
async function all<T>(source: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of source) items.push(item);
  return items;
}

describe("DataChannelServer", () => {
  it("advertises unix:<path> and removes the socket file when closed", async () => {
    const channel = await listen();
    const path = join(dir, "data.sock");
    expect(channel.address).toBe(`unix:${path}`);
    expect(existsSync(path)).toBe(true);
    await channel.close();
    server = undefined;
    expect(existsSync(path)).toBe(false);
  });

  it("hands a connection that arrived first to the call that claims its token, bytes after the token included", async () => {
    const channel = await listen();
    const t = token();
    const socket = await open(channel, Buffer.concat([t, Buffer.from("body bytes")]));
    const claimed = await channel.claim(t, new AbortController().signal);
    socket.end();
    expect((await buffer(claimed)).toString()).toBe("body bytes");
  });

  it("hands a connection that arrives later to a claim already waiting, and only the one with its token", async () => {
    const channel = await listen();
    const mine = token();
    const other = token();
    const claim = channel.claim(mine, new AbortController().signal);
    const stranger = await open(channel, Buffer.concat([other, Buffer.from("not yours")]));
    // The token may arrive in pieces.
    const socket = await open(channel, mine.subarray(0, 5));
    socket.write(Buffer.concat([mine.subarray(5), Buffer.from("yours")]));
    socket.end();
    const claimed = await claim;
    expect((await buffer(claimed)).toString()).toBe("yours");
    // The stranger's connection waits, parked, for its own claim.
    stranger.end();
    expect((await buffer(await channel.claim(other, new AbortController().signal))).toString()).toBe("not yours");
  });

  it("refuses a token of the wrong length with INVALID_ARGUMENT", async () => {
    const channel = await listen();
    const error = await rejection(channel.claim(new Uint8Array(DATA_CHANNEL_TOKEN_BYTES - 1), new AbortController().signal));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain(`${String(DATA_CHANNEL_TOKEN_BYTES)} bytes`);
  });

  it("fails a claim whose connection never comes with UNAVAILABLE", async () => {
    const channel = await listen(50);
    const error = await rejection(channel.claim(token(), new AbortController().signal));
    expect(error).toMatchObject({ code: Code.Unavailable, rawMessage: "the host never opened the data channel connection for this call" });
  });

  it("fails a waiting claim with the call's cancellation, and a connection arriving later is parked, not handed to it", async () => {
    const channel = await listen();
    const controller = new AbortController();
    const t = token();
    const claim = channel.claim(t, controller.signal);
    controller.abort(new StowageError(Code.Canceled, "the host cancelled the call"));
    expect(await rejection(claim)).toMatchObject({ code: Code.Canceled, rawMessage: "the host cancelled the call" });
    const late = await open(channel, Buffer.concat([t, Buffer.from("late")]));
    late.end();
    expect((await buffer(await channel.claim(t, new AbortController().signal))).toString()).toBe("late");
  });

  it("closes a connection nobody claims, and one that never sends its whole token", async () => {
    const channel = await listen(50);
    const unclaimed = await open(channel, token());
    const partial = await open(channel, Buffer.from("short"));
    await closedByPeer(unclaimed);
    await closedByPeer(partial);
    expect(unclaimed.closed && partial.closed).toBe(true);
  });

  it("on discard closes the call's connection whether it is parked already or arrives later, long before the unclaimed timeout", async () => {
    // The unclaimed-connection timeout (60 s) is far beyond the test's own limit: only the discard can close these.
    const channel = await listen(60_000);
    const arrived = token();
    const socket = await open(channel, arrived);
    channel.discard(arrived);
    await closedByPeer(socket);
    const later = token();
    channel.discard(later);
    const arriving = await open(channel, later);
    await closedByPeer(arriving);
    expect(socket.closed && arriving.closed).toBe(true);
  });

  it("ignores a discard of a malformed token or of a call still waiting for its connection", async () => {
    const channel = await listen();
    channel.discard(new Uint8Array(3));
    const t = token();
    const claim = channel.claim(t, new AbortController().signal);
    channel.discard(t);
    const socket = await open(channel, Buffer.concat([t, Buffer.from("kept")]));
    socket.end();
    expect((await buffer(await claim)).toString()).toBe("kept");
  });

  it("drops every pending connection when closed", async () => {
    const channel = await listen();
    const socket = await open(channel, token());
    const closed = closedByPeer(socket);
    await channel.close();
    server = undefined;
    await closed;
    expect(socket.closed).toBe(true);
  });
});

describe("streamChunks", () => {
  it("yields the chunks as emitted, without concatenating them", async () => {
    const source = new PassThrough();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of streamChunks(source)) seen.push(chunk.toString());
    })();
    for (const text of ["ab", "cde", "f"]) {
      source.write(text);
      await eventually(() => seen.at(-1) === text);
    }
    source.end();
    await reading;
    expect(seen).toEqual(["ab", "cde", "f"]);
  });

  it("pauses the stream while more than highWaterMark bytes wait for the reader, and resumes when read", async () => {
    const source = new PassThrough({ highWaterMark: 1024 });
    const iterator = streamChunks(source, 4096)[Symbol.asyncIterator]();
    for (let i = 0; i < 8; i++) source.write(Buffer.alloc(1024, i));
    await eventually(() => source.isPaused());
    const first = await iterator.next();
    expect(first.value).toEqual(Buffer.alloc(1024, 0));
    // Reading drains the queue below the mark: the stream flows again.
    for (let i = 1; i < 8; i++) expect((await iterator.next()).value).toEqual(Buffer.alloc(1024, i));
    expect(source.isPaused()).toBe(false);
    source.end();
    expect((await iterator.next()).done).toBe(true);
  });

  it("ends at once for a stream that already ended, and throws a stream's error", async () => {
    const empty = Readable.from([]);
    await buffer(empty);
    expect(await all(streamChunks(empty))).toEqual([]);
    const failing = new PassThrough();
    const reading = caught(all(streamChunks(failing)));
    failing.destroy(new Error("disk gone"));
    expect(await reading).toMatchObject({ message: "disk gone" });
  });

  it("throws ERR_STREAM_PREMATURE_CLOSE for a stream that closes before its end", async () => {
    const source = new PassThrough();
    const reading = caught(all(streamChunks(source)));
    source.write("partial");
    source.destroy();
    expect(await reading).toMatchObject({ code: "ERR_STREAM_PREMATURE_CLOSE" });
  });

  it("destroys the stream when the reader stops early", async () => {
    const source = new PassThrough();
    source.write("x");
    for await (const chunk of streamChunks(source)) {
      expect(chunk.toString()).toBe("x");
      break;
    }
    expect(source.destroyed).toBe(true);
  });
});

describe("chunksOf", () => {
  it("passes byte chunks of any iterable through and refuses a chunk that is not bytes with INVALID_ARGUMENT", async () => {
    async function* good(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1]);
      yield Buffer.from([2, 3]);
    }
    expect((await all(chunksOf(good()))).map((c) => [...c])).toEqual([[1], [2, 3]]);
    async function* bad(): AsyncGenerator {
      yield new Uint8Array([1]);
      yield "text";
    }
    const error = await rejection(all(chunksOf(bad() as AsyncIterable<Uint8Array>)));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toBe("the body yielded a string; a body yields Uint8Array (or Buffer) chunks");
  });

  it("reads a byte-mode Readable chunk by chunk", async () => {
    const source = Readable.from([Buffer.from("one"), Buffer.from("two")], { objectMode: false });
    expect((await all(chunksOf(source))).map((c) => Buffer.from(c).toString())).toEqual(["one", "two"]);
  });
});

describe("untilAborted", () => {
  it("ends a wait on a stalled source with the signal's reason, and destroys the source", async () => {
    const stalled = new PassThrough();
    const controller = new AbortController();
    const seen: string[] = [];
    const reading = caught(
      (async () => {
        for await (const chunk of untilAborted(streamChunks(stalled), controller.signal)) seen.push(chunk.toString());
      })(),
    );
    stalled.write("first");
    await eventually(() => seen.length === 1);
    const reason = new StowageError(Code.DeadlineExceeded, "deadline");
    controller.abort(reason);
    expect(await reading).toBe(reason);
    await eventually(() => stalled.destroyed);
  });

  it("keeps no item reachable once it was handed on, while the iteration goes on", async () => {
    const refs: WeakRef<ArrayBuffer>[] = [];
    let release: (() => void) | undefined;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 16; i++) {
        const chunk = new Uint8Array(64 * 1024);
        refs.push(new WeakRef(chunk.buffer));
        yield chunk;
      }
      // Stalls, as a slow body does, until the test lets it end.
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    }
    const iterator = untilAborted(source(), new AbortController().signal)[Symbol.asyncIterator]();
    for (let i = 0; i < 16; i++) expect((await iterator.next()).done).toBe(false);
    const last = iterator.next();
    await eventually(() => release);
    // Racing each item against one long-lived abort promise kept all 16 reachable until the end.
    expect(await stillReachable(refs)).toBeLessThanOrEqual(1);
    release?.();
    expect((await last).done).toBe(true);
  });

  it("fails at once for a signal that already fired, and passes a whole source through otherwise", async () => {
    const controller = new AbortController();
    controller.abort(new StowageError(Code.Canceled, "gone"));
    expect(await rejection(all(untilAborted(new PassThrough(), controller.signal)))).toMatchObject({ rawMessage: "gone" });
    expect(await all(untilAborted(Readable.from(["a", "b"]), new AbortController().signal))).toEqual(["a", "b"]);
  });
});

describe("pump", () => {
  /** A writable that holds what it is given until `release()`, as a full socket does. */
  function slowTarget(highWaterMark: number): { target: Writable; received: Buffer[]; release: () => void; pending: () => number } {
    const received: Buffer[] = [];
    const held: (() => void)[] = [];
    let open = false;
    const target = new Writable({
      highWaterMark,
      write(chunk: Buffer, _encoding, callback) {
        received.push(chunk);
        if (open) callback();
        else held.push(callback);
      },
    });
    return {
      target,
      received,
      release: () => {
        open = true;
        for (const callback of held.splice(0)) callback();
      },
      pending: () => held.length,
    };
  }

  it("writes every chunk, waits for room while the target is full, ends it and returns the byte count", async () => {
    const { target, received, release, pending } = slowTarget(16);
    let pulled = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 10; i++) {
        pulled++;
        yield Buffer.alloc(64, i);
      }
    }
    let waits = 0;
    const pumping = pump(source(), target, undefined, async (wait) => {
      waits++;
      return wait;
    });
    // The target holds the first chunk and signals it is full: the pump stops pulling.
    await eventually(() => pending() === 1);
    expect(pulled).toBe(1);
    release();
    expect(await pumping).toBe(640);
    expect(received.map((c) => c[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(target.writableFinished).toBe(true);
    // Every wait on the target (for room, for the end) went through the wrapper.
    expect(waits).toBeGreaterThanOrEqual(2);
  });

  it("ends a wait for room with the signal's reason", async () => {
    const { target, pending } = slowTarget(16);
    const controller = new AbortController();
    const pumping = caught(pump(Readable.from([Buffer.alloc(64), Buffer.alloc(64)]), target, controller.signal));
    await eventually(() => pending() === 1);
    const reason = new StowageError(Code.Canceled, "cancelled while the socket was full");
    controller.abort(reason);
    expect(await pumping).toBe(reason);
  });

  it("fails with ConnectionBrokenError when the connection fails under the transfer, and with the source's own error when the source fails", async () => {
    const { target, pending } = slowTarget(16);
    const pumping = caught(pump(Readable.from([Buffer.alloc(64), Buffer.alloc(64)]), target));
    await eventually(() => pending() === 1);
    target.destroy(new Error("EPIPE"));
    const broken = await pumping;
    expect(broken).toBeInstanceOf(ConnectionBrokenError);
    expect((broken as Error).message).toBe("EPIPE");

    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from("x");
      throw new StowageError(Code.Unavailable, "the body source failed");
    }
    const sink = new PassThrough();
    sink.resume();
    const error = await caught(pump(failing(), sink));
    expect(error).not.toBeInstanceOf(ConnectionBrokenError);
    expect(error).toMatchObject({ rawMessage: "the body source failed" });
  });
});
