/**
 * The supervisor (host/supervisor.ts) on its own, without PluginHost: one launch shared by
 * concurrent callers, relaunch after a crash with every remembered Init replayed, the error a call
 * gets from a process that died under it, the restart policy that gives up, and close. Real plugin
 * processes (the memory fixture); every wait is on a process event.
 */
import { afterEach, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { ObjectStoreService } from "../src/gen/stowage/v1/object_store_pb.js";
import { HEALTH_CHECK_DEFAULTS } from "../src/host/health-monitor.js";
import { Supervisor, type SupervisorOptions } from "../src/host/supervisor.js";
import type { PluginProcess } from "../src/host/plugin-process.js";
import { hostAdapter } from "../src/protocols/registry.js";
import { alive, capturingLogger, memoryFixture } from "./support/host.js";
import { rejection } from "../src/testing.js";

const PLUGIN = "fixture.stowage.io/memory";
const supervisors: Supervisor[] = [];

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.close()));
});

function supervise(overrides: Partial<SupervisorOptions> = {}, env: Record<string, string> = {}): { supervisor: Supervisor; lines: Record<string, unknown>[] } {
  const { logger, lines } = capturingLogger();
  const supervisor = new Supervisor(
    { command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: "ok", ...env } },
    hostAdapter(undefined),
    {
      handshakeTimeoutMs: 30_000,
      logger,
      dataChannel: false,
      restart: { maxCrashes: 5, windowMs: 60_000 },
      shutdownGraceMs: 2_000,
      initTimeoutMs: 30_000,
      // Health checks are the liveness tests' subject (host-liveness.test.ts); here they stay out of the way.
      healthCheck: { ...HEALTH_CHECK_DEFAULTS, intervalMs: 0 },
      ...overrides,
    },
  );
  supervisors.push(supervisor);
  return { supervisor, lines };
}

/** Whether bucket `b` exists in the process: HeadObject answers (false) instead of failing. */
async function headInBucket(proc: PluginProcess, bucket: string): Promise<boolean> {
  const response = await proc.channel.unary(ObjectStoreService.method.headObject, { plugin: PLUGIN, bucket, key: "k" });
  return response.exists;
}

async function killAndWait(proc: PluginProcess): Promise<void> {
  process.kill(proc.pid, "SIGKILL");
  await proc.exited;
}

// Each test launches one to four plugin processes: a few seconds on a loaded machine.
describe("Supervisor", { timeout: 60_000 }, () => {
  it("launches once for concurrent callers and keeps handing out the live process", async () => {
    const { supervisor } = supervise();
    expect(supervisor.current).toBeUndefined();
    const [a, b, c] = await Promise.all([supervisor.acquire(), supervisor.acquire(), supervisor.acquire()]);
    expect(a).toBe(b);
    expect(b).toBe(c);
    expect(await supervisor.acquire()).toBe(a);
    expect(supervisor.current).toBe(a);
    expect(alive(a.pid)).toBe(true);
  });

  it("relaunches a process that died and replays every remembered Init before handing it out", async () => {
    const { supervisor, lines } = supervise();
    const first = await supervisor.acquire();
    await first.channel.unary(ObjectStoreService.method.init, { plugin: PLUGIN, config: { buckets: "kept" } });
    supervisor.rememberInit("object-store", PLUGIN, { buckets: "kept" }, first);
    expect(await headInBucket(first, "kept")).toBe(false);
    await killAndWait(first);
    const second = await supervisor.acquire();
    expect(second.pid).not.toBe(first.pid);
    // The bucket exists again only because Init was replayed in the new process.
    expect(await headInBucket(second, "kept")).toBe(false);
    expect(lines.some((l) => l.msg === "plugin restarted" && l.replaying === 1)).toBe(true);
  });

  it("replays the last configuration remembered for a plugin, not every one", async () => {
    const { supervisor } = supervise();
    const first = await supervisor.acquire();
    supervisor.rememberInit("object-store", PLUGIN, { buckets: "old" }, first);
    supervisor.rememberInit("object-store", PLUGIN, { buckets: "new" }, first);
    await killAndWait(first);
    const second = await supervisor.acquire();
    expect(await headInBucket(second, "new")).toBe(false);
    expect(await rejection(headInBucket(second, "old"))).toMatchObject({ code: Code.NotFound, reason: Reason.BucketNotFound });
  });

  it("fails the acquire with PLUGIN_CRASHED when replaying an Init fails in the new process", async () => {
    const { supervisor } = supervise();
    const first = await supervisor.acquire();
    supervisor.rememberInit("object-store", PLUGIN, { noSuchKey: "x" }, first);
    await killAndWait(first);
    const error = await rejection(supervisor.acquire());
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    expect(error.rawMessage).toMatch(/^plugin fixture\.stowage\.io\/memory was restarted but replaying its Init failed: /);
  });

  it("turns the failure of a call whose process died under it into a crash error naming the exit", async () => {
    const { supervisor } = supervise();
    const proc = await supervisor.acquire();
    await proc.channel.unary(ObjectStoreService.method.init, { plugin: PLUGIN, config: { buckets: "b" } });
    // The fixture exits with status 9 when asked for the key "crash".
    const call = proc.channel.serverStream(ObjectStoreService.method.getObject, { plugin: PLUGIN, bucket: "b", key: "crash" });
    const error = await rejection(call.messages.next());
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    expect(error.rawMessage).toContain("exited with status 9");
  });

  it("gives up after more crashes than the policy allows in its window, and stays given up", async () => {
    const { supervisor, lines } = supervise({ restart: { maxCrashes: 1, windowMs: 600_000 } });
    for (let crash = 0; crash < 2; crash++) {
      const proc = await supervisor.acquire();
      await killAndWait(proc);
    }
    const error = await rejection(supervisor.acquire());
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed, metadata: { command: process.execPath } });
    expect(error.rawMessage).toMatch(/crashed 2 times within 600 s \(last: killed by SIGKILL\); the host stopped restarting it/);
    // It stays given up: no new process is launched.
    expect(await rejection(supervisor.acquire())).toBe(error);
    expect(lines.some((l) => l.level === 50 && typeof l.msg === "string" && l.msg.includes("stopped restarting"))).toBe(true);
  });

  it("forgets crashes older than the window", async () => {
    const { supervisor } = supervise({ restart: { maxCrashes: 1, windowMs: 0 } });
    for (let crash = 0; crash < 3; crash++) {
      const proc = await supervisor.acquire();
      await killAndWait(proc);
    }
    const proc = await supervisor.acquire();
    expect(alive(proc.pid)).toBe(true);
  });

  it("fails an acquire whose launch fails with the plugin's own explanation", async () => {
    const { supervisor } = supervise({}, { FIXTURE_MODE: "exit-early" });
    const error = await rejection(supervisor.acquire());
    expect(error.rawMessage).toContain("fixture: failing at start on purpose");
  });

  it("stops the process on close and refuses to launch again", async () => {
    const { supervisor } = supervise();
    const proc = await supervisor.acquire();
    await supervisor.close();
    expect(proc.hasExited).toBe(true);
    expect(alive(proc.pid)).toBe(false);
    expect(await rejection(supervisor.acquire())).toMatchObject({ code: Code.FailedPrecondition, rawMessage: "the plugin host is closed" });
  });

  it("waits for a launch in progress before closing, so no process outlives it", async () => {
    const { supervisor } = supervise();
    const launching = supervisor.acquire();
    await supervisor.close();
    const proc = await launching;
    expect(proc.hasExited).toBe(true);
  });
});
