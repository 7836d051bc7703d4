/**
 * A fault-injecting HTTP proxy for S3-compatible stores (MinIO): every request is forwarded to the
 * upstream unchanged (method, path, headers, the `Host` header included, so SigV4 signatures made
 * for the proxy's address still verify: MinIO checks them against the `Host` it receives), unless
 * a fault switched on at runtime takes it: added latency, connection resets (the next N requests or
 * a fraction of them, before the answer or after some of its body), `503 SlowDown` bursts with S3's
 * XML error body and a `Retry-After` header (answered without forwarding; the next N requests, or
 * the next N of those a predicate takes), or a black hole (the
 * request is accepted and never answered). It counts requests and the largest number in flight.
 */
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The store to forward to, for example MinIO's `http://127.0.0.1:9000`. */
  readonly upstream: string;
  /** Source of randomness for {@link FaultProxy.resetFraction} (default `Math.random`). */
  readonly random?: (() => number) | undefined;
}

/** A request the proxy saw. */
export interface ProxiedRequest {
  /** Its HTTP method. */
  readonly method: string;
  /** Its path and query, as sent. */
  readonly path: string;
  /** When it arrived: `performance.now()` in the proxy's process, in ms. */
  readonly at: number;
  /** What the proxy did with it. */
  readonly fault: "forwarded" | "slow-down" | "reset" | "reset-after-bytes" | "black-hole";
}

/** Which requests a targeted fault takes. */
export type RequestMatch = (request: { readonly method: string; readonly path: string }) => boolean;

/** A running proxy; its faults are plain fields, switchable at any time. */
export interface FaultProxy {
  /** `http://127.0.0.1:<port>`: point the client's endpoint here. */
  readonly endpoint: string;
  /** Delay added before each request is forwarded, in ms (default 0). */
  latencyMs: number;
  /** Fraction of requests, 0 to 1, whose connection is reset before any answer (default 0). */
  resetFraction: number;
  /** The next this many requests have their connection reset before any answer. */
  resetNext: number;
  /** The next this many requests are forwarded, then their connection reset after `resetAfterBytes` bytes of the answer's body. */
  resetNextAfterBytes: number;
  /** How many body bytes of the answer pass before a `resetNextAfterBytes` reset (default 64 KiB). */
  resetAfterBytes: number;
  /** The next this many requests are answered `503 SlowDown` without being forwarded. */
  slowDownNext: number;
  /** The `Retry-After` of those answers, in seconds (default 1). */
  retryAfterSeconds: number;
  /**
   * Answers the next `count` requests that `match` takes `503 SlowDown` (before `slowDownNext`
   * applies), so that bursts aimed at different calls can run at once.
   */
  slowDownWhere(match: RequestMatch, count: number): void;
  /** When true, new requests are accepted and never answered (until it is false again: they are then forwarded). */
  blackHole: boolean;
  /** Every request seen, in order. */
  readonly requests: readonly ProxiedRequest[];
  /** Requests in flight right now (forwarded and not yet answered in full, or held in the black hole). */
  readonly inFlight: number;
  /** The most requests ever in flight at once since the last {@link FaultProxy.resetCounts}. */
  readonly maxInFlight: number;
  /** Forgets the requests seen and the in-flight high-water mark; switches every fault off. */
  resetCounts(): void;
  /** Stops listening and destroys every open connection. */
  stop(): Promise<void>;
}

/** S3's XML error body for `SlowDown`. */
export function slowDownBody(resource: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><Resource>${resource.replaceAll("&", "&amp;").replaceAll("<", "&lt;")}</Resource><RequestId>fault-proxy</RequestId></Error>`;
}

/** Resets the connection (TCP RST where Node can send one). */
function reset(socket: Socket): void {
  if (typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket.destroy();
}

/** Starts a proxy on 127.0.0.1 at a free port in front of `options.upstream`. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const random = options.random ?? Math.random;
  const sockets = new Set<Socket>();
  const held = new Set<() => void>();
  let requests: ProxiedRequest[] = [];
  let targeted: { readonly match: RequestMatch; left: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;

  const begin = (): (() => void) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      inFlight -= 1;
    };
  };

  const forward = (req: IncomingMessage, res: ServerResponse, cutAfter: number | undefined, finish: () => void): void => {
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
        if (cutAfter === undefined) {
          answer.pipe(res);
          answer.once("end", finish);
          answer.once("error", () => {
            finish();
            reset(req.socket);
          });
          return;
        }
        let passed = 0;
        answer.on("data", (chunk: Buffer) => {
          if (passed >= cutAfter) return;
          const room = cutAfter - passed;
          passed += chunk.length;
          if (chunk.length < room) {
            res.write(chunk);
            return;
          }
          res.write(chunk.subarray(0, room), () => {
            answer.destroy();
            finish();
            reset(req.socket);
          });
        });
        answer.once("end", finish);
      },
    );
    out.once("error", () => {
      finish();
      reset(req.socket);
    });
    req.pipe(out);
  };

  const server = createServer((req, res) => {
    const finish = begin();
    res.once("close", finish);
    const seen = (fault: ProxiedRequest["fault"]): void => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", at: performance.now(), fault });
    };
    if (proxy.blackHole) {
      seen("black-hole");
      // Held until the hole closes or the proxy stops; then forwarded as if it had just arrived.
      const release = (): void => {
        held.delete(release);
        if (!req.socket.destroyed) forward(req, res, undefined, finish);
      };
      held.add(release);
      return;
    }
    const rule = targeted.find((r) => r.left > 0 && r.match({ method: req.method ?? "", path: req.url ?? "" }));
    if (rule !== undefined || proxy.slowDownNext > 0) {
      if (rule !== undefined) rule.left -= 1;
      else proxy.slowDownNext -= 1;
      seen("slow-down");
      req.resume();
      const body = slowDownBody(req.url ?? "/");
      res.writeHead(503, "Slow Down", { "content-type": "application/xml", "retry-after": String(proxy.retryAfterSeconds), "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    if (proxy.resetNext > 0 || (proxy.resetFraction > 0 && random() < proxy.resetFraction)) {
      if (proxy.resetNext > 0) proxy.resetNext -= 1;
      seen("reset");
      finish();
      reset(req.socket);
      return;
    }
    let cutAfter: number | undefined;
    if (proxy.resetNextAfterBytes > 0) {
      proxy.resetNextAfterBytes -= 1;
      cutAfter = proxy.resetAfterBytes;
      seen("reset-after-bytes");
    } else seen("forwarded");
    if (proxy.latencyMs > 0) setTimeout(() => forward(req, res, cutAfter, finish), proxy.latencyMs);
    else forward(req, res, cutAfter, finish);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  let blackHole = false;
  const proxy: FaultProxy = {
    endpoint: `http://127.0.0.1:${String(port)}`,
    latencyMs: 0,
    resetFraction: 0,
    resetNext: 0,
    resetNextAfterBytes: 0,
    resetAfterBytes: 64 * 1024,
    slowDownNext: 0,
    retryAfterSeconds: 1,
    get blackHole() {
      return blackHole;
    },
    set blackHole(on: boolean) {
      blackHole = on;
      if (!on) for (const release of [...held]) release();
    },
    slowDownWhere(match, count) {
      targeted.push({ match, left: count });
    },
    get requests() {
      return requests;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    resetCounts() {
      requests = [];
      targeted = [];
      maxInFlight = inFlight;
      proxy.latencyMs = 0;
      proxy.resetFraction = 0;
      proxy.resetNext = 0;
      proxy.resetNextAfterBytes = 0;
      proxy.slowDownNext = 0;
      proxy.blackHole = false;
    },
    async stop() {
      held.clear();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
