#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: host -> plugin-azure -> Azurite vs @azure/storage-blob -> Azurite directly, same block
// size and upload concurrency, in one run against one Azurite (in memory).
//
//   node bench/azure.mjs [--size-mib 1024] [--rss-size-mib 4096] [--runs 1]
//                        [--block-mib 8] [--concurrency 4] [--json out.json]
//
// Figures: PUT and GET MiB/s direct and through the plugin and their ratios, peak RSS (VmHWM) of
// the host and of the plugin process while moving one --rss-size-mib blob, and CPU seconds per
// GiB moved by process (from /proc/<pid>/stat, start-up included). Every scenario runs in a fresh
// child process, so a peak RSS belongs to one path alone. Azurite comes from
// @stowage/test-servers (the `azurite` npm package).

import { body, peakRss, cpuSeconds, time, drain, median } from "./measure.mjs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { execFile } from "node:child_process";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";

const { values } = parseArgs({
  // `pnpm --filter @stowage/bench run azure -- …` passes the `--` on.
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    "size-mib": { type: "string", default: "1024" },
    "rss-size-mib": { type: "string", default: "4096" },
    runs: { type: "string", default: "1" },
    "block-mib": { type: "string", default: "8" },
    concurrency: { type: "string", default: "4" },
    json: { type: "string" },
    // Child mode.
    scenario: { type: "string" },
    endpoint: { type: "string" },
    account: { type: "string" },
    "credentials-file": { type: "string" },
  },
});
const sizeMiB = Number(values["size-mib"]);
const rssSizeMiB = Number(values["rss-size-mib"]);
const runs = Number(values.runs);
const blockMiB = Number(values["block-mib"]);
const concurrency = Number(values.concurrency);
const MiB = 1024 * 1024;
const CONTAINER = "bench";
const KEY_ENTRY = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY";

function check(n, expected, what) {
  if (n !== expected) throw new Error(`${what}: read ${n} bytes, expected ${expected}`);
}

async function accountKey(file) {
  const { readFile } = await import("node:fs/promises");
  const line = (await readFile(file, "utf8")).split("\n").find((l) => l.startsWith(`${KEY_ENTRY}=`));
  return line.slice(KEY_ENTRY.length + 1).trim();
}

async function direct(endpoint, account, credentialsFile, size, n) {
  const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, await accountKey(credentialsFile)));
  const container = service.getContainerClient(CONTAINER);
  const put = [];
  const get = [];
  for (let r = 0; r < n; r++) {
    const blob = container.getBlockBlobClient(`direct-${r}`);
    // uploadStream: staged blocks of blockMiB, `concurrency` at once, as the plugin is configured.
    put.push((await time(() => blob.uploadStream(body(size), blockMiB * MiB, concurrency))).seconds);
    get.push(
      (
        await time(async () => {
          const out = await blob.download();
          check(await drain(out.readableStreamBody), size, "direct GET");
        })
      ).seconds,
    );
    await blob.delete();
  }
  return { put: median(put), get: median(get) };
}

async function throughPlugin(endpoint, account, credentialsFile, size, n) {
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  const pluginMain = fileURLToPath(import.meta.resolve("@stowage/plugin-azure")).replace(/index\.js$/, "main.js");
  const host = new PluginHost({ plugins: [nodePluginCommand(pluginMain)], logger: silentLogger });
  await host.start();
  const store = host.objectStore("stowage.io/azure");
  await store.init({
    bucket: CONTAINER,
    storageAccount: account,
    storageAccountURI: endpoint,
    storageAccountKeyEnvVar: KEY_ENTRY,
    credentialsFile,
    blockSizeInBytes: String(blockMiB * MiB),
    uploadConcurrency: String(concurrency),
  });
  const pid = host.plugins().find((p) => p.descriptor.kind === "object-store").pid;
  const put = [];
  const get = [];
  let pluginPeakRssAfterPut = 0;
  let pluginCpu = -cpuSeconds(pid);
  for (let r = 0; r < n; r++) {
    const key = `plugin-${r}`;
    put.push((await time(() => store.putObject({ bucket: CONTAINER, key, body: body(size), size }))).seconds);
    if (r === 0) pluginPeakRssAfterPut = peakRss(pid);
    get.push((await time(async () => check(await drain((await store.getObject({ bucket: CONTAINER, key })).body), size, "plugin GET"))).seconds);
    await store.deleteObject({ bucket: CONTAINER, key });
  }
  pluginCpu += cpuSeconds(pid);
  const pluginPeakRss = peakRss(pid);
  await host.close();
  return { put: median(put), get: median(get), pluginPeakRss, pluginPeakRssAfterPut, pluginCpu };
}

if (values.scenario !== undefined) {
  // Child mode: one path in a fresh process, so its peak RSS belongs to that path alone.
  const { endpoint, account } = values;
  const file = values["credentials-file"];
  const result =
    values.scenario === "direct"
      ? await direct(endpoint, account, file, sizeMiB * MiB, runs)
      : values.scenario === "plugin"
        ? await throughPlugin(endpoint, account, file, sizeMiB * MiB, runs)
        : await throughPlugin(endpoint, account, file, rssSizeMiB * MiB, 1);
  console.log(JSON.stringify({ ...result, hostPeakRss: peakRss(process.pid), hostCpu: cpuSeconds(process.pid) }));
  process.exit(0);
}

const { startAzurite } = await import("@stowage/test-servers");
// In memory: room for the largest blob plus one in flight.
const azurite = await startAzurite({ extentMemoryLimitMb: Math.max(sizeMiB, rssSizeMiB) + 2048 });
const dir = await mkdtemp(join(tmpdir(), "stowage-bench-azure-"));
const credentialsFile = join(dir, "credentials");
await writeFile(credentialsFile, `${KEY_ENTRY}=${azurite.accountKey}\n`);

async function scenario(name) {
  const args = [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--scenario", name,
    "--endpoint", azurite.blobEndpoint,
    "--account", azurite.accountName,
    "--credentials-file", credentialsFile,
    "--size-mib", String(sizeMiB),
    "--rss-size-mib", String(rssSizeMiB),
    "--runs", String(runs),
    "--block-mib", String(blockMiB),
    "--concurrency", String(concurrency),
  ];
  const azuriteCpu = cpuSeconds(azurite.pid);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1024 * 1024 });
  return { ...JSON.parse(stdout.trim().split("\n").at(-1)), azuriteCpu: cpuSeconds(azurite.pid) - azuriteCpu };
}

const results = { sizeMiB, rssSizeMiB, runs, blockMiB, concurrency, node: process.version, date: new Date().toISOString() };
try {
  await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).create();
  const viaDirect = await scenario("direct");
  const viaPlugin = await scenario("plugin");
  const rss = rssSizeMiB > 0 ? await scenario("rss") : undefined;
  const mibps = (s) => sizeMiB / s;
  const gib = (mib) => mib / 1024;
  Object.assign(results, {
    directPutMiBps: mibps(viaDirect.put),
    directGetMiBps: mibps(viaDirect.get),
    pluginPutMiBps: mibps(viaPlugin.put),
    pluginGetMiBps: mibps(viaPlugin.get),
    putRatio: viaDirect.put / viaPlugin.put,
    getRatio: viaDirect.get / viaPlugin.get,
    directPeakRssMiB: viaDirect.hostPeakRss / MiB,
    throughputHostPeakRssMiB: viaPlugin.hostPeakRss / MiB,
    throughputPluginPeakRssMiB: viaPlugin.pluginPeakRss / MiB,
    directCpuPerGiB: { client: viaDirect.hostCpu / gib(sizeMiB * 2 * runs), azurite: viaDirect.azuriteCpu / gib(sizeMiB * 2 * runs) },
    pluginCpuPerGiB: {
      host: viaPlugin.hostCpu / gib(sizeMiB * 2 * runs),
      plugin: viaPlugin.pluginCpu / gib(sizeMiB * 2 * runs),
      azurite: viaPlugin.azuriteCpu / gib(sizeMiB * 2 * runs),
    },
    ...(rss === undefined
      ? {}
      : {
          rssPutMiBps: rssSizeMiB / rss.put,
          rssGetMiBps: rssSizeMiB / rss.get,
          hostPeakRssMiB: rss.hostPeakRss / MiB,
          pluginPeakRssMiB: rss.pluginPeakRss / MiB,
          pluginPeakRssAfterPutMiB: rss.pluginPeakRssAfterPut / MiB,
        }),
  });
} finally {
  await azurite.stop();
  await rm(dir, { recursive: true, force: true });
}

const f = (n) => n.toFixed(n < 10 ? 2 : 0);
console.log(`| figure | value |\n| --- | --- |`);
console.log(`| object size, block size, concurrency | ${sizeMiB} MiB, ${blockMiB} MiB, ${concurrency}; median of ${runs} run(s) |`);
console.log(`| PUT direct / through plugin (MiB/s) | ${f(results.directPutMiBps)} / ${f(results.pluginPutMiBps)} |`);
console.log(`| PUT ratio to direct | ${f(results.putRatio)} |`);
console.log(`| GET direct / through plugin (MiB/s) | ${f(results.directGetMiBps)} / ${f(results.pluginGetMiBps)} |`);
console.log(`| GET ratio to direct | ${f(results.getRatio)} |`);
console.log(`| peak RSS direct process (MiB) | ${f(results.directPeakRssMiB)} |`);
console.log(`| peak RSS host / plugin, ${sizeMiB} MiB runs (MiB) | ${f(results.throughputHostPeakRssMiB)} / ${f(results.throughputPluginPeakRssMiB)} |`);
if (results.hostPeakRssMiB !== undefined) {
  console.log(`| peak RSS host / plugin, one ${rssSizeMiB} MiB PUT + GET (MiB) | ${f(results.hostPeakRssMiB)} / ${f(results.pluginPeakRssMiB)} |`);
  console.log(`| plugin peak RSS after the ${rssSizeMiB} MiB PUT, before the GET (MiB) | ${f(results.pluginPeakRssAfterPutMiB)} |`);
  console.log(`| ${rssSizeMiB} MiB PUT / GET through plugin (MiB/s) | ${f(results.rssPutMiBps)} / ${f(results.rssGetMiBps)} |`);
}
const c = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
console.log(`| CPU s per GiB moved, direct | ${c(results.directCpuPerGiB)} |`);
console.log(`| CPU s per GiB moved, through plugin | ${c(results.pluginCpuPerGiB)} |`);
if (values.json !== undefined) await writeFile(values.json, JSON.stringify(results, null, 2));
