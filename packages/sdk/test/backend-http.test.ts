/**
 * The SDK's shared pieces for plugins that talk HTTP to a backend: the HTTP-status table, the
 * network-error helpers, per-request deadlines, the body watchdog, and agents with connect and
 * idle timeouts (against real sockets: a server that never answers, a listener whose backlog is full).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, request, type Server } from "node:http";
import net, { type AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import {
  BackendTimeoutError,
  backendTimeoutConfigKeys,
  codeForHttpStatus,
  createBackendAgents,
  guardBody,
  httpStatusError,
  idleWatchdog,
  isNetworkError,
  mapHttpStatus,
  networkErrorCode,
  parseBackendTimeouts,
  tlsErrorCode,
  withRequestTimeout,
} from "../src/plugin.js";
import { caught, eventually } from "../src/testing.js";

async function drain(stream: AsyncIterable<Buffer>): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += chunk.length;
  return bytes;
}

describe("the HTTP-status table", () => {
  it("maps every status to one code and the contract's reason", () => {
    const table: [number, Code, string | undefined][] = [
      [400, Code.InvalidArgument, undefined],
      [401, Code.Unauthenticated, Reason.AccessDenied],
      [403, Code.PermissionDenied, Reason.AccessDenied],
      [404, Code.NotFound, undefined],
      [405, Code.InvalidArgument, undefined],
      [408, Code.Unavailable, Reason.BackendUnavailable],
      [409, Code.Aborted, undefined],
      [410, Code.NotFound, undefined],
      [412, Code.Aborted, undefined],
      [413, Code.InvalidArgument, undefined],
      [416, Code.OutOfRange, Reason.InvalidRange],
      [429, Code.Unavailable, Reason.BackendUnavailable],
      [499, Code.Canceled, Reason.Cancelled],
      [500, Code.Unavailable, Reason.BackendUnavailable],
      [501, Code.Unimplemented, Reason.Unsupported],
      [502, Code.Unavailable, Reason.BackendUnavailable],
      [503, Code.Unavailable, Reason.BackendUnavailable],
      [504, Code.Unavailable, Reason.BackendUnavailable],
      [507, Code.Unavailable, Reason.BackendUnavailable],
      [301, Code.Internal, Reason.Internal],
      [200, Code.Internal, Reason.Internal],
      [0, Code.Internal, Reason.Internal],
    ];
    for (const [status, code, reason] of table) {
      expect(mapHttpStatus(status), String(status)).toEqual({ code, reason });
      expect(codeForHttpStatus(status)).toBe(code);
    }
  });

  it("builds errors with the table's code and reason, http_status metadata, and a reason override", () => {
    const busy = httpStatusError(503, "the store is busy", { metadata: { bucket: "b" } });
    expect([busy.code, busy.reason, busy.metadata]).toEqual([Code.Unavailable, Reason.BackendUnavailable, { http_status: "503", bucket: "b" }]);
    const missing = httpStatusError(404, "no such object", { reason: Reason.ObjectNotFound });
    expect([missing.code, missing.reason]).toEqual([Code.NotFound, Reason.ObjectNotFound]);
  });
});

describe("network errors", () => {
  it("finds the failure behind a library's wrapping, by code or by message", () => {
    expect(networkErrorCode(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }))).toBe("ECONNREFUSED");
    expect(networkErrorCode(new Error("fetch failed", { cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }) }))).toBe("UND_ERR_SOCKET");
    expect(networkErrorCode(new Error("socket hang up"))).toBe("ECONNRESET");
    expect(networkErrorCode(Object.assign(new Error("wrapped"), { error: Object.assign(new Error("x"), { code: "ETIMEDOUT" }) }))).toBe("ETIMEDOUT");
    expect(networkErrorCode(new BackendTimeoutError("idle", "idleTimeoutSeconds"))).toBe("ETIMEDOUT");
    expect(isNetworkError(new Error("NoSuchKey"))).toBe(false);
    expect(tlsErrorCode(Object.assign(new Error("self-signed"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }))).toBe("DEPTH_ZERO_SELF_SIGNED_CERT");
    expect(tlsErrorCode(new Error("x", { cause: Object.assign(new Error("y"), { code: "ERR_TLS_CERT_ALTNAME_INVALID" }) }))).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(tlsErrorCode(new Error("x"))).toBeUndefined();
  });
});

describe("timeout settings", () => {
  it("reads the three keys in whole seconds with defaults, and refuses bad values naming the key", () => {
    expect(parseBackendTimeouts({})).toEqual({ connectTimeoutMs: 10_000, requestTimeoutMs: 120_000, idleTimeoutMs: 60_000 });
    expect(parseBackendTimeouts({ connectTimeoutSeconds: "2", requestTimeoutSeconds: "30", idleTimeoutSeconds: "5" })).toEqual({ connectTimeoutMs: 2000, requestTimeoutMs: 30_000, idleTimeoutMs: 5000 });
    for (const [key, value] of [["idleTimeoutSeconds", "0"], ["requestTimeoutSeconds", "soon"]] as const) {
      let caught: unknown;
      try {
        parseBackendTimeouts({ [key]: value });
      } catch (error) {
        caught = error;
      }
      expect((caught as StowageError).reason).toBe(Reason.InvalidConfig);
      expect((caught as StowageError).metadata.key).toBe(key);
    }
    expect(backendTimeoutConfigKeys(["requestTimeoutSeconds"]).map((k) => k.name)).toEqual(["requestTimeoutSeconds"]);
  });
});

describe("request deadlines", () => {
  it("fail a request that gets no answer in time with UNAVAILABLE/BACKEND_UNAVAILABLE, whatever the library throws", async () => {
    const error = await caught(
      withRequestTimeout(undefined, 100, "head object", (signal) => new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(Object.assign(new Error("aborted"), { name: "AbortError" }))))),
    );
    expect(error).toBeInstanceOf(StowageError);
    expect([(error as StowageError).code, (error as StowageError).reason]).toEqual([Code.Unavailable, Reason.BackendUnavailable]);
    expect((error as StowageError).message).toContain("requestTimeoutSeconds");
  });

  it("give the caller's cancellation or deadline precedence, and pass other failures on unchanged", async () => {
    const caller = new AbortController();
    const pending = withRequestTimeout(caller.signal, 60_000, "get", (signal) => new Promise((_resolve, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")))));
    caller.abort(new StowageError(Code.DeadlineExceeded, "the call's deadline passed", { reason: Reason.DeadlineExceeded }));
    expect(((await caught(pending)) as StowageError).code).toBe(Code.DeadlineExceeded);
    const own = new Error("NoSuchKey");
    expect(await caught(withRequestTimeout(undefined, 60_000, "get", () => Promise.reject(own)))).toBe(own);
    expect(await withRequestTimeout(undefined, 60_000, "get", () => Promise.resolve(42))).toBe(42);
  });
});

describe("guardBody", () => {
  it("destroys a body whose backend stops sending with UNAVAILABLE/BACKEND_UNAVAILABLE", async () => {
    const body = guardBody(new PassThrough(), { idleTimeoutMs: 200, what: "read object", mapError: (e) => StowageError.from(e) });
    body.write(Buffer.alloc(10));
    const error = await caught((async () => {
      for await (const chunk of body as AsyncIterable<Buffer>) expect(chunk.length).toBe(10);
    })());
    expect([(error as StowageError).code, (error as StowageError).reason]).toEqual([Code.Unavailable, Reason.BackendUnavailable]);
  });

  it("leaves a body alone while its reader holds it back (a full buffer)", async () => {
    const body = guardBody(new PassThrough({ highWaterMark: 16 }), { idleTimeoutMs: 150, what: "read object", mapError: (e) => StowageError.from(e) });
    body.write(Buffer.alloc(64));
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(body.destroyed).toBe(false);
    body.end();
    let total = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) total += chunk.length;
    expect(total).toBe(64);
  });

  it("maps the body's own failures, and ends it with the caller's reason when the caller gives up", async () => {
    const broken = guardBody(new PassThrough(), { idleTimeoutMs: 60_000, what: "read", mapError: () => new StowageError(Code.Unavailable, "mapped", { reason: Reason.BackendUnavailable }) });
    broken.destroy(new Error("socket hang up"));
    expect(((await caught(drain(broken as AsyncIterable<Buffer>))) as StowageError).rawMessage).toBe("mapped");
    const caller = new AbortController();
    const cancelled = guardBody(new PassThrough(), { idleTimeoutMs: 60_000, what: "read", signal: caller.signal, mapError: (e) => StowageError.from(e) });
    caller.abort();
    expect(((await caught(drain(cancelled as AsyncIterable<Buffer>))) as StowageError).code).toBe(Code.Canceled);
  });

  it("idleWatchdog fires once when not touched, with UNAVAILABLE", async () => {
    const fired: StowageError[] = [];
    const watchdog = idleWatchdog(100, "put object", (error) => fired.push(error));
    await eventually(() => fired.length > 0, { what: "the watchdog to fire" });
    // Three more idle periods pass without a second firing.
    await new Promise((resolve) => setTimeout(resolve, 300));
    watchdog.stop();
    expect(fired.map((e) => e.reason)).toEqual([Reason.BackendUnavailable]);
  });
});

describe("backend agents", () => {
  let silent: Server;
  let silentUrl: string;
  let stopped: ChildProcess;
  let stoppedPort: number;
  const fillers: net.Socket[] = [];

  beforeAll(async () => {
    // A server that reads requests and never answers.
    silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentUrl = `http://127.0.0.1:${String((silent.address() as AddressInfo).port)}/`;
    // A listener in a frozen process whose backlog is full: new connections are never established.
    stopped = spawn(process.execPath, ["-e", 'const s=require("net").createServer();s.listen({port:0,host:"127.0.0.1",backlog:1},()=>{console.log(s.address().port);process.kill(process.pid,"SIGSTOP")})'], { stdio: ["ignore", "pipe", "inherit"] });
    stoppedPort = await new Promise<number>((resolve) => stopped.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString().trim()))));
    for (let i = 0; i < 3; i++) fillers.push(net.connect(stoppedPort, "127.0.0.1").on("error", () => undefined));
  });

  afterAll(async () => {
    for (const s of fillers) s.destroy();
    stopped.kill("SIGKILL");
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  function get(url: string, agent: ReturnType<typeof createBackendAgents>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = request(url, { agent: agent.forUrl(url) }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("end a request whose server never answers with an ETIMEDOUT BackendTimeoutError (idle)", async () => {
    const agents = createBackendAgents({ timeouts: { connectTimeoutMs: 5000, idleTimeoutMs: 300 } });
    const error = await caught(get(silentUrl, agents));
    expect(error).toBeInstanceOf(BackendTimeoutError);
    expect([(error as BackendTimeoutError).code, (error as BackendTimeoutError).timeout]).toEqual(["ETIMEDOUT", "idleTimeoutSeconds"]);
    agents.destroy();
  });

  it("end a request whose connection is never established with an ETIMEDOUT BackendTimeoutError (connect)", async () => {
    const agents = createBackendAgents({ timeouts: { connectTimeoutMs: 300, idleTimeoutMs: 60_000 } });
    const error = await caught(get(`http://127.0.0.1:${String(stoppedPort)}/`, agents));
    expect(error).toBeInstanceOf(BackendTimeoutError);
    expect((error as BackendTimeoutError).timeout).toBe("connectTimeoutSeconds");
    agents.destroy();
  });
});
