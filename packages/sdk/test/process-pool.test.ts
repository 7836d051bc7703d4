/**
 * The process pool (host/process-pool.ts) on its own, with fake members: which member a call goes
 * to (fewest calls in flight, a running one before one that must launch, in turn among equals,
 * calls picked but not started yet counted), members whose acquire fails, a pool whose members are
 * all closed or given up, and Inits remembered on every member. No process, no timer.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import { ProcessPool, type PoolMember } from "../src/host/process-pool.js";
import type { LaunchedProcess } from "../src/host/protocol-adapter.js";
import type { PluginConfig, PluginKind } from "../src/types.js";
import { rejection } from "../src/testing.js";

/** A member whose state the test sets; its "process" is a marker object naming it. */
class FakeMember implements PoolMember {
  outstanding = 0;
  running: boolean;
  available = true;
  /** Thrown by acquire when set. */
  failure: StowageError | undefined;
  /** When set, acquire waits for it (a launch in progress). */
  launching: Promise<void> | undefined;
  acquired = 0;
  closed = 0;
  readonly inits: { kind: PluginKind; name: string; config: PluginConfig; from: LaunchedProcess }[] = [];
  readonly proc: LaunchedProcess;

  constructor(
    readonly name: string,
    running = true,
  ) {
    this.running = running;
    this.proc = { name } as unknown as LaunchedProcess;
  }

  async acquire(): Promise<LaunchedProcess> {
    this.acquired++;
    if (this.launching !== undefined) await this.launching;
    if (this.failure !== undefined) throw this.failure;
    this.running = true;
    return this.proc;
  }

  rememberInit(kind: PluginKind, name: string, config: PluginConfig, from: LaunchedProcess): void {
    this.inits.push({ kind, name, config, from });
  }

  async close(): Promise<void> {
    this.closed++;
    this.available = false;
    await Promise.resolve();
  }
}

function pool(...members: FakeMember[]): ProcessPool {
  return new ProcessPool(() => members, "plugin executable /plugins/fake");
}

/** The member whose process `proc` is. */
function nameOf(proc: LaunchedProcess): string {
  return proc.name;
}

/** Acquires `n` processes one after the other, each released (its "call" ended) before the next. */
async function sequence(p: ProcessPool, n: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(nameOf(await p.acquire()));
    // The call "starts" and ends within the turn: the pool forgets the pick on the next one.
    await nextTurn();
  }
  return names;
}

describe("ProcessPool", () => {
  it("hands a call to the member with the fewest calls in flight", async () => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    const c = new FakeMember("c");
    a.outstanding = 3;
    b.outstanding = 1;
    c.outstanding = 2;
    expect(await sequence(pool(a, b, c), 3)).toEqual(["b", "b", "b"]);
  });

  it("prefers a running member to one that must launch first, among equal loads", async () => {
    const idle = new FakeMember("idle", false);
    const running = new FakeMember("running");
    expect(await sequence(pool(idle, running), 4)).toEqual(["running", "running", "running", "running"]);
    expect(idle.acquired).toBe(0);
  });

  it("launches a member that has no process when every running one has more calls in flight", async () => {
    const busy = new FakeMember("busy");
    busy.outstanding = 1;
    const idle = new FakeMember("idle", false);
    expect(await sequence(pool(busy, idle), 1)).toEqual(["idle"]);
    expect(idle.running).toBe(true);
  });

  it("takes members with equal loads in turn", async () => {
    const members = ["a", "b", "c"].map((n) => new FakeMember(n));
    const names = await sequence(pool(...members), 6);
    expect(names).toEqual(["a", "b", "c", "a", "b", "c"]);
  });

  it("counts a call it handed out but that has not started yet, so a burst spreads over every member", async () => {
    const a = new FakeMember("a");
    const b = new FakeMember("b", false);
    const c = new FakeMember("c", false);
    // b and c launch meanwhile: their picks count until their processes are handed out.
    let launched = (): void => undefined;
    b.launching = c.launching = new Promise<void>((resolve) => (launched = resolve));
    const p = pool(a, b, c);
    const burst = Array.from({ length: 6 }, () => p.acquire());
    launched();
    const names = (await Promise.all(burst)).map(nameOf).sort();
    expect(names).toEqual(["a", "a", "b", "b", "c", "c"]);
  });

  it("forgets a pick on the next turn of the event loop, when the call has started (or never will)", async () => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    const p = pool(a, b);
    expect(nameOf(await p.acquire())).toBe("a");
    // Same turn: a's pick still counts.
    expect(nameOf(await p.acquire())).toBe("b");
    await nextTurn();
    a.outstanding = 1;
    // a's call is now in its own count; b's (ended) call is not.
    expect(nameOf(await p.acquire())).toBe("b");
  });

  it("skips a member whose acquire fails, and forgets the failed pick", async () => {
    const broken = new FakeMember("broken");
    broken.failure = new StowageError(Code.Unavailable, "broken does not start", { reason: Reason.PluginCrashed });
    const good = new FakeMember("good");
    good.outstanding = 1;
    const p = pool(broken, good);
    expect(nameOf(await p.acquire())).toBe("good");
    expect(broken.acquired).toBe(1);
    // Its failed pick does not count against it: once it recovers, it is the least loaded again.
    broken.failure = undefined;
    await nextTurn();
    expect(nameOf(await p.acquire())).toBe("broken");
  });

  it("throws the last member's error when no member can be acquired", async () => {
    const first = new FakeMember("first");
    const second = new FakeMember("second");
    first.failure = new StowageError(Code.Unavailable, "first is gone", { reason: Reason.PluginCrashed });
    second.failure = new StowageError(Code.Unavailable, "second is gone", { reason: Reason.PluginCrashed });
    second.outstanding = 1;
    const error = await rejection(pool(first, second).acquire());
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    expect(error.message).toContain("second is gone");
    expect(first.acquired).toBe(1);
    expect(second.acquired).toBe(1);
  });

  it("skips members that are not available (closed, given up, gone)", async () => {
    const gone = new FakeMember("gone");
    gone.available = false;
    const here = new FakeMember("here");
    here.outstanding = 5;
    expect(await sequence(pool(gone, here), 2)).toEqual(["here", "here"]);
    expect(gone.acquired).toBe(0);
  });

  it("lets a member say why when none is available: a given-up pool throws the member's own error", async () => {
    const givenUp = new StowageError(Code.Unavailable, "plugin /plugins/fake crashed 6 times within 60 s", { reason: Reason.PluginCrashed });
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    for (const m of [a, b]) {
      m.available = false;
      m.failure = givenUp;
    }
    expect(await rejection(pool(a, b).acquire())).toBe(givenUp);
  });

  it("throws the member's own error once closed", async () => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    const p = pool(a, b);
    await p.close();
    expect(a.closed).toBe(1);
    expect(b.closed).toBe(1);
    a.failure = new StowageError(Code.FailedPrecondition, "the plugin host is closed");
    const error = await rejection(p.acquire());
    expect(error).toMatchObject({ code: Code.FailedPrecondition });
    expect(error.message).toContain("the plugin host is closed");
  });

  it("fails UNAVAILABLE naming what it serves when it has no member at all", async () => {
    const error = await rejection(pool().acquire());
    expect(error).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginCrashed });
    expect(error.message).toContain("plugin executable /plugins/fake");
  });

  it("remembers an Init on every member, with the process it succeeded on", async () => {
    const members = ["a", "b", "c"].map((n) => new FakeMember(n, n === "a"));
    const p = pool(...members);
    const from = await p.acquire();
    p.rememberInit("object-store", "stowage.io/fake", { bucket: "b1" }, from);
    for (const m of members) expect(m.inits).toEqual([{ kind: "object-store", name: "stowage.io/fake", config: { bucket: "b1" }, from }]);
  });

  it("asks the current members each time, so a member that joins or leaves is seen at the next call", async () => {
    const a = new FakeMember("a");
    a.outstanding = 1;
    const members = [a];
    const p = new ProcessPool(() => members, "replicas of dns:///plugins.stowage");
    expect(nameOf(await p.acquire())).toBe("a");
    members.push(new FakeMember("b"));
    await nextTurn();
    expect(nameOf(await p.acquire())).toBe("b");
    members.splice(1, 1);
    await nextTurn();
    expect(nameOf(await p.acquire())).toBe("a");
  });
});
