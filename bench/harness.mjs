// The skeleton every benchmark shares (docs/benchmarks.md): the command line, the plugin
// executables, a host with one plugin, the PUT/GET loops through a store and direct, scenarios in
// fresh child processes (so a peak RSS belongs to one path alone), the figures derived from them,
// and the printed Markdown table and JSON. Each bench/<name>.mjs declares only what differs.
//
// Modules that a measured process must not load unless it needs them (the SDK, the test servers)
// are imported where they are used, so a direct scenario's memory and CPU stay the SDK's alone.

import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { body, cpuSeconds, drain, median, peakRss, rss, time } from "./measure.mjs";

export const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Command line

/** Options of every benchmark: `--json FILE`, and the child-mode ones (`--scenario`, `--context`). */
const COMMON_OPTIONS = {
  json: { type: "string" },
  // Child mode: the scenario to run, and what the parent started for it (JSON).
  scenario: { type: "string" },
  context: { type: "string" },
};

/**
 * Parses the command line with `options` plus the common ones. `pnpm --filter @stowage/bench run x
 * -- …` passes the `--` on, which is dropped.
 */
export function benchArgs(options) {
  const { values } = parseArgs({ args: process.argv.slice(2).filter((arg) => arg !== "--"), options: { ...options, ...COMMON_OPTIONS } });
  return values;
}

/** `--name=value` for every option set on this command line except the common ones, for a child. */
function forwardedArgs(values) {
  return Object.entries(values)
    .filter(([name, value]) => value !== undefined && !(name in COMMON_OPTIONS))
    .map(([name, value]) => `--${name}=${value}`);
}

// ---------------------------------------------------------------------------------------------
// Plugins

const require = createRequire(import.meta.url);

/**
 * The executable a plugin package declares in its package.json `bin` field (one entry), resolved
 * as Node resolves the package from bench/.
 */
export function pluginExecutable(packageName) {
  const manifest = require.resolve(`${packageName}/package.json`);
  const { bin } = require(manifest);
  const entries = typeof bin === "string" ? [bin] : Object.values(bin ?? {});
  if (entries.length !== 1) throw new Error(`${packageName}: expected one executable in package.json "bin", found ${entries.length}`);
  return join(dirname(manifest), entries[0]);
}

/**
 * A `PluginHost` on one plugin, its object store `name` initialised with `config`, and the pid of
 * the plugin process serving it. `plugin` is the path of a Node plugin's executable (launched with
 * `nodePluginCommand`, see {@link pluginExecutable}) or a `PluginCommand`.
 */
export async function openStore({ plugin, name, config, dataChannel, directTransfer }) {
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  const command = typeof plugin === "string" ? nodePluginCommand(plugin) : plugin;
  const host = new PluginHost({
    plugins: [command],
    logger: silentLogger,
    ...(dataChannel === undefined ? {} : { dataChannel }),
    ...(directTransfer === undefined ? {} : { directTransfer }),
  });
  await host.start();
  const store = host.objectStore(name);
  await store.init(config);
  const pid = host.plugins().find((p) => p.descriptor.name === name && p.descriptor.kind === "object-store").pid;
  return { host, store, pid };
}

// ---------------------------------------------------------------------------------------------
// Transfers

function check(n, expected, what) {
  if (n !== expected) throw new Error(`${what}: read ${n} bytes, expected ${expected}`);
}

/**
 * `runs` PUTs of `size` bytes through `store`, each read back whole, checked and deleted. Returns
 * the median seconds of PUT and GET and, from /proc, the plugin's resident memory once initialised
 * (before any transfer), the peaks of host and plugin after the first PUT (before any GET) and at
 * the end, and the plugin's CPU seconds: in all, and PUT and GET apart. `freshBody`: PUT bodies of
 * newly allocated chunks instead of reused ones (see `body` in measure.mjs).
 */
export async function transfersThroughStore({ store, pid, bucket, size, runs, keyPrefix = "plugin", freshBody = false }) {
  const pluginIdleRss = rss(pid);
  const put = [];
  const get = [];
  let afterFirstPut;
  let pluginPutCpu = 0;
  let pluginGetCpu = 0;
  const cpuAtStart = cpuSeconds(pid);
  for (let r = 0; r < runs; r++) {
    const key = `${keyPrefix}-${r}`;
    const beforePut = cpuSeconds(pid);
    put.push((await time(() => store.putObject({ bucket, key, body: body(size, { fresh: freshBody }), size }))).seconds);
    const afterPut = cpuSeconds(pid);
    pluginPutCpu += afterPut - beforePut;
    if (r === 0) afterFirstPut = { hostPeakRssAfterPut: peakRss(process.pid), pluginPeakRssAfterPut: peakRss(pid) };
    get.push((await time(async () => check(await drain((await store.getObject({ bucket, key })).body), size, `${keyPrefix} GET`))).seconds);
    pluginGetCpu += cpuSeconds(pid) - afterPut;
    await store.deleteObject({ bucket, key });
  }
  const pluginCpu = cpuSeconds(pid) - cpuAtStart;
  return { put: median(put), get: median(get), pluginIdleRss, ...afterFirstPut, pluginPeakRss: peakRss(pid), pluginCpu, pluginPutCpu, pluginGetCpu };
}

/** {@link openStore}, {@link transfersThroughStore}, then closes the host. */
export async function throughPlugin(plugin, transfers) {
  const { host, store, pid } = await openStore(plugin);
  try {
    return await transfersThroughStore({ store, pid, ...transfers });
  } finally {
    await host.close();
  }
}

/**
 * The same transfers without a plugin: `put(key, body)` stores a body, `get(key)` returns a
 * readable of what was stored, `remove(key)` deletes it. Returns the median seconds of each.
 */
export async function directTransfers({ size, runs, put, get, remove }) {
  const puts = [];
  const gets = [];
  for (let r = 0; r < runs; r++) {
    const key = `direct-${r}`;
    puts.push((await time(() => put(key, body(size)))).seconds);
    gets.push((await time(async () => check(await drain(await get(key)), size, "direct GET"))).seconds);
    await remove(key);
  }
  return { put: median(puts), get: median(gets) };
}

// ---------------------------------------------------------------------------------------------
// Scenarios in child processes

/**
 * In a child (`--scenario NAME`): runs `scenarios[NAME](context)`, prints its result with this
 * process's peak RSS (`hostPeakRss`) and CPU seconds (`hostCpu`) as one JSON line, and exits.
 * In the parent: returns at once.
 */
export async function runChildScenario(values, scenarios) {
  if (values.scenario === undefined) return;
  const scenario = scenarios[values.scenario];
  if (scenario === undefined) throw new Error(`unknown scenario ${values.scenario}: expected one of ${Object.keys(scenarios).join(", ")}`);
  const result = await scenario(values.context === undefined ? {} : JSON.parse(values.context));
  console.log(JSON.stringify({ ...result, hostPeakRss: peakRss(process.pid), hostCpu: cpuSeconds(process.pid) }));
  process.exit(0);
}

/**
 * Runs scenario `name` of `script` in a fresh Node process with this one's flags and options,
 * handing it `context`; returns its JSON line, plus the CPU seconds the server process `serverPid`
 * used meanwhile (`serverCpu`) and its peak RSS (`serverPeakRss`) when given.
 */
export async function inChild(script, values, name, context = {}, serverPid) {
  const args = [...process.execArgv, fileURLToPath(script), "--scenario", name, `--context=${JSON.stringify(context)}`, ...forwardedArgs(values)];
  const serverCpu = serverPid === undefined ? 0 : cpuSeconds(serverPid);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: MiB });
  const result = JSON.parse(stdout.trim().split("\n").at(-1));
  return serverPid === undefined ? result : { ...result, serverCpu: cpuSeconds(serverPid) - serverCpu, serverPeakRss: peakRss(serverPid) };
}

// ---------------------------------------------------------------------------------------------
// Test servers (imported in the parent only)

/** A temporary folder for credentials files, removed by `cleanup()`. */
export async function scratchDir(name) {
  const dir = await mkdtemp(join(tmpdir(), `stowage-bench-${name}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** S3 settings of the MinIO every S3 benchmark starts. */
export const MINIO = { accessKey: "minioadmin", secretKey: "minioadmin", region: "us-east-1" };

/**
 * Starts MinIO (`@stowage/test-servers`) with {@link MINIO}'s keys and writes an AWS credentials
 * file for them: `{ pid, endpoint, credentialsFile, stop() }`.
 */
export async function startMinioServer() {
  const { startMinio } = await import("@stowage/test-servers");
  const minio = await startMinio({ accessKey: MINIO.accessKey, secretKey: MINIO.secretKey, region: MINIO.region });
  const scratch = await scratchDir("s3");
  const credentialsFile = join(scratch.dir, "credentials");
  await writeFile(credentialsFile, `[default]\naws_access_key_id=${MINIO.accessKey}\naws_secret_access_key=${MINIO.secretKey}\n`);
  return {
    pid: minio.pid,
    endpoint: minio.endpoint,
    credentialsFile,
    stop: async () => {
      await minio.stop();
      await scratch.cleanup();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Figures and output

/** MiB/s and ratios of a direct and a through-plugin scenario, peak RSS in MiB, CPU s per GiB. */
export function throughputFigures({ sizeMiB, runs, serverLabel, direct, plugin }) {
  const gib = (sizeMiB * 2 * runs) / 1024;
  return {
    directPutMiBps: sizeMiB / direct.put,
    directGetMiBps: sizeMiB / direct.get,
    pluginPutMiBps: sizeMiB / plugin.put,
    pluginGetMiBps: sizeMiB / plugin.get,
    putRatio: direct.put / plugin.put,
    getRatio: direct.get / plugin.get,
    directPeakRssMiB: direct.hostPeakRss / MiB,
    throughputHostPeakRssMiB: plugin.hostPeakRss / MiB,
    throughputPluginPeakRssMiB: plugin.pluginPeakRss / MiB,
    // CPU seconds per GiB moved (PUT + GET, all runs), by process.
    directCpuPerGiB: { client: direct.hostCpu / gib, [serverLabel]: direct.serverCpu / gib },
    pluginCpuPerGiB: { host: plugin.hostCpu / gib, plugin: plugin.pluginCpu / gib, [serverLabel]: plugin.serverCpu / gib },
  };
}

/** Figures of the memory scenario: one `rssSizeMiB` object through the plugin. */
export function memoryFigures(rssSizeMiB, memory) {
  return {
    rssPutMiBps: rssSizeMiB / memory.put,
    rssGetMiBps: rssSizeMiB / memory.get,
    hostPeakRssMiB: memory.hostPeakRss / MiB,
    pluginPeakRssMiB: memory.pluginPeakRss / MiB,
    pluginPeakRssAfterPutMiB: memory.pluginPeakRssAfterPut / MiB,
  };
}

/** A figure for a table: two decimals under 10, none above; empty when not measured. */
export function num(n) {
  if (n === undefined) return "";
  return n.toFixed(n < 10 ? 2 : 0);
}

/** CPU seconds by process: `host 1.33, plugin 3.29, minio 1.84`. */
export function perProcess(figures) {
  return Object.entries(figures)
    .map(([process, seconds]) => `${process} ${seconds.toFixed(2)}`)
    .join(", ");
}

/** Prints a Markdown table: `columns` is the heading, each row one array of cells (missing cells empty). */
export function printTable(columns, rows) {
  console.log(`| ${columns.join(" | ")} |\n|${" --- |".repeat(columns.length)}`);
  for (const row of rows) console.log(`| ${columns.map((_, i) => row[i] ?? "").join(" | ")} |`);
}

/** Writes every figure to `--json FILE` when given. */
export async function writeJson(values, results) {
  if (values.json !== undefined) await writeFile(values.json, JSON.stringify(results, null, 2));
}

// ---------------------------------------------------------------------------------------------
// Through a plugin against a server, and the same SDK directly

/**
 * The benchmark of a cloud plugin against its test server, compared with the provider's SDK
 * used directly, in one run. `spec` declares what differs:
 *
 * - `script`: the benchmark's `import.meta.url` (scenarios re-run it in a child);
 * - `options`: its own command-line options (besides `--size-mib`, `--rss-size-mib`, `--runs`,
 *   whose defaults are in `defaults`);
 * - `serverLabel`: the server's name in the CPU figures;
 * - `startServer(settings)`: `{ pid, context, stop(), restart?() }`, `context` being what the
 *   scenarios need (endpoint, credentials file…) as plain JSON; `restart()`, when given, gives
 *   the memory scenario a fresh server;
 * - `direct(context, settings, size, runs)`: the direct scenario (see {@link directTransfers});
 * - `plugin(context, settings, scenario)`: `{ plugin, name, config, bucket }` for
 *   {@link openStore}, `scenario` being `"plugin"` or `"rss"`;
 * - `rssSettings(settings)`: overrides of `settings` for the memory scenario (optional);
 * - `results(settings)`: the run's parameters recorded first in the JSON;
 * - `extraFigures(runs)`: more figures from the scenarios' results (optional);
 * - `columns`: the table's heading (default `figure | value`), and `rows(results, settings)` its
 *   rows, with `standardRows` to reuse.
 *
 * Every scenario runs in a fresh child process; the memory scenario runs when `--rss-size-mib` > 0.
 */
export async function providerBenchmark(spec) {
  const values = benchArgs({
    "size-mib": { type: "string", default: spec.defaults["size-mib"] },
    "rss-size-mib": { type: "string", default: spec.defaults["rss-size-mib"] },
    runs: { type: "string", default: spec.defaults.runs },
    // `direct`: the host moves the bodies with the plugin's signed requests (contract 5.8), when
    // the plugin offers it; `plugin`: the bodies go through the plugin (its data channel).
    path: { type: "string", default: "direct" },
    ...spec.options,
  });
  if (values.path !== "direct" && values.path !== "plugin") throw new Error(`--path must be direct or plugin, got ${values.path}`);
  const settings = { ...values, sizeMiB: Number(values["size-mib"]), rssSizeMiB: Number(values["rss-size-mib"]), runs: Number(values.runs) };
  const plugin = (context, scenario, size, runs) => {
    const { bucket, ...open } = spec.plugin(context, scenario === "rss" ? { ...settings, ...spec.rssSettings?.(settings) } : settings, scenario);
    return throughPlugin({ directTransfer: settings.path === "direct", ...open }, { bucket, size, runs });
  };
  await runChildScenario(values, {
    direct: (context) => spec.direct(context, settings, settings.sizeMiB * MiB, settings.runs),
    plugin: (context) => plugin(context, "plugin", settings.sizeMiB * MiB, settings.runs),
    rss: (context) => plugin(context, "rss", settings.rssSizeMiB * MiB, 1),
  });

  const results = { sizeMiB: settings.sizeMiB, rssSizeMiB: settings.rssSizeMiB, runs: settings.runs, ...spec.results(settings), node: process.version, date: new Date().toISOString() };
  let server = await spec.startServer(settings);
  try {
    const scenario = async (name) => {
      const result = await inChild(spec.script, values, name, server.context, server.pid);
      console.error(`${new Date().toISOString()} ${name}: ${JSON.stringify(result)}`);
      return result;
    };
    const direct = await scenario("direct");
    const viaPlugin = await scenario("plugin");
    let memory;
    if (settings.rssSizeMiB > 0) {
      if (server.restart !== undefined) server = await server.restart();
      memory = await scenario("rss");
    }
    Object.assign(
      results,
      throughputFigures({ sizeMiB: settings.sizeMiB, runs: settings.runs, serverLabel: spec.serverLabel, direct, plugin: viaPlugin }),
      memory === undefined ? {} : memoryFigures(settings.rssSizeMiB, memory),
      spec.extraFigures?.({ direct, plugin: viaPlugin, memory }, settings) ?? {},
    );
  } finally {
    await server.stop();
  }
  printTable(spec.columns ?? ["figure", "value"], spec.rows(results, settings));
  await writeJson(values, results);
}

/**
 * The rows every provider benchmark prints, in order; `targets` adds a target cell to the
 * `putRatio`, `getRatio` and `memory` rows, `memoryNote` qualifies the memory row, and
 * `afterMemory` rows follow the memory rows.
 */
export function standardRows(r, s, { targets = {}, memoryNote = "", afterMemory = [] } = {}) {
  const rows = [
    ["bodies of the plugin scenarios", s.path === "plugin" ? "through the plugin (`--path plugin`)" : "host ↔ store with the plugin's signed requests, when it offers them (`--path direct`)"],
    ["PUT direct / through plugin (MiB/s)", `${num(r.directPutMiBps)} / ${num(r.pluginPutMiBps)}`],
    ["PUT ratio to direct", num(r.putRatio), targets.putRatio],
    ["GET direct / through plugin (MiB/s)", `${num(r.directGetMiBps)} / ${num(r.pluginGetMiBps)}`],
    ["GET ratio to direct", num(r.getRatio), targets.getRatio],
    ["peak RSS direct process (MiB)", num(r.directPeakRssMiB)],
    [`peak RSS host / plugin, ${s.sizeMiB} MiB runs (MiB)`, `${num(r.throughputHostPeakRssMiB)} / ${num(r.throughputPluginPeakRssMiB)}`],
  ];
  if (r.pluginPeakRssMiB !== undefined) {
    rows.push(
      [`peak RSS host / plugin, one ${s.rssSizeMiB} MiB PUT + GET${memoryNote} (MiB)`, `${num(r.hostPeakRssMiB)} / ${num(r.pluginPeakRssMiB)}`, targets.memory],
      [`plugin peak RSS after the ${s.rssSizeMiB} MiB PUT, before the GET (MiB)`, num(r.pluginPeakRssAfterPutMiB)],
      ...afterMemory,
      [`${s.rssSizeMiB} MiB PUT / GET through plugin (MiB/s)`, `${num(r.rssPutMiBps)} / ${num(r.rssGetMiBps)}`],
    );
  }
  rows.push(["CPU s per GiB moved, direct", perProcess(r.directCpuPerGiB)], ["CPU s per GiB moved, through plugin", perProcess(r.pluginCpuPerGiB)]);
  return rows;
}
