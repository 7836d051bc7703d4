import { createServer, type Server, type Socket } from "node:net";
import { rm } from "node:fs/promises";
import { Code, StowageError } from "../errors.js";
import { DATA_CHANNEL_TOKEN_BYTES } from "../protocol/constants.js";
import type { Logger } from "../logging.js";

interface Waiter {
  resolve(socket: Socket): void;
  reject(error: Error): void;
}

/**
 * The plugin end of the data channel (docs/contract.md clause 2.6): a unix socket whose
 * connections each start with a 16-byte token; a gRPC call carrying the same token claims the
 * connection. Either side may arrive first; unclaimed connections and unanswered claims time out.
 */
export class DataChannelServer {
  readonly #server: Server;
  readonly #parked = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();
  readonly #waiting = new Map<string, Waiter>();
  /** Tokens of calls that ended without claiming their connection; a late arrival is closed at once. */
  readonly #discarded = new Map<string, NodeJS.Timeout>();
  readonly #path: string;
  readonly #timeoutMs: number;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server, path: string, timeoutMs: number) {
    this.#server = server;
    this.#path = path;
    this.#timeoutMs = timeoutMs;
  }

  /** Listens on `path`. */
  static async listen(path: string, logger: Logger, timeoutMs = 10_000): Promise<DataChannelServer> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, highWaterMark: 1024 * 1024 });
    const channel = new DataChannelServer(server, path, timeoutMs);
    server.on("connection", (socket) => {
      channel.#sockets.add(socket);
      socket.once("close", () => channel.#sockets.delete(socket));
      channel.#accept(socket, logger);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return channel;
  }

  /** The address to advertise: `unix:<path>`. */
  get address(): string {
    return `unix:${this.#path}`;
  }

  #accept(socket: Socket, logger: Logger): void {
    const chunks: Buffer[] = [];
    let length = 0;
    const guard = setTimeout(() => socket.destroy(), this.#timeoutMs);
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < DATA_CHANNEL_TOKEN_BYTES) return;
      socket.off("data", onData);
      socket.pause();
      clearTimeout(guard);
      const all = Buffer.concat(chunks);
      const token = all.subarray(0, DATA_CHANNEL_TOKEN_BYTES).toString("hex");
      const rest = all.subarray(DATA_CHANNEL_TOKEN_BYTES);
      if (rest.length > 0) socket.unshift(rest);
      const discarded = this.#discarded.get(token);
      if (discarded !== undefined) {
        clearTimeout(discarded);
        this.#discarded.delete(token);
        socket.destroy();
        return;
      }
      const waiter = this.#waiting.get(token);
      if (waiter !== undefined) {
        this.#waiting.delete(token);
        waiter.resolve(socket);
        return;
      }
      const timer = setTimeout(() => {
        this.#parked.delete(token);
        logger.debug({ token: token.slice(0, 8) }, "data channel connection was never claimed; closing it");
        socket.destroy();
      }, this.#timeoutMs);
      this.#parked.set(token, { socket, timer });
    };
    socket.on("data", onData);
    socket.on("error", () => {
      clearTimeout(guard);
    });
  }

  /** Claims the connection that sent `token`, waiting for it if it has not arrived yet. */
  claim(token: Uint8Array, signal: AbortSignal): Promise<Socket> {
    if (token.length !== DATA_CHANNEL_TOKEN_BYTES) {
      return Promise.reject(new StowageError(Code.InvalidArgument, `data channel tokens are ${String(DATA_CHANNEL_TOKEN_BYTES)} bytes`));
    }
    const key = Buffer.from(token).toString("hex");
    const parked = this.#parked.get(key);
    if (parked !== undefined) {
      this.#parked.delete(key);
      clearTimeout(parked.timer);
      return Promise.resolve(parked.socket);
    }
    return new Promise<Socket>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        reject(new StowageError(Code.Unavailable, "the host never opened the data channel connection for this call"));
      }, this.#timeoutMs);
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#waiting.delete(key);
        reject(StowageError.from(signal.reason));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiting.set(key, {
        resolve: (socket) => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          resolve(socket);
        },
        reject,
      });
    });
  }

  /**
   * Gives up the connection of a call that ended without claiming it (it failed before its body
   * moved): a parked connection is closed now, one that arrives later is closed on arrival, so no
   * descriptor waits for the unclaimed-connection timeout.
   */
  discard(token: Uint8Array): void {
    if (token.length !== DATA_CHANNEL_TOKEN_BYTES) return;
    const key = Buffer.from(token).toString("hex");
    const parked = this.#parked.get(key);
    if (parked !== undefined) {
      this.#parked.delete(key);
      clearTimeout(parked.timer);
      parked.socket.destroy();
      return;
    }
    if (this.#waiting.has(key) || this.#discarded.has(key)) return;
    const timer = setTimeout(() => this.#discarded.delete(key), this.#timeoutMs);
    timer.unref();
    this.#discarded.set(key, timer);
  }

  /** Stops listening and drops every pending connection. */
  async close(): Promise<void> {
    for (const { socket, timer } of this.#parked.values()) {
      clearTimeout(timer);
      socket.destroy();
    }
    this.#parked.clear();
    for (const timer of this.#discarded.values()) clearTimeout(timer);
    this.#discarded.clear();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await rm(this.#path, { force: true });
  }
}
