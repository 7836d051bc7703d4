#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: host -> plugin-gcp -> fake-gcs-server vs @google-cloud/storage -> fake-gcs-server
// directly, same resumable chunk size and CRC32C validation, in one run against one fake-gcs-server
// (memory backend, loopback HTTP).
//
//   node bench/gcp.mjs [--size-mib 1024] [--rss-size-mib 4096] [--runs 1]
//                      [--chunk-mib 16] [--rss-chunk-mib 64] [--json out.json]
//
// Figures: PUT and GET MiB/s direct and through the plugin, their ratios, and peak RSS (VmHWM) of
// the host and of the plugin process while moving one --rss-size-mib object, and CPU seconds per
// GiB moved by each process. Every scenario runs in a fresh child process, so a peak RSS belongs to
// one path alone. fake-gcs-server comes from @stowage/test-servers
// (`bash scripts/install-test-servers fake-gcs`).
//
// fake-gcs-server keeps each object in memory and re-hashes (MD5 + CRC32C) the whole object received
// so far at every resumable chunk, so its cost grows with size² / chunk size: the figures measure
// the emulator as much as the client, and larger chunks are used for the big RSS object.

import { body, peakRss, cpuSeconds, time, drain, median } from "./measure.mjs";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { execFile } from "node:child_process";
import { Storage } from "@google-cloud/storage";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    "size-mib": { type: "string", default: "1024" },
    "rss-size-mib": { type: "string", default: "4096" },
    runs: { type: "string", default: "1" },
    "chunk-mib": { type: "string", default: "16" },
    "rss-chunk-mib": { type: "string", default: "64" },
    json: { type: "string" },
    // Child mode.
    scenario: { type: "string" },
    endpoint: { type: "string" },
    "credentials-file": { type: "string" },
  },
});
const sizeMiB = Number(values["size-mib"]);
const rssSizeMiB = Number(values["rss-size-mib"]);
const runs = Number(values.runs);
const chunkMiB = Number(values["chunk-mib"]);
const rssChunkMiB = Number(values["rss-chunk-mib"]);
const MiB = 1024 * 1024;
const BUCKET = "bench";

function check(n, expected, what) {
  if (n !== expected) throw new Error(`${what}: read ${n} bytes, expected ${expected}`);
}

/** The library set up as plugin-gcp sets it up against an emulator endpoint. */
function directClient(endpoint) {
  return new Storage({ apiEndpoint: endpoint, projectId: "bench" });
}

async function direct(endpoint, size, n) {
  const storage = directClient(endpoint);
  const put = [];
  const get = [];
  for (let r = 0; r < n; r++) {
    const file = storage.bucket(BUCKET).file(`direct-${r}`);
    put.push((await time(() => pipeline(body(size), file.createWriteStream({ resumable: true, validation: "crc32c", chunkSize: chunkMiB * MiB })))).seconds);
    get.push((await time(async () => check(await drain(file.createReadStream({ validation: "crc32c" })), size, "direct GET"))).seconds);
    await file.delete();
  }
  return { put: median(put), get: median(get) };
}

async function throughPlugin(endpoint, credentialsFile, size, n, chunk) {
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  const pluginMain = fileURLToPath(import.meta.resolve("@stowage/plugin-gcp")).replace(/index\.js$/, "main.js");
  const host = new PluginHost({ plugins: [nodePluginCommand(pluginMain)], logger: silentLogger });
  await host.start();
  const store = host.objectStore("stowage.io/gcp");
  await store.init({ bucket: BUCKET, storeEndpoint: endpoint, credentialsFile, chunkSize: `${chunk}MiB` });
  const pid = host.plugins()[0].pid;
  const put = [];
  const get = [];
  let pluginPeakRssAfterPut = 0;
  let pluginCpu = -cpuSeconds(pid);
  for (let r = 0; r < n; r++) {
    const key = `plugin-${r}`;
    put.push((await time(() => store.putObject({ bucket: BUCKET, key, body: body(size), size }))).seconds);
    if (r === 0) pluginPeakRssAfterPut = peakRss(pid);
    get.push((await time(async () => check(await drain((await store.getObject({ bucket: BUCKET, key })).body), size, "plugin GET"))).seconds);
    await store.deleteObject({ bucket: BUCKET, key });
  }
  pluginCpu += cpuSeconds(pid);
  const pluginPeakRss = peakRss(pid);
  await host.close();
  return { put: median(put), get: median(get), pluginPeakRss, pluginPeakRssAfterPut, pluginCpu };
}

if (values.scenario !== undefined) {
  const endpoint = values.endpoint;
  const name = values.scenario;
  const result =
    name === "direct"
      ? await direct(endpoint, sizeMiB * MiB, runs)
      : name === "plugin"
        ? await throughPlugin(endpoint, values["credentials-file"], sizeMiB * MiB, runs, chunkMiB)
        : await throughPlugin(endpoint, values["credentials-file"], rssSizeMiB * MiB, 1, rssChunkMiB);
  console.log(JSON.stringify({ ...result, hostPeakRss: peakRss(process.pid), hostCpu: cpuSeconds(process.pid) }));
  process.exit(0);
}

const { startFakeGcs } = await import("@stowage/test-servers");
// GOMEMLIMIT keeps fake-gcs-server's garbage (it grows each object by appending every chunk) in check.
const fakeGcsEnv = { ...process.env, GOMEMLIMIT: "9GiB" };
let gcs = await startFakeGcs({ env: fakeGcsEnv });
const dir = await mkdtemp(join(tmpdir(), "stowage-bench-gcp-"));
const credentialsFile = join(dir, "key.json");
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
await writeFile(
  credentialsFile,
  JSON.stringify({ type: "service_account", project_id: "bench", client_email: "bench@bench.iam.gserviceaccount.com", private_key: privateKey.export({ type: "pkcs8", format: "pem" }) }),
);

async function createBucket() {
  const created = await fetch(`${gcs.endpoint}/storage/v1/b?project=bench`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: BUCKET }) });
  if (!created.ok) throw new Error(`cannot create the bucket: HTTP ${created.status}`);
}

async function scenario(name) {
  const args = [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--scenario", name,
    "--endpoint", gcs.endpoint,
    "--credentials-file", credentialsFile,
    "--size-mib", String(sizeMiB),
    "--rss-size-mib", String(rssSizeMiB),
    "--runs", String(runs),
    "--chunk-mib", String(chunkMiB),
    "--rss-chunk-mib", String(rssChunkMiB),
  ];
  const serverCpu = cpuSeconds(gcs.pid);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1024 * 1024 });
  const result = { ...JSON.parse(stdout.trim().split("\n").at(-1)), serverCpu: cpuSeconds(gcs.pid) - serverCpu, serverPeakRss: peakRss(gcs.pid) };
  console.error(`${new Date().toISOString()} ${name}: ${JSON.stringify(result)}`);
  return result;
}

const results = { sizeMiB, rssSizeMiB, runs, chunkMiB, rssChunkMiB, node: process.version, date: new Date().toISOString() };
try {
  await createBucket();
  const viaDirect = await scenario("direct");
  const viaPlugin = await scenario("plugin");
  let rss;
  if (rssSizeMiB > 0) {
    // A fresh server for the big object, so the earlier runs' memory is gone.
    await gcs.stop();
    gcs = await startFakeGcs({ env: fakeGcsEnv });
    await createBucket();
    rss = await scenario("rss");
  }
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
    serverPeakRssMiB: Math.max(viaDirect.serverPeakRss, viaPlugin.serverPeakRss, rss?.serverPeakRss ?? 0) / MiB,
    throughputHostPeakRssMiB: viaPlugin.hostPeakRss / MiB,
    throughputPluginPeakRssMiB: viaPlugin.pluginPeakRss / MiB,
    directCpuPerGiB: { client: viaDirect.hostCpu / gib(sizeMiB * 2 * runs), server: viaDirect.serverCpu / gib(sizeMiB * 2 * runs) },
    pluginCpuPerGiB: {
      host: viaPlugin.hostCpu / gib(sizeMiB * 2 * runs),
      plugin: viaPlugin.pluginCpu / gib(sizeMiB * 2 * runs),
      server: viaPlugin.serverCpu / gib(sizeMiB * 2 * runs),
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
  await gcs.stop();
  await rm(dir, { recursive: true, force: true });
}

const f = (n) => n.toFixed(n < 10 ? 2 : 0);
console.log(`| figure | value |\n| --- | --- |`);
console.log(`| object size, chunk size | ${sizeMiB} MiB, ${chunkMiB} MiB resumable chunks, CRC32C on; median of ${runs} run(s) |`);
console.log(`| PUT direct / through plugin (MiB/s) | ${f(results.directPutMiBps)} / ${f(results.pluginPutMiBps)} |`);
console.log(`| PUT ratio to direct | ${f(results.putRatio)} |`);
console.log(`| GET direct / through plugin (MiB/s) | ${f(results.directGetMiBps)} / ${f(results.pluginGetMiBps)} |`);
console.log(`| GET ratio to direct | ${f(results.getRatio)} |`);
console.log(`| peak RSS direct process (MiB) | ${f(results.directPeakRssMiB)} |`);
console.log(`| peak RSS host / plugin, ${sizeMiB} MiB runs (MiB) | ${f(results.throughputHostPeakRssMiB)} / ${f(results.throughputPluginPeakRssMiB)} |`);
if (results.pluginPeakRssMiB !== undefined) {
  console.log(`| peak RSS host / plugin, one ${rssSizeMiB} MiB PUT + GET, ${rssChunkMiB} MiB chunks (MiB) | ${f(results.hostPeakRssMiB)} / ${f(results.pluginPeakRssMiB)} |`);
  console.log(`| plugin peak RSS after the ${rssSizeMiB} MiB PUT, before the GET (MiB) | ${f(results.pluginPeakRssAfterPutMiB)} |`);
  console.log(`| ${rssSizeMiB} MiB PUT / GET through plugin (MiB/s) | ${f(results.rssPutMiBps)} / ${f(results.rssGetMiBps)} |`);
}
const c = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
console.log(`| CPU s per GiB moved, direct | ${c(results.directCpuPerGiB)} |`);
console.log(`| CPU s per GiB moved, through plugin | ${c(results.pluginCpuPerGiB)} |`);
if (values.json !== undefined) await writeFile(values.json, JSON.stringify(results, null, 2));
