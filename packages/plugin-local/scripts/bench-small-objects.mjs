#!/usr/bin/env node
/**
 * Measures small-object put, head and get of LocalObjectStore in process, to price the
 * confinement of file-system calls. Usage:
 *
 *   node packages/plugin-local/scripts/bench-small-objects.mjs [dist-dir ...] [--count N] [--rounds R] [--fsync true|false]
 *
 * Each dist directory (default: packages/plugin-local/dist) is measured in turn, rounds
 * interleaved, on a fresh root under the system's temporary directory; the median of the rounds
 * is printed in microseconds per call.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const [value] = args.splice(at, 2).slice(1);
  return value;
};
const count = Number(option("count", "2000"));
const rounds = Number(option("rounds", "5"));
const fsync = option("fsync", "false");
const dists = args.length > 0 ? args : [new URL("../dist", import.meta.url).pathname];

const body = Buffer.alloc(1024, 7);
const keys = Array.from({ length: count }, (_, i) => `backups/b${String(i % 20)}/object-${String(i)}.json`);

async function measure(dist) {
  const { LocalObjectStore } = await import(pathToFileURL(join(resolve(dist), "index.js")).href);
  const root = await mkdtemp(join(tmpdir(), "stowage-bench-small-"));
  await mkdir(join(root, "b"));
  const store = new LocalObjectStore();
  await store.init({ root, fsync });
  const time = async (fn) => {
    const start = process.hrtime.bigint();
    for (const key of keys) await fn(key);
    return Number(process.hrtime.bigint() - start) / 1000 / keys.length;
  };
  try {
    const put = await time((key) => store.putObject({ bucket: "b", key, body: [body], size: body.length }));
    const head = await time((key) => store.headObject({ bucket: "b", key }));
    const get = await time(async (key) => {
      const out = await store.getObject({ bucket: "b", key });
      for await (const chunk of out.body) void chunk;
    });
    const del = await time((key) => store.deleteObject({ bucket: "b", key }));
    return { put, head, get, delete: del };
  } finally {
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
}

const results = new Map(dists.map((d) => [d, []]));
for (let round = 0; round < rounds; round++) {
  for (const dist of dists) results.get(dist).push(await measure(dist));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [dist, runs] of results) {
  const row = Object.fromEntries(["put", "head", "get", "delete"].map((op) => [op, Math.round(median(runs.map((r) => r[op])))]));
  console.log(JSON.stringify({ dist, count, rounds, fsync, microsecondsPerCall: row }));
}
