#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: plugin-local as a single executable (pnpm run package) against the same plugin as
// `node dist/main.js`, in one run.
//
//   node bench/single-executable.mjs [--size-mib 1024] [--runs 3] [--cold-starts 20] [--json out.json]
//
// Figures, for each form: size on disk, cold start (spawn to the first answered RPC: handshake,
// GetPluginInfo, Init; the two forms alternate), the plugin's RSS once initialised (idle) and its
// peak, PUT and GET MiB/s of one object through the plugin (data channel), and the plugin's CPU
// seconds per GiB moved. Ratios (single executable over node) are what count. Each transfer
// scenario runs in a fresh host process (bench/harness.mjs).

import { statSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MiB, benchArgs, inChild, num, openStore, pluginExecutable, printTable, runChildScenario, throughPlugin, writeJson } from "./harness.mjs";
import { median, time } from "./measure.mjs";

const values = benchArgs({
  "size-mib": { type: "string", default: "1024" },
  runs: { type: "string", default: "3" },
  "cold-starts": { type: "string", default: "20" },
});
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
const coldStarts = Number(values["cold-starts"]);
const SEA_DIR = fileURLToPath(new URL("../.build/sea/stowage-plugin-local/", import.meta.url));
const FORMS = {
  node: () => pluginExecutable("@stowage/plugin-local"),
  sea: () => ({ command: join(SEA_DIR, "stowage-plugin-local") }),
};

async function local(form, root, folder) {
  await mkdir(join(root, folder), { recursive: true });
  return { plugin: FORMS[form](), name: "stowage.io/local", config: { root: join(root, folder), createBuckets: "true" } };
}

const transfer = (form) => async ({ root }) => throughPlugin(await local(form, root, `objects-${form}`), { bucket: "bench", size: sizeMiB * MiB, runs, keyPrefix: form });
await runChildScenario(values, { node: transfer("node"), sea: transfer("sea") });

try {
  statSync(join(SEA_DIR, "stowage-plugin-local"));
} catch {
  throw new Error(`${SEA_DIR}stowage-plugin-local is missing: run pnpm run package first`);
}

/** Bytes of every file under `dir`. */
function treeBytes(dir) {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((sum, e) => sum + statSync(join(e.parentPath, e.name)).size, 0);
}

const root = await mkdtemp(join(process.cwd(), ".bench-sea-"));
const results = { sizeMiB, runs, coldStarts, node: process.version, date: new Date().toISOString() };
try {
  const starts = { node: [], sea: [] };
  for (let i = 0; i < coldStarts; i++) {
    for (const form of i % 2 === 0 ? ["node", "sea"] : ["sea", "node"]) {
      const store = await local(form, root, `cold-${form}`);
      const { seconds, result } = await time(() => openStore(store));
      await result.host.close();
      starts[form].push(seconds * 1000);
    }
  }
  const viaNode = await inChild(import.meta.url, values, "node", { root });
  const viaSea = await inChild(import.meta.url, values, "sea", { root });
  const gib = (sizeMiB * 2 * runs) / 1024;
  const figures = (r, s) => ({
    coldStartMedianMs: median(s),
    coldStartMaxMs: Math.max(...s),
    idleRssMiB: r.pluginIdleRss / MiB,
    peakRssMiB: r.pluginPeakRss / MiB,
    putMiBps: sizeMiB / r.put,
    getMiBps: sizeMiB / r.get,
    pluginCpuPerGiB: r.pluginCpu / gib,
  });
  Object.assign(results, {
    seaBytes: statSync(join(SEA_DIR, "stowage-plugin-local")).size,
    seaDirBytes: treeBytes(SEA_DIR),
    nodeBinaryBytes: statSync(process.execPath).size,
    nodeForm: figures(viaNode, starts.node),
    seaForm: figures(viaSea, starts.sea),
  });
} finally {
  await rm(root, { recursive: true, force: true });
}

const { nodeForm: n, seaForm: s } = results;
const pair = (a, b) => `${num(a)} / ${num(b)}`;
printTable(
  ["figure (node dist/main.js / single executable)", "value", "ratio"],
  [
    ["size on disk (MiB): node binary / executable + lib/", pair(results.nodeBinaryBytes / MiB, results.seaDirBytes / MiB), ""],
    [`cold start to first answered RPC, median of ${coldStarts} (ms)`, pair(n.coldStartMedianMs, s.coldStartMedianMs), num(s.coldStartMedianMs / n.coldStartMedianMs)],
    [`cold start, max of ${coldStarts} (ms)`, pair(n.coldStartMaxMs, s.coldStartMaxMs), ""],
    ["plugin RSS once initialised (MiB)", pair(n.idleRssMiB, s.idleRssMiB), num(s.idleRssMiB / n.idleRssMiB)],
    [`PUT ${sizeMiB} MiB, median of ${runs} (MiB/s)`, pair(n.putMiBps, s.putMiBps), num(s.putMiBps / n.putMiBps)],
    [`GET ${sizeMiB} MiB, median of ${runs} (MiB/s)`, pair(n.getMiBps, s.getMiBps), num(s.getMiBps / n.getMiBps)],
    ["plugin peak RSS (MiB)", pair(n.peakRssMiB, s.peakRssMiB), num(s.peakRssMiB / n.peakRssMiB)],
    ["plugin CPU s per GiB moved", pair(n.pluginCpuPerGiB, s.pluginCpuPerGiB), num(s.pluginCpuPerGiB / n.pluginCpuPerGiB)],
  ],
);
await writeJson(values, results);
