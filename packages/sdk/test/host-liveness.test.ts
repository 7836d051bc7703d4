/**
 * A wedged plugin is detected and replaced: health checks find a stopped (SIGSTOP), deadlocked or
 * busy-looping plugin process, the host kills it, its in-flight calls fail with
 * UNAVAILABLE/PLUGIN_UNRESPONSIVE, and the next call relaunches it with its Init replayed. A slow
 * plugin that still answers is left alone; a stream that makes no progress fails with
 * DEADLINE_EXCEEDED after the idle timeout. Real plugin processes throughout; short knobs, no
 * assertion on the wall clock.
 */
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import type { PluginHost, PluginHostOptions } from "../src/host.js";
import { PluginHost as Host } from "../src/host.js";
import { HealthMonitor } from "../src/host/health-monitor.js";
import { IdleWatch } from "../src/host/idle-watch.js";
import type { RpcChannel } from "../src/host/rpc-channel.js";
import { silentLogger } from "../src/logging.js";
import { FAST_CHECKS, alive, capturingLogger, memoryFixture, startFixtureHost } from "./support/host.js";
import { eventually, rejection } from "../src/testing.js";

const PLUGIN = "fixture.stowage.io/memory";

let hosts: PluginHost[] = [];
const stopped: number[] = [];

async function host(options: PluginHostOptions = {}, mode = "ok"): Promise<PluginHost> {
  const h = await startFixtureHost(mode, options);
  hosts.push(h);
  return h;
}

afterEach(async () => {
  // A stopped process that survived a failed test would never exit on its own.
  for (const pid of stopped.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  await Promise.all(hosts.map((h) => h.close()));
  hosts = [];
});

function pidOf(h: PluginHost): number {
  return h.plugins()[0]?.pid ?? -1;
}

/** Wedges the plugin process in one of three ways; the returned promise is the wedging call itself, if any. */
function wedge(h: PluginHost, how: "sigstop" | "busy-loop" | "deadlock"): Promise<unknown> | undefined {
  const pid = pidOf(h);
  if (how === "sigstop") {
    stopped.push(pid);
    process.kill(pid, "SIGSTOP");
    return undefined;
  }
  const call = h.objectStore(PLUGIN).deleteObject({ bucket: "b", key: how === "busy-loop" ? "wedge-busy" : "wedge-deadlock" });
  call.catch(() => undefined);
  return call;
}

describe("health checks", () => {
  it.each(["sigstop", "busy-loop", "deadlock"] as const)(
    "a %s plugin is killed and relaunched with Init replayed; its in-flight calls, without deadlines, fail with PLUGIN_UNRESPONSIVE",
    async (how) => {
      const { logger, lines } = capturingLogger();
      const h = await host({ ...FAST_CHECKS, logger, dataChannel: false });
      const store = h.objectStore(PLUGIN);
      await store.init({ buckets: "b" });
      const data = randomBytes(32 * 1024 * 1024);
      await store.putObject({ bucket: "b", key: "big", body: Readable.from([data]) });
      const before = pidOf(h);
      // A GET body in progress: the first chunk arrives, the rest is still in the plugin.
      const got = await store.getObject({ bucket: "b", key: "big" });
      const reader = got.body[Symbol.asyncIterator]();
      expect((await reader.next()).done).toBe(false);
      const wedging = wedge(h, how);
      // Unary calls and the rest of the body: none has a deadline, none may hang.
      const head = rejection(store.headObject({ bucket: "b", key: "big" }));
      const body = rejection(
        (async () => {
          for (;;) if ((await reader.next()).done === true) return;
        })(),
      );
      for (const error of [await head, await body, ...(wedging === undefined ? [] : [await rejection(wedging)])]) {
        expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginUnresponsive });
        expect(error.message).toMatch(/stopped answering and the host killed it during the call: 2 health checks in a row failed/);
      }
      await eventually(() => !alive(before), { timeoutMs: 10_000 });
      expect(lines.some((l) => typeof l.msg === "string" && l.msg.startsWith("plugin process stopped answering; killing it"))).toBe(true);
      // The next call starts a new process and replays Init: bucket "b" exists again (empty: memory).
      expect(await store.headObject({ bucket: "b", key: "big" })).toBeUndefined();
      expect(pidOf(h)).not.toBe(before);
      expect(alive(pidOf(h))).toBe(true);
    },
    60_000,
  );

  it("a plugin that is slow at its work but answers health checks is not killed", async () => {
    const { logger, lines } = capturingLogger();
    const h = await host({ ...FAST_CHECKS, logger });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b", hangGet: "true" });
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("x")]) });
    const pid = pidOf(h);
    const controller = new AbortController();
    const slow = rejection(store.getObject({ bucket: "b", key: "k" }, { signal: controller.signal }));
    // Ten passed checks while the GET is stuck inside the plugin: several times the failure threshold.
    const passedBefore = lines.filter((l) => l.msg === "health check passed" && l.pid === pid).length;
    await eventually(() => lines.filter((l) => l.msg === "health check passed" && l.pid === pid).length >= passedBefore + 10, { timeoutMs: 30_000 });
    controller.abort();
    expect((await slow).code).toBe(Code.Canceled);
    expect(pidOf(h)).toBe(pid);
    expect(alive(pid)).toBe(true);
    expect(lines.some((l) => l.msg === "health check failed")).toBe(false);
  }, 60_000);

  it("applies to Velero-protocol plugins too", async () => {
    const h = new Host({ plugins: [{ command: process.execPath, args: [memoryFixture], protocol: "velero" }], logger: capturingLogger().logger, ...FAST_CHECKS });
    hosts.push(h);
    await h.start();
    const store = h.objectStore(PLUGIN);
    await store.init({ bucket: "b" });
    const before = pidOf(h);
    stopped.push(before);
    process.kill(before, "SIGSTOP");
    const error = await rejection(store.headObject({ bucket: "b", key: "k" }));
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginUnresponsive });
    await eventually(() => !alive(before), { timeoutMs: 10_000 });
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
    expect(pidOf(h)).not.toBe(before);
  }, 60_000);

  it("checks are off with intervalMs 0: a stopped plugin is left alone", async () => {
    const h = await host({ healthCheck: { intervalMs: 0 } });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const pid = pidOf(h);
    stopped.push(pid);
    process.kill(pid, "SIGSTOP");
    // The default unary deadline still ends the call.
    const error = await rejection(store.headObject({ bucket: "b", key: "k" }, { timeoutMs: 300 }));
    expect(error).toMatchObject({ code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded });
    expect(alive(pid)).toBe(true);
    process.kill(pid, "SIGCONT");
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
  }, 60_000);

  it("a check whose deadline fired long after it was due (the host itself was blocked) does not count against the plugin", async () => {
    const settings = { intervalMs: 10, timeoutMs: 50, failures: 2 };
    // Each check fails as a deadline does, either on time (a wedged plugin) or four deadlines late (a blocked host).
    const monitor = (lateBy: number, onUnresponsive: () => void): { monitor: HealthMonitor; checks: () => number } => {
      let checks = 0;
      const channel = {
        unary: async () => {
          checks += 1;
          await new Promise((resolve) => setTimeout(resolve, settings.timeoutMs + lateBy));
          throw new StowageError(Code.DeadlineExceeded, "Deadline exceeded", { reason: Reason.DeadlineExceeded });
        },
      } as unknown as RpcChannel;
      return { monitor: new HealthMonitor(channel, settings, silentLogger, onUnresponsive), checks: () => checks };
    };
    let wedgedFound = false;
    const wedged = monitor(0, () => (wedgedFound = true));
    wedged.monitor.start();
    await eventually(() => wedgedFound, { timeoutMs: 10_000 });
    expect(wedged.checks()).toBe(2);
    let busyFound = false;
    // Late by four deadlines: 250 ms in all, clear of the monitor's 2 × timeout + 100 ms = 200 ms
    // bound (three deadlines late sat exactly on it, and libuv's millisecond timers fire up to 1 ms
    // early by performance.now(), so the check sometimes counted).
    const busy = monitor(4 * settings.timeoutMs, () => (busyFound = true));
    busy.monitor.start();
    await eventually(() => busy.checks() >= 6, { timeoutMs: 10_000 });
    busy.monitor.stop();
    expect(busyFound).toBe(false);
  }, 30_000); // a hang guard above the two 10 s waits (the default 5 s failed under load in CI)

  it("health checks and idle timers do not keep the event loop alive", () => {
    const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timeouts();
    const channel = { unary: () => new Promise(() => undefined) } as unknown as RpcChannel;
    const monitor = new HealthMonitor(channel, { intervalMs: 60_000, timeoutMs: 1000, failures: 3 }, silentLogger, () => undefined);
    monitor.start();
    const idle = new IdleWatch(60_000, "a test stream", () => undefined);
    idle.begin();
    expect(timeouts()).toBe(before);
    monitor.stop();
    idle.stop();
  });
});

describe("stream idle timeout", () => {
  it.each([true, false])("a GET whose body never comes fails with DEADLINE_EXCEEDED, the plugin keeps serving (dataChannel=%s)", async (dataChannel) => {
    const h = await host({ streamIdleTimeoutMs: 300, healthCheck: { intervalMs: 0 }, dataChannel });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b", stallBody: "true" });
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("some bytes")]) });
    const pid = pidOf(h);
    const got = await store.getObject({ bucket: "b", key: "k" });
    const error = await rejection(got.body.toArray());
    expect(error).toMatchObject({ code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded });
    expect(error.message).toMatch(/the GetObject of "k" was idle: the stream moved no message or body byte for 300 ms/);
    expect(pidOf(h)).toBe(pid);
    await store.init({ buckets: "b" });
    expect((await store.getObject({ bucket: "b", key: "k" })).contentLength).toBe(10);
  }, 60_000);

  it("a GET whose header never comes, a listing that never answers and an upload the plugin never reads fail the same way", async () => {
    const h = await host({ streamIdleTimeoutMs: 300, healthCheck: { intervalMs: 0 } });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b", hangGet: "true", stallList: "true", stallPut: "true" });
    const idle = { code: Code.DeadlineExceeded, reason: Reason.DeadlineExceeded };
    expect(await rejection(store.getObject({ bucket: "b", key: "k" }))).toMatchObject(idle);
    const list = await rejection((async () => {
      for await (const page of store.listObjects({ bucket: "b" })) expect(page).toBeUndefined();
    })());
    expect(list).toMatchObject(idle);
    expect(list.message).toMatch(/ListObjects of bucket "b" was idle/);
    // An endless body: the plugin reads none of it, so the host soon has no room to send.
    async function* endless(): AsyncGenerator<Uint8Array> {
      for (;;) yield Buffer.alloc(256 * 1024);
    }
    const put = await rejection(store.putObject({ bucket: "b", key: "k", body: endless() }));
    expect(put).toMatchObject(idle);
    expect(put.message).toMatch(/PutObject of "k" was idle/);
  }, 60_000);

  it.each([true, false])("an upload whose own body stalls forever still ends with its deadline or cancellation, and the body is closed (dataChannel=%s)", async (dataChannel) => {
    const h = await host({ healthCheck: { intervalMs: 0 }, dataChannel });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    // The caller's body: one chunk, then nothing, ever (a source that hung). Only closing it ends it.
    const closed: string[] = [];
    function stalled(name: string): Readable {
      let sent = false;
      const body = new Readable({
        read() {
          if (!sent) this.push(Buffer.alloc(64 * 1024, 1));
          sent = true;
        },
      });
      body.on("close", () => closed.push(name));
      return body;
    }
    const late = await rejection(store.putObject({ bucket: "b", key: "late", body: stalled("late") }, { timeoutMs: 300 }));
    expect(late).toMatchObject({ code: Code.DeadlineExceeded });
    const controller = new AbortController();
    const cancelled = store.putObject({ bucket: "b", key: "cancelled", body: stalled("cancelled") }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect(await rejection(cancelled)).toMatchObject({ code: Code.Canceled });
    await eventually(() => closed.length === 2);
    expect(closed.sort()).toEqual(["cancelled", "late"]);
    expect(await store.headObject({ bucket: "b", key: "late" })).toBeUndefined();
    expect(await store.headObject({ bucket: "b", key: "cancelled" })).toBeUndefined();
  }, 60_000);

  it.each([true, false])("a reader that pauses longer than the idle timeout is not failed (dataChannel=%s)", async (dataChannel) => {
    const h = await host({ streamIdleTimeoutMs: 1000, healthCheck: { intervalMs: 0 }, dataChannel });
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    const data = randomBytes(8 * 1024 * 1024);
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([data]) });
    const got = await store.getObject({ bucket: "b", key: "k" });
    const chunks: Buffer[] = [];
    let paused = false;
    for await (const chunk of got.body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      if (!paused) {
        paused = true;
        // The caller's own pace: three idle timeouts long, with the plugin waiting on us.
        await new Promise((resolve) => setTimeout(resolve, 3000));
      }
    }
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  }, 60_000);
});
