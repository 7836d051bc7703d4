/**
 * Process-level tests: a real PluginHost launching real plugin processes (the memory fixture and
 * its deliberately broken modes) over go-plugin's protocol.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import type { PluginHost } from "../src/host.js";
import { MAGIC_COOKIE_KEY } from "../src/protocol/constants.js";
import { alive, capturingLogger, memoryFixture, openFileDescriptors, startFixtureHost } from "./support/host.js";
import { eventually, rejection, sha256Hex } from "../src/testing.js";

const PLUGIN = "fixture.stowage.io/memory";
let hosts: PluginHost[] = [];

async function host(mode = "ok", options: Parameters<typeof startFixtureHost>[1] = {}): Promise<PluginHost> {
  const h = await startFixtureHost(mode, options);
  hosts.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  hosts = [];
});

describe("handshake and discovery", () => {
  it("lists the fixture's plugin with its descriptor and a live pid", async () => {
    const h = await host();
    const [plugin] = h.plugins();
    expect(plugin?.descriptor).toMatchObject({ name: PLUGIN, kind: "object-store", description: "in-memory fixture" });
    expect(plugin?.descriptor.configKeys.map((k) => k.name)).toContain("buckets");
    expect(plugin?.runtime).toMatch(/^stowage-sdk-ts node\//);
    expect(alive(plugin?.pid ?? -1)).toBe(true);
  });

  it("a plugin started without the cookie explains itself on stderr and exits 1 with nothing on stdout", async () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== MAGIC_COOKIE_KEY));
    const result = await promisify(execFile)(process.execPath, [memoryFixture], { env }).catch((e: unknown) => e as { code: number; stdout: string; stderr: string });
    expect(result).toMatchObject({ code: 1, stdout: "" });
    expect((result as { stderr: string }).stderr).toMatch(/not meant to be executed directly/);
  });

  it.each([
    ["garbage-stdout", /unrecognised first line on the plugin's stdout: "hello from a plugin/],
    ["exit-early", /exited with status 3 before completing the handshake[\s\S]*failing at start on purpose/],
    ["wrong-version", /incompatible plugin protocol version "7"; this host accepts \[1\]/],
  ])("refuses a plugin in mode %s with a clear error", async (mode, message) => {
    const error = await rejection(startFixtureHost(mode));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.message).toMatch(message);
  });

  it("gives up on a silent plugin after the handshake timeout and kills it", async () => {
    const started = Date.now();
    const error = await rejection(startFixtureHost("silent", { handshakeTimeoutMs: 800 }));
    expect(error.message).toMatch(/printed no handshake line within 800 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("refuses a plugin that is not a Stowage plugin because it lacks our cookie", async () => {
    const script = "process.stderr.write('This binary is a plugin. These are not meant to be executed directly.\\n'); process.exit(1);";
    const error = await rejection(
      (async () => {
        const { PluginHost } = await import("../src/host.js");
        const h = new PluginHost({ plugins: [{ command: process.execPath, args: ["-e", script] }], logger: capturingLogger().logger });
        await h.start();
      })(),
    );
    expect(error.message).toMatch(/lacks the magic cookie it expects[\s\S]*not meant to be executed directly/);
  });
});

describe("object calls through a plugin process", () => {
  it.each([true, false])("round-trips an 8 MiB object with dataChannel=%s", async (dataChannel) => {
    const h = await host("ok", { dataChannel });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const data = randomBytes(8 * 1024 * 1024 + 13);
    const put = await store.putObject({ bucket: "b", key: "dir/obj", body: Readable.from([data.subarray(0, 1000), data.subarray(1000)]), size: data.length, contentType: "application/gzip", metadata: { a: "1" } });
    expect(put.size).toBe(data.length);
    const got = await store.getObject({ bucket: "b", key: "dir/obj" });
    expect(got.contentLength).toBe(data.length);
    expect(got.object).toMatchObject({ key: "dir/obj", size: data.length, contentType: "application/gzip", metadata: { a: "1" } });
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
    const ranged = await store.getObject({ bucket: "b", key: "dir/obj", range: { offset: 100, length: 50 } });
    expect(Buffer.compare(await buffer(ranged.body), data.subarray(100, 150))).toBe(0);
    const pages = [];
    for await (const page of store.listObjects({ bucket: "b", delimiter: "/" })) pages.push(page);
    expect(pages.flatMap((p) => p.commonPrefixes)).toEqual(["dir/"]);
    expect((await store.headObject({ bucket: "b", key: "dir/obj" }))?.size).toBe(data.length);
    await store.deleteObject({ bucket: "b", key: "dir/obj" });
    await store.deleteObject({ bucket: "b", key: "dir/obj" });
    expect(await store.headObject({ bucket: "b", key: "dir/obj" })).toBeUndefined();
  });

  it.each([true, false])("round-trips an empty object with dataChannel=%s", async (dataChannel) => {
    const h = await host("ok", { dataChannel });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    expect((await store.putObject({ bucket: "b", key: "empty", body: Readable.from([]) })).size).toBe(0);
    const got = await store.getObject({ bucket: "b", key: "empty" });
    expect(got.contentLength).toBe(0);
    expect((await buffer(got.body)).length).toBe(0);
  });

  it("maps plugin errors to typed StowageErrors with reasons", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    expect((await rejection(store.headObject({ bucket: "b", key: "k" }))).reason).toBe(Reason.NotInitialized);
    const invalid = await rejection(store.init({ bucket: "b", regoin: "x" }));
    expect(invalid).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidConfig });
    expect(invalid.message).toMatch(/invalid keys \[regoin\]; valid keys are \[bucket, buckets, prefix\]/);
    expect(invalid.metadata.valid_keys).toBe("bucket,buckets,prefix");
    await store.init({ buckets: "b" });
    expect(await rejection(store.getObject({ bucket: "b", key: "missing" }))).toMatchObject({ code: Code.NotFound, reason: Reason.ObjectNotFound });
    expect(await rejection(store.getObject({ bucket: "nope", key: "k" }))).toMatchObject({ code: Code.NotFound, reason: Reason.BucketNotFound });
    expect(await rejection(store.deleteObject({ bucket: "b", key: "denied" }))).toMatchObject({ code: Code.PermissionDenied, reason: Reason.AccessDenied });
    const internal = await rejection(store.deleteObject({ bucket: "b", key: "boom" }));
    expect(internal).toMatchObject({ code: Code.Internal, reason: Reason.Internal });
    expect(internal.message).toMatch(/a bug in the fixture/);
    // The process survived the unexpected exception.
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
  });

  it("a failed Init leaves the last successful configuration in effect (contract 3.6.3)", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("x")]) });
    expect((await rejection(store.init({ buckets: "b", regoin: "x" }))).reason).toBe(Reason.InvalidConfig);
    expect((await store.headObject({ bucket: "b", key: "k" }))?.size).toBe(1);
  });

  it("refuses a body whose size or checksum does not match, storing nothing", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const data = randomBytes(100_000);
    const short = await rejection(store.putObject({ bucket: "b", key: "k", body: Readable.from([data]), size: data.length + 1 }));
    expect(short).toMatchObject({ code: Code.DataLoss, reason: Reason.IntegrityMismatch });
    const wrongSum = await rejection(store.putObject({ bucket: "b", key: "k", body: Readable.from([data]), sha256: createHash("sha256").update("other").digest() }));
    expect(wrongSum.reason).toBe(Reason.IntegrityMismatch);
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
    const ok = await store.putObject({ bucket: "b", key: "k", body: Readable.from([data]), sha256: createHash("sha256").update(data).digest() });
    expect(Buffer.from(ok.sha256 ?? []).toString("hex")).toBe(sha256Hex(data));
  });

  it("a PUT cancelled mid-body leaves no object and the plugin keeps serving", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const controller = new AbortController();
    async function* body() {
      for (let i = 0; i < 100; i++) {
        if (i === 3) controller.abort();
        yield randomBytes(64 * 1024);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const error = await rejection(store.putObject({ bucket: "b", key: "partial", body: body() }, { signal: controller.signal }));
    expect(error.code).toBe(Code.Canceled);
    expect(await store.headObject({ bucket: "b", key: "partial" })).toBeUndefined();
  });

  it("a GET whose store answers only after the plugin's wait for unclaimed data connections (10 s) still gets its body", async () => {
    const h = await host("ok", { dataChannel: true, defaultTimeoutMs: 0, streamIdleTimeoutMs: 0 });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const data = randomBytes(256 * 1024);
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([data]) });
    // A slow backend: the plugin's store answers 11 s after the call (and its connection) arrived.
    await store.init({ buckets: "b", slowGetMs: "11000" });
    const got = await store.getObject({ bucket: "b", key: "k" });
    expect(sha256Hex(await buffer(got.body))).toBe(sha256Hex(data));
  }, 60_000);

  it("a PUT whose plugin closes the data connection, then fails after a slow cleanup, reports the plugin's error", async () => {
    const h = await host("ok", { dataChannel: true });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b", slowPutFailure: "true" });
    async function* body() {
      for (let i = 0; i < 256; i++) yield randomBytes(64 * 1024);
    }
    const error = await rejection(store.putObject({ bucket: "b", key: "k", body: body() }));
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.BackendUnavailable });
    expect(error.message).toMatch(/the store went away mid-upload/);
  });

  it("a PUT whose body source fails is abandoned without an object", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    async function* body() {
      yield randomBytes(1000);
      throw new Error("disk read failed");
    }
    const error = await rejection(store.putObject({ bucket: "b", key: "broken", body: body() }));
    expect(error.message).toMatch(/abandoned, nothing was stored: disk read failed/);
    expect(await store.headObject({ bucket: "b", key: "broken" })).toBeUndefined();
  });

  it("cancels a hung GET through its AbortSignal, and enforces deadlines", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b", hangGet: "true" });
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("x")]) });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    expect((await rejection(store.getObject({ bucket: "b", key: "k" }, { signal: controller.signal }))).code).toBe(Code.Canceled);
    const deadline = await rejection(store.getObject({ bucket: "b", key: "k" }, { timeoutMs: 200 }));
    expect(deadline.code).toBe(Code.DeadlineExceeded);
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeDefined();
  });

  it("an abandoned GET body is cancelled in the plugin", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const data = randomBytes(16 * 1024 * 1024);
    await store.putObject({ bucket: "b", key: "big", body: Readable.from([data]) });
    const got = await store.getObject({ bucket: "b", key: "big" });
    for await (const chunk of got.body as AsyncIterable<Buffer>) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    expect(got.body.destroyed).toBe(true);
    expect((await store.headObject({ bucket: "b", key: "big" }))?.size).toBe(data.length);
  });
});

describe("resources", () => {
  it.each([true, false])("puts, gets, failed puts and failed gets leave no file descriptor open in the host or the plugin (dataChannel=%s)", async (dataChannel) => {
    const h = await host("ok", { dataChannel });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const pid = h.plugins()[0]?.pid ?? -1;
    const round = async (i: number): Promise<void> => {
      await store.putObject({ bucket: "b", key: `k${String(i % 7)}`, body: Readable.from([Buffer.from([i & 0xff])]) });
      await buffer((await store.getObject({ bucket: "b", key: `k${String(i % 7)}` })).body);
      await rejection(store.putObject({ bucket: "b", key: "mismatch", body: Readable.from([Buffer.from("abc")]), size: 4 }));
      await rejection(store.getObject({ bucket: "b", key: "missing" }));
      await rejection(store.putObject({ bucket: "missing", key: "k", body: Readable.from([Buffer.from("abc")]) }));
    };
    // Warm up (grpc-js connections, lazily opened handles), then measure.
    for (let i = 0; i < 20; i++) await round(i);
    const hostBefore = openFileDescriptors(process.pid);
    const pluginBefore = openFileDescriptors(pid);
    for (let i = 0; i < 300; i++) await round(i);
    // Sockets close asynchronously once a call has ended; both counts must come back to the start.
    await eventually(() => openFileDescriptors(process.pid) <= hostBefore + 5 && openFileDescriptors(pid) <= pluginBefore + 5);
    // 960 calls: about 5 s on a quiet machine, more on a busy one; the bound is a hang guard.
  }, 60_000);
});

describe("supervision", () => {
  it("fails the in-flight call of a crashed plugin with PLUGIN_CRASHED and relaunches it with Init replayed", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const firstPid = h.plugins()[0]?.pid ?? -1;
    const crash = await rejection(store.getObject({ bucket: "b", key: "crash" }));
    expect(crash).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    expect(crash.message).toMatch(/exited with status 9 during the call/);
    // The next call relaunches the plugin and replays Init (the bucket exists again).
    await store.putObject({ bucket: "b", key: "after", body: Readable.from([Buffer.from("ok")]) });
    expect((await store.headObject({ bucket: "b", key: "after" }))?.size).toBe(2);
    const secondPid = h.plugins()[0]?.pid ?? -1;
    expect(secondPid).not.toBe(firstPid);
    expect(alive(firstPid)).toBe(false);
  });

  it("a call made after the plugin died, before the host saw the exit, relaunches it instead of failing", async () => {
    const h = await host();
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const pid = h.plugins()[0]?.pid ?? -1;
    process.kill(pid, "SIGKILL");
    // Keep the event loop busy so the child's exit is not processed before the next call.
    const start = Date.now();
    while (Date.now() - start < 200) {
      // busy
    }
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
    expect(h.plugins()[0]?.pid).not.toBe(pid);
  });

  it("gives up with a clear error when the plugin keeps crashing", async () => {
    const h = await host("ok", { restart: { maxCrashes: 2, windowMs: 60_000 } });
    const store = h.objectStore(PLUGIN);
    const errors: StowageError[] = [];
    for (let i = 0; i < 4; i++) errors.push(await rejection(store.init({ crash: "now" })));
    expect(errors[0]?.reason).toBe(Reason.PluginCrashed);
    const last = errors.at(-1);
    expect(last?.message).toMatch(/crashed 3 times within 60 s[\s\S]*stopped restarting it[\s\S]*crashing in Init on purpose/);
  });

  it("forwards the plugin's hclog lines into the host logger, tagged with the plugin", async () => {
    const { logger, lines } = capturingLogger();
    const h = await host("ok", { logger });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    await rejection(store.deleteObject({ bucket: "b", key: "boom" }));
    await eventually(() => lines.some((l) => l.msg === "unexpected exception in plugin call"));
    const line = lines.find((l) => l.msg === "unexpected exception in plugin call");
    expect(line).toMatchObject({ plugin: "memory-plugin.mjs", level: 50, method: "/stowage.v1.ObjectStoreService/DeleteObject" });
  });

  it("separate instances get separate processes so their configs never collide", async () => {
    const h = await host();
    const a = h.objectStore(PLUGIN, { instance: "a" });
    const b = h.objectStore(PLUGIN, { instance: "b" });
    await a.init({ buckets: "only-a" });
    await b.init({ buckets: "only-b" });
    await a.putObject({ bucket: "only-a", key: "k", body: Readable.from([Buffer.from("a")]) });
    expect((await rejection(b.headObject({ bucket: "only-a", key: "k" }))).reason).toBe(Reason.BucketNotFound);
  });

  it("close() stops every plugin process: none is left behind", async () => {
    const h = await startFixtureHost();
    const store = h.objectStore(PLUGIN, { instance: "extra" });
    await store.init({ buckets: "b" });
    const pids = h.plugins().map((p) => p.pid ?? -1);
    const started = Date.now();
    await h.close();
    expect(Date.now() - started).toBeLessThan(3000);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect((await rejection(store.headObject({ bucket: "b", key: "k" }))).code).toBe(Code.FailedPrecondition);
  });
});
