/**
 * Fault trial of plugin pools (issue 17): plugin-local as a pool of three processes sharing one root,
 * many puts and then many gets at once, random members killed (SIGKILL) while they run. Every put
 * that succeeded reads back whole; every call that failed failed with a typed StowageError (never
 * INTERNAL or UNKNOWN); an object whose put failed is absent or whole, never partial; no process of
 * the pool outlives the host.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Code, StowageError, codeName, silentLogger } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore } from "@stowage/sdk/host";
import { recordTrial, runs } from "./support/trials.js";

const PLUGIN_LOCAL = fileURLToPath(new URL("../../packages/plugin-local/dist/main.js", import.meta.url));
const LOCAL = "stowage.io/local";
const PROCESSES = 3;
const PUTS = 12;
const CHUNK = 128 * 1024;

const scratch: string[] = [];
afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

/** A body in 128 KiB chunks, one per turn of the event loop, so calls stay in flight while members are killed. */
async function* slowly(data: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += CHUNK) {
    await new Promise((resolve) => setImmediate(resolve));
    yield data.subarray(at, at + CHUNK);
  }
}

/** What went wrong in a round, by kind; empty when the round kept every guarantee. */
interface Tally {
  putsOk: number;
  putsFailed: number;
  getsOk: number;
  getsFailed: number;
  kills: number;
  byCode: Map<string, number>;
  violations: string[];
  pids: Set<number>;
}

/** Records a failed call: typed and not INTERNAL/UNKNOWN, or a violation. */
function failed(tally: Tally, what: string, error: unknown): void {
  if (!(error instanceof StowageError) || error.code === Code.Internal || error.code === Code.Unknown) {
    tally.violations.push(`${what} failed untyped or INTERNAL: ${String(error)}`);
    return;
  }
  const name = `${codeName(error.code)}${error.reason === undefined ? "" : `/${error.reason}`}`;
  tally.byCode.set(name, (tally.byCode.get(name) ?? 0) + 1);
}

/** Kills one running member of the pool at random (after noting every pid seen). */
function killOne(host: PluginHost, tally: Tally): void {
  const pids = host.plugins().find((p) => p.descriptor.name === LOCAL)?.pids ?? [];
  for (const pid of pids) tally.pids.add(pid);
  // None running at this moment (all killed, not yet relaunched): nothing to kill.
  if (pids.length === 0) return;
  const victim = pids[randomInt(pids.length)];
  if (victim === undefined) return;
  process.kill(victim, "SIGKILL");
  tally.kills++;
}

/** Runs `calls` at once; after each of the `killAfter` completions (in order), kills a random member. */
async function withKills<T>(host: PluginHost, tally: Tally, calls: (() => Promise<T>)[], killAfter: readonly number[]): Promise<PromiseSettledResult<T>[]> {
  let done = 0;
  return Promise.allSettled(
    calls.map(async (call) => {
      try {
        return await call();
      } finally {
        done++;
        if (killAfter.includes(done)) killOne(host, tally);
      }
    }),
  );
}

async function round(tally: Tally): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "stowage-pool-trial-"));
  scratch.push(root);
  const host = new PluginHost({ plugins: [nodePluginCommand(PLUGIN_LOCAL)], logger: silentLogger, processes: { default: PROCESSES }, restart: { maxCrashes: 20, windowMs: 60_000 } });
  await host.start();
  try {
    const store: HostObjectStore = host.objectStore(LOCAL);
    await store.init({ root, createBuckets: "true" });
    const bodies = Array.from({ length: PUTS }, (_, i) => ({ key: `k${String(i)}`, data: randomBytes(CHUNK * randomInt(4, 17)) }));
    // The puts at once, a random member killed after the 1st, 4th and 8th ends.
    const puts = await withKills(
      host,
      tally,
      bodies.map(({ key, data }) => () => store.putObject({ bucket: "b", key, body: slowly(data), size: data.length })),
      [1, 4, 8],
    );
    const stored: typeof bodies = [];
    for (const [i, result] of puts.entries()) {
      const body = bodies[i];
      if (body === undefined) continue;
      if (result.status === "fulfilled") {
        tally.putsOk++;
        stored.push(body);
      } else {
        tally.putsFailed++;
        failed(tally, `put ${body.key}`, result.reason);
      }
    }
    // The gets of what was stored at once, a member killed after the 2nd and 5th end.
    const gets = await withKills(
      host,
      tally,
      stored.map(({ key }) => async () => buffer((await store.getObject({ bucket: "b", key })).body)),
      [2, 5],
    );
    for (const [i, result] of gets.entries()) {
      const body = stored[i];
      if (body === undefined) continue;
      if (result.status === "fulfilled") {
        tally.getsOk++;
        if (sha256(result.value) !== sha256(body.data)) tally.violations.push(`get ${body.key} returned ${String(result.value.length)} bytes that are not what was put`);
      } else {
        tally.getsFailed++;
        failed(tally, `get ${body.key}`, result.reason);
      }
    }
    // Without kills: every stored object whole; one whose put failed absent or whole.
    for (const { key, data } of bodies) {
      const ok = stored.some((s) => s.key === key);
      const info = await store.headObject({ bucket: "b", key });
      if (info === undefined) {
        if (ok) tally.violations.push(`${key} was stored but is gone`);
        continue;
      }
      const read = await buffer((await store.getObject({ bucket: "b", key })).body);
      if (sha256(read) !== sha256(data)) tally.violations.push(`${key} (put ${ok ? "succeeded" : "failed"}) reads back ${String(read.length)} of ${String(data.length)} bytes, not what was put`);
    }
    for (const pid of host.plugins().find((p) => p.descriptor.name === LOCAL)?.pids ?? []) tally.pids.add(pid);
  } finally {
    await host.close();
  }
}

describe("plugin pools under kills", () => {
  it("members killed during concurrent puts and gets: successful puts read back whole, failures typed, no orphan", async () => {
    const n = runs(3);
    const tally: Tally = { putsOk: 0, putsFailed: 0, getsOk: 0, getsFailed: 0, kills: 0, byCode: new Map(), violations: [], pids: new Set() };
    for (let r = 0; r < n; r++) await round(tally);
    const orphans = [...tally.pids].filter(alive);
    const codes = [...tally.byCode].map(([code, count]) => `${code} ${String(count)}`).join(", ");
    recordTrial({
      trial: `kill random members of a plugin-local pool (${String(PROCESSES)} processes, one root) during ${String(PUTS)} concurrent puts (0.5–2 MiB) and then the gets`,
      runs: n,
      result: `${String(tally.kills)} kills; puts ${String(tally.putsOk)} ok, ${String(tally.putsFailed)} failed; gets ${String(tally.getsOk)} ok, ${String(tally.getsFailed)} failed; failures ${codes === "" ? "none" : codes}; ${tally.violations.length === 0 ? "every successful put read back whole, no failed put left a partial object" : `${String(tally.violations.length)} violations: ${tally.violations.join("; ")}`}; ${String(tally.pids.size)} plugin processes seen, ${String(orphans.length)} alive after close`,
    });
    expect(tally.violations).toEqual([]);
    expect(orphans).toEqual([]);
  }, 300_000);
});
