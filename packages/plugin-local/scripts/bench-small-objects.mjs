#!/usr/bin/env node
/**
 * Measures small-object put, head, get and delete of the local ObjectStore, to price the
 * confinement of its file-system calls. Usage:
 *
 *   node packages/plugin-local/scripts/bench-small-objects.mjs [dist-dir ...] [--count N] [--rounds R] [--fsync true|false] [--host]
 *
 * Each dist directory (default: packages/plugin-local/dist) is measured in turn, rounds
 * interleaved, on a fresh root under the system's temporary directory. In process by default;
 * with --host, through a PluginHost and the dist's `main.js` (a real plugin process). Prints, per
 * dist and operation, the median over rounds of the wall time per call and, in process, of the
 * CPU time per call (user + system of the whole process, thread pool included), in microseconds:
 * CPU time is the steadier figure on a shared machine.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = args[at + 1];
  args.splice(at, 2);
  return value;
};
const flag = (name) => {
  const at = args.indexOf(`--${name}`);
  if (at >= 0) args.splice(at, 1);
  return at >= 0;
};
const count = Number(option("count", "2000"));
const rounds = Number(option("rounds", "5"));
const fsync = option("fsync", "false");
const viaHost = flag("host");
const dists = (args.length > 0 ? args : [new URL("../dist", import.meta.url).pathname]).map((d) => resolve(d));

const body = Buffer.alloc(1024, 7);
const keys = Array.from({ length: count }, (_, i) => `backups/b${String(i % 20)}/object-${String(i)}.json`);
const OPERATIONS = ["put", "head", "get", "delete"];

/** A store over `dist`, in process or through a PluginHost; `close` ends it. */
async function openStore(dist, root) {
  if (!viaHost) {
    const { LocalObjectStore } = await import(pathToFileURL(join(dist, "index.js")).href);
    const store = new LocalObjectStore();
    await store.init({ root, fsync });
    return { store, close: () => store.close() };
  }
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  const host = new PluginHost({ plugins: [nodePluginCommand(join(dist, "main.js"))], logger: silentLogger });
  await host.start();
  const store = host.objectStore("stowage.io/local");
  await store.init({ root, fsync });
  return { store, close: () => host.close() };
}

async function measure(dist) {
  const root = await mkdtemp(join(tmpdir(), "stowage-bench-small-"));
  await mkdir(join(root, "b"));
  const { store, close } = await openStore(dist, root);
  const time = async (fn) => {
    const cpu = process.cpuUsage();
    const start = process.hrtime.bigint();
    for (const key of keys) await fn(key);
    const wall = Number(process.hrtime.bigint() - start) / 1000 / keys.length;
    const used = process.cpuUsage(cpu);
    return { wall, cpu: (used.user + used.system) / keys.length };
  };
  try {
    return {
      put: await time((key) => store.putObject({ bucket: "b", key, body: Readable.from([body]), size: body.length })),
      head: await time((key) => store.headObject({ bucket: "b", key })),
      get: await time(async (key) => {
        const out = await store.getObject({ bucket: "b", key });
        for await (const chunk of out.body) void chunk;
      }),
      delete: await time((key) => store.deleteObject({ bucket: "b", key })),
    };
  } finally {
    await close();
    await rm(root, { recursive: true, force: true });
  }
}

const results = new Map(dists.map((d) => [d, []]));
for (let round = 0; round < rounds; round++) {
  for (const dist of dists) results.get(dist).push(await measure(dist));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [dist, measured] of results) {
  const figure = (op, what) => Math.round(median(measured.map((r) => r[op][what])));
  const row = Object.fromEntries(OPERATIONS.map((op) => [op, viaHost ? { wall: figure(op, "wall") } : { wall: figure(op, "wall"), cpu: figure(op, "cpu") }]));
  console.log(JSON.stringify({ dist, via: viaHost ? "host" : "in-process", count, rounds, fsync, microsecondsPerCall: row }));
}
