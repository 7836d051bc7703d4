#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: plugin-local as a single executable (pnpm run package) against the same plugin as
// `node dist/main.js`, in one run.
//
//   node bench/single-executable.mjs [--size-mib 1024] [--runs 3] [--cold-starts 20] [--bun PATH] [--json out.json]
//
// --bun PATH adds a third form: the same plugin compiled by another route, `bun build --compile
// packages/plugin-local/dist/main.js --outfile PATH` (Bun from the npm package `bun`), measured the
// same way; docs/deployment.md records why the single executable is Node's.
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
  bun: { type: "string" },
});
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
const coldStarts = Number(values["cold-starts"]);
const SEA_DIR = fileURLToPath(new URL("../.build/sea/stowage-plugin-local/", import.meta.url));
const FORMS = {
  node: () => pluginExecutable("@stowage/plugin-local"),
  sea: () => ({ command: join(SEA_DIR, "stowage-plugin-local") }),
  bun: () => ({ command: values.bun }),
};
const forms = values.bun === undefined ? ["node", "sea"] : ["node", "sea", "bun"];

async function local(form, root, folder) {
  await mkdir(join(root, folder), { recursive: true });
  return { plugin: FORMS[form](), name: "stowage.io/local", config: { root: join(root, folder), createBuckets: "true" } };
}

const transfer = (form) => async ({ root }) => throughPlugin(await local(form, root, `objects-${form}`), { bucket: "bench", size: sizeMiB * MiB, runs, keyPrefix: form });
await runChildScenario(values, { node: transfer("node"), sea: transfer("sea"), bun: transfer("bun") });

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
  const starts = Object.fromEntries(forms.map((form) => [form, []]));
  for (let i = 0; i < coldStarts; i++) {
    // Each round starts the forms in another order, so neither profits from the other's warm caches.
    for (const form of forms.map((_, j) => forms[(i + j) % forms.length])) {
      const store = await local(form, root, `cold-${form}`);
      const { seconds, result } = await time(() => openStore(store));
      await result.host.close();
      starts[form].push(seconds * 1000);
    }
  }
  const gib = (sizeMiB * 2 * runs) / 1024;
  results.forms = {};
  for (const form of forms) {
    const r = await inChild(import.meta.url, values, form, { root });
    results.forms[form] = {
      coldStartMedianMs: median(starts[form]),
      coldStartMaxMs: Math.max(...starts[form]),
      idleRssMiB: r.pluginIdleRss / MiB,
      peakRssMiB: r.pluginPeakRss / MiB,
      putMiBps: sizeMiB / r.put,
      getMiBps: sizeMiB / r.get,
      pluginCpuPerGiB: r.pluginCpu / gib,
    };
  }
  results.diskMiB = { node: statSync(process.execPath).size / MiB, sea: treeBytes(SEA_DIR) / MiB, ...(values.bun === undefined ? {} : { bun: statSync(values.bun).size / MiB }) };
} finally {
  await rm(root, { recursive: true, force: true });
}

const f = results.forms;
const row = (figure, pick) => [figure, ...forms.map((form) => num(pick(f[form]))), num(pick(f.sea) / pick(f.node))];
printTable(
  ["figure", ...forms.map((form) => ({ node: "node dist/main.js", sea: "single executable", bun: "bun --compile" })[form]), "single executable / node"],
  [
    ["size on disk (MiB): node binary, executable + lib/, bun executable", ...forms.map((form) => num(results.diskMiB[form])), ""],
    row(`cold start to first answered RPC, median of ${coldStarts} (ms)`, (x) => x.coldStartMedianMs),
    row(`cold start, max of ${coldStarts} (ms)`, (x) => x.coldStartMaxMs),
    row("plugin RSS once initialised (MiB)", (x) => x.idleRssMiB),
    row(`PUT ${sizeMiB} MiB, median of ${runs} (MiB/s)`, (x) => x.putMiBps),
    row(`GET ${sizeMiB} MiB, median of ${runs} (MiB/s)`, (x) => x.getMiBps),
    row("plugin peak RSS (MiB)", (x) => x.peakRssMiB),
    row("plugin CPU s per GiB moved", (x) => x.pluginCpuPerGiB),
  ],
);
await writeJson(values, results);
