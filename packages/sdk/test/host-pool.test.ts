/**
 * Plugin pools through PluginHost (`processes`), with real processes of the memory fixture: calls
 * spread over the processes, Inits reach every process (those launched later too, and a re-Init
 * the running ones before their next call), a process killed mid-call fails only its own calls,
 * deadlines and cancellation, close, and the option's checks. The fixture's HeadObject of "whoami"
 * answers with its pid and configured tag; "hold:<file>" does so once <file> exists, so a test
 * keeps calls in flight without timing anything.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import { PluginHost, type PluginHostOptions, type ProcessCount, type ProcessCounts } from "../src/host.js";
import type { HostObjectStore, LaunchedProcess } from "../src/host/protocol-adapter.js";
import type { ObjectInfo } from "../src/types.js";
import { eventually, thrownBy } from "../src/testing.js";
import { ObjectStoreService } from "../src/gen/stowage/v1/object_store_pb.js";
import { HEALTH_CHECK_DEFAULTS } from "../src/host/health-monitor.js";
import { Supervisor } from "../src/host/supervisor.js";
import { hostAdapter } from "../src/protocols/registry.js";
import { alive, capturingLogger, memoryFixture, startFixtureHost } from "./support/host.js";

const PLUGIN = "fixture.stowage.io/memory";
const hosts: PluginHost[] = [];
let dir: string;
let files = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-pool-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

/**
 * A host running the fixture as a pool of `processes`, its store initialised with `tag`. Without
 * health checks: a check in flight counts as a call, and would tip the spreads the tests expect.
 */
async function pool(processes: ProcessCount, tag = "t1", options: PluginHostOptions = {}): Promise<{ host: PluginHost; store: HostObjectStore }> {
  const host = await startFixtureHost("ok", { processes: { default: processes }, healthCheck: { intervalMs: 0 }, ...options });
  hosts.push(host);
  const store = host.objectStore(PLUGIN);
  await store.init({ tag });
  return { host, store };
}

/** The pids of every running process of the fixture's pool. */
function pids(host: PluginHost): number[] {
  return [...(host.plugins().find((p) => p.descriptor.name === PLUGIN)?.pids ?? [])].sort((a, b) => a - b);
}

/** Who answered a "whoami" or "hold:" HeadObject. */
function who(info: ObjectInfo | undefined): { pid: number; tag: string } {
  if (info === undefined) throw new Error("the fixture did not answer whoami");
  return { pid: Number(info.metadata.pid), tag: info.metadata.tag ?? "" };
}

/** `n` calls held in the plugin until `release()`; each settles to who answered, or its error. */
function held(store: HostObjectStore, n: number, options: { signal?: AbortSignal; timeoutMs?: number } = {}): { calls: Promise<{ pid: number; tag: string } | StowageError>[]; release: () => Promise<void> } {
  const file = join(dir, `release-${String(files++)}`);
  const calls = Array.from({ length: n }, () =>
    store.headObject({ bucket: "b", key: `hold:${file}` }, options).then(who, (error: unknown) => {
      if (error instanceof StowageError) return error;
      throw error;
    }),
  );
  return { calls, release: () => writeFile(file, "") };
}

/** Holds `n` calls at once, releases them, and returns who answered each. */
async function burst(store: HostObjectStore, n: number): Promise<{ pid: number; tag: string }[]> {
  const { calls, release } = held(store, n);
  await release();
  const answers = await Promise.all(calls);
  return answers.map((a) => {
    if (a instanceof StowageError) throw a;
    return a;
  });
}

/** How many answers each pid gave, sorted. */
function spread(answers: { pid: number }[]): number[] {
  const counts = new Map<number, number>();
  for (const { pid } of answers) counts.set(pid, (counts.get(pid) ?? 0) + 1);
  return [...counts.values()].sort((a, b) => a - b);
}

// Each test starts two to four plugin processes: a few seconds on a loaded machine.
describe("plugin pools", { timeout: 90_000 }, () => {
  it("spreads calls that are in flight together over every process, launching the others as they are needed", async () => {
    const { host, store } = await pool(3);
    // Only the first process runs until calls need more.
    expect(pids(host)).toHaveLength(1);
    const answers = await burst(store, 6);
    expect(spread(answers)).toEqual([2, 2, 2]);
    expect(pids(host)).toHaveLength(3);
    expect([...new Set(answers.map((a) => a.pid))].sort((a, b) => a - b)).toEqual(pids(host));
  });

  it("sends a call to the process with the fewest calls in flight when the calls come one by one", async () => {
    const { host, store } = await pool(3);
    const file = join(dir, `release-${String(files++)}`);
    const calls: Promise<ObjectInfo | undefined>[] = [];
    for (let i = 0; i < 3; i++) {
      calls.push(store.headObject({ bucket: "b", key: `hold:${file}` }));
      // The call has started (or waits for its process's launch) before the next one comes.
      await nextTurn();
    }
    await eventually(() => pids(host).length === 3, { what: "three plugin processes", timeoutMs: 30_000 });
    await writeFile(file, "");
    const answers = (await Promise.all(calls)).map(who);
    expect(spread(answers)).toEqual([1, 1, 1]);
  });

  it("replays the Init on every process, those launched after it too, and a re-Init on each before its next call", async () => {
    const { host, store } = await pool(3, "first");
    // The Init went to the one running process; the two launched for this burst get it replayed.
    const first = await burst(store, 3);
    expect(spread(first)).toEqual([1, 1, 1]);
    expect(first.map((a) => a.tag)).toEqual(["first", "first", "first"]);
    // A new configuration: the Init lands on one process, the others take it before their next call.
    // (While the other two replay it, each counts one call in flight, so a burst need not spread
    // evenly at once; every answer has the new tag, and soon every process gives one.)
    await store.init({ tag: "second" });
    await eventually(
      async () => {
        const second = await burst(store, 3);
        expect(second.map((a) => a.tag)).toEqual(["second", "second", "second"]);
        return spread(second).length === 3;
      },
      { what: "a burst answered by all three processes", timeoutMs: 30_000 },
    );
    for (let i = 0; i < 6; i++) expect(who(await store.headObject({ bucket: "b", key: "whoami" })).tag).toBe("second");
    expect(pids(host)).toHaveLength(3);
  });

  it("fails only the calls of a process killed mid-call; the next calls go on with the Init replayed", async () => {
    const { host, store } = await pool(3, "kept");
    const { calls, release } = held(store, 3);
    await eventually(() => pids(host).length === 3, { what: "three plugin processes", timeoutMs: 30_000 });
    const [victim, ...survivors] = pids(host);
    if (victim === undefined) throw new Error("no process to kill");
    process.kill(victim, "SIGKILL");
    const failed: StowageError[] = [];
    for (const call of calls) {
      void call.then((a) => {
        if (a instanceof StowageError) failed.push(a);
      });
    }
    await eventually(() => failed.length === 1, { what: "the killed process's call to fail", timeoutMs: 30_000 });
    await release();
    const answers = await Promise.all(calls);
    const errors = answers.filter((a) => a instanceof StowageError);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    const served = answers.filter((a): a is { pid: number; tag: string } => !(a instanceof StowageError));
    expect(served.map((a) => a.pid).sort((a, b) => a - b)).toEqual(survivors);
    expect(served.map((a) => a.tag)).toEqual(["kept", "kept"]);
    expect(alive(victim)).toBe(false);
    // The killed process is relaunched for the next calls, with the Init replayed.
    const after = await burst(store, 3);
    expect(spread(after)).toEqual([1, 1, 1]);
    expect(after.map((a) => a.tag)).toEqual(["kept", "kept", "kept"]);
    expect(after.map((a) => a.pid)).not.toContain(victim);
    expect(pids(host)).toHaveLength(3);
  });

  it("enforces deadlines and cancels calls through a pool, which keeps serving on every process", async () => {
    const { host, store } = await pool(2);
    const timed = held(store, 2, { timeoutMs: 300 });
    for (const call of await Promise.all(timed.calls)) expect(call).toMatchObject({ code: Code.DeadlineExceeded });
    const controller = new AbortController();
    const cancelled = held(store, 2, { signal: controller.signal });
    await eventually(() => pids(host).length === 2, { what: "two plugin processes", timeoutMs: 30_000 });
    controller.abort();
    for (const call of await Promise.all(cancelled.calls)) expect(call).toMatchObject({ code: Code.Canceled });
    // Nothing crashed, and the calls that ended count no more: a burst spreads over both again.
    const before = pids(host);
    const answers = await burst(store, 4);
    expect(spread(answers)).toEqual([2, 2]);
    expect(pids(host)).toEqual(before);
  });

  it("leaves no process behind on close", async () => {
    const { host, store } = await pool(3);
    await burst(store, 3);
    const running = pids(host);
    expect(running).toHaveLength(3);
    await host.close();
    for (const pid of running) expect(alive(pid)).toBe(false);
  });

  it("takes a count per plugin, and `auto` runs one process per core", async () => {
    const cores = Math.max(1, Math.min(64, availableParallelism()));
    const { host, store } = await pool("auto");
    expect(spread(await burst(store, cores * 2))).toEqual(Array.from({ length: cores }, () => 2));
    expect(pids(host)).toHaveLength(cores);
    const named = await pool(1, "t1", { processes: { default: 1, plugins: { [PLUGIN]: 2 } } });
    expect(spread(await burst(named.store, 4))).toEqual([2, 2]);
    expect(pids(named.host)).toHaveLength(2);
  });

  it("gives every process of a Velero plugin's pool a new configuration before its next call", async () => {
    // Velero's protocol has no Init replay of the host's own: its clients re-run Init on a process
    // that lacks the current configuration. A GET of "whoami" reads "<pid> <tag>".
    const host = await startFixtureHost("ok", { plugins: [{ command: process.execPath, args: [memoryFixture], protocol: "velero" }], processes: { default: 2 }, healthCheck: { intervalMs: 0 } });
    hosts.push(host);
    const store = host.objectStore(PLUGIN);
    const whoami = async (): Promise<string[]> => {
      const answers = await Promise.all([0, 1].map(async () => (await buffer((await store.getObject({ bucket: "b", key: "whoami" })).body)).toString("utf8")));
      return answers.sort();
    };
    for (const tag of ["one", "two"]) {
      await store.init({ bucket: "b", tag });
      await eventually(
        async () => {
          const answers = await whoami();
          for (const answer of answers) expect(answer.split(" ")[1]).toBe(tag);
          return new Set(answers).size === 2;
        },
        { what: "both processes answering", timeoutMs: 30_000 },
      );
    }
  });

  it("a member ends with the configuration remembered last, even when it came while the member was replaying its launch's", async () => {
    // One supervisor (one member of a pool), whatever the interleaving: the Init remembered while
    // its relaunch replays the previous one must be the one it serves.
    const supervisor = new Supervisor({ command: process.execPath, args: [memoryFixture] }, hostAdapter(undefined), {
      handshakeTimeoutMs: 30_000,
      logger: capturingLogger().logger,
      dataChannel: false,
      restart: { maxCrashes: 5, windowMs: 60_000 },
      shutdownGraceMs: 2_000,
      initTimeoutMs: 30_000,
      healthCheck: { ...HEALTH_CHECK_DEFAULTS, intervalMs: 0 },
    });
    try {
      const tagOf = async (proc: LaunchedProcess): Promise<string | undefined> => (await proc.channel.unary(ObjectStoreService.method.headObject, { plugin: PLUGIN, bucket: "b", key: "whoami" })).object?.metadata.tag;
      const first = await supervisor.acquire();
      // Slow Inits (each applies its tag after 300 ms) keep the replays in flight long enough to overlap.
      const old = { tag: "old", initDelayMs: "300" };
      await first.channel.unary(ObjectStoreService.method.init, { plugin: PLUGIN, config: old });
      supervisor.rememberInit("object-store", PLUGIN, old, first);
      process.kill(first.pid, "SIGKILL");
      await first.exited;
      const relaunch = supervisor.acquire();
      // As soon as the new process is the current one (its replay of "old" starts then), another
      // process of the pool took a new configuration.
      await eventually(() => supervisor.current !== first, { what: "the relaunched process", intervalMs: 1, timeoutMs: 30_000 });
      supervisor.rememberInit("object-store", PLUGIN, { tag: "new", initDelayMs: "300" }, first);
      // The callers waiting for the relaunch get the process once both replays are done, in order.
      const second = await relaunch;
      expect(await tagOf(second)).toBe("new");
      expect(await tagOf(await supervisor.acquire())).toBe("new");
    } finally {
      await supervisor.close();
    }
  });

  it("refuses a count that is not from 1 to 64 or `auto`, naming the option", () => {
    for (const count of [0, 65, -1, 1.5, Number.NaN, "three"]) {
      const error = thrownBy(() => new PluginHost({ processes: { default: count as ProcessCount } }));
      expect(error).toMatchObject({ code: Code.InvalidArgument });
      expect(error.message).toContain("processes.default");
      expect(error.message).toContain('"auto"');
    }
    const error = thrownBy(() => new PluginHost({ processes: { plugins: { [PLUGIN]: 0 } } }));
    expect(error).toMatchObject({ code: Code.InvalidArgument });
    expect(error.message).toContain(`processes.plugins["${PLUGIN}"]`);
    // A bare count is not the option's shape: refused, not ignored.
    for (const shape of [3, "auto", [2]]) {
      const refused = thrownBy(() => new PluginHost({ processes: shape as unknown as ProcessCounts }));
      expect(refused).toMatchObject({ code: Code.InvalidArgument });
      expect(refused.message).toContain("option processes must be an object");
    }
  });
});
