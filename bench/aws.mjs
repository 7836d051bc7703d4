#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: host -> plugin-aws -> MinIO vs @aws-sdk/client-s3 (+ lib-storage Upload) -> MinIO
// directly, same part size and upload concurrency, in one run against one MinIO. (plugin-aws has its
// own multipart uploader with pooled part buffers; the direct path keeps lib-storage, what an SDK
// user would write.)
//
//   node bench/aws.mjs [--size-mib 1024] [--rss-size-mib 4096] [--runs 2]
//                      [--part-mib 16] [--concurrency 4] [--json out.json]
//                      [--plugin-node-flags "--max-semi-space-size=16"] [--plugin-main path/to/main.js]
//
// Figures: PUT and GET MiB/s direct and through the plugin, their ratios (target >= 0.9), and peak
// RSS (VmHWM) of the host and of the plugin process while moving one --rss-size-mib object (target:
// each under 200 MB), the plugin's resident memory once initialised and idle (its baseline), and CPU
// seconds per GiB moved of each process (from /proc/<pid>/stat,
// start-up included). Every scenario runs in a fresh child process, so a peak RSS belongs to one
// path alone. MinIO comes from @stowage/test-servers (`bash scripts/install-test-servers minio`).

import { body, peakRss, rss, cpuSeconds, time, drain, median } from "./measure.mjs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { execFile } from "node:child_process";
import { Agent as HttpAgent } from "node:http";
import { S3Client, CreateBucketCommand, GetObjectCommand, DeleteObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const { values } = parseArgs({
  // `pnpm --filter @stowage/bench run aws -- …` passes the `--` on.
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    "size-mib": { type: "string", default: "1024" },
    "rss-size-mib": { type: "string", default: "4096" },
    runs: { type: "string", default: "2" },
    "part-mib": { type: "string", default: "16" },
    concurrency: { type: "string", default: "4" },
    // Node flags of the plugin process instead of nodePluginCommand()'s (for experiments).
    "plugin-node-flags": { type: "string" },
    // Another build of plugin-aws's main.js (A/B comparisons in the same conditions).
    "plugin-main": { type: "string" },
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
const partMiB = Number(values["part-mib"]);
const concurrency = Number(values.concurrency);
const MiB = 1024 * 1024;
const BUCKET = "bench";
const ACCESS_KEY = "minioadmin";
const SECRET_KEY = "minioadmin";
const REGION = "us-east-1";







function check(n, expected, what) {
  if (n !== expected) throw new Error(`${what}: read ${n} bytes, expected ${expected}`);
}

/** An S3 client set up as plugin-aws sets up its own (no optional checksums, keep-alive agent). */
function directClient(endpoint) {
  return new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets: Math.max(50, concurrency * 2) }) },
  });
}

async function direct(endpoint, size, n) {
  const client = directClient(endpoint);
  const put = [];
  const get = [];
  for (let r = 0; r < n; r++) {
    const key = `direct-${r}`;
    put.push(
      (
        await time(() =>
          new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: body(size), ContentLength: size }, partSize: partMiB * MiB, queueSize: concurrency, leavePartsOnError: false }).done(),
        )
      ).seconds,
    );
    get.push(
      (
        await time(async () => {
          const out = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
          check(await drain(out.Body), size, "direct GET");
        })
      ).seconds,
    );
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
  }
  client.destroy();
  return { put: median(put), get: median(get) };
}

async function throughPlugin(endpoint, credentialsFile, size, n) {
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  const pluginMain = values["plugin-main"] ?? fileURLToPath(import.meta.resolve("@stowage/plugin-aws")).replace(/index\.js$/, "main.js");
  const flags = values["plugin-node-flags"];
  const command = flags === undefined ? nodePluginCommand(pluginMain) : { command: process.execPath, args: [...flags.split(" ").filter(Boolean), pluginMain] };
  const host = new PluginHost({ plugins: [command], logger: silentLogger });
  await host.start();
  const store = host.objectStore("stowage.io/aws");
  await store.init({
    bucket: BUCKET,
    s3Url: endpoint,
    region: REGION,
    s3ForcePathStyle: "true",
    credentialsFile,
    partSize: `${partMiB}MiB`,
    uploadConcurrency: String(concurrency),
  });
  const pid = host.plugins()[0].pid;
  const pluginIdleRss = rss(pid);
  const put = [];
  const get = [];
  let pluginPeakRssAfterPut = 0;
  let pluginCpu = -cpuSeconds(pid);
  let pluginPutCpu = 0;
  let pluginGetCpu = 0;
  for (let r = 0; r < n; r++) {
    const key = `plugin-${r}`;
    const beforePut = cpuSeconds(pid);
    put.push((await time(() => store.putObject({ bucket: BUCKET, key, body: body(size), size }))).seconds);
    const afterPut = cpuSeconds(pid);
    pluginPutCpu += afterPut - beforePut;
    if (r === 0) pluginPeakRssAfterPut = peakRss(pid);
    get.push((await time(async () => check(await drain((await store.getObject({ bucket: BUCKET, key })).body), size, "plugin GET"))).seconds);
    pluginGetCpu += cpuSeconds(pid) - afterPut;
    await store.deleteObject({ bucket: BUCKET, key });
  }
  pluginCpu += cpuSeconds(pid);
  const pluginPeakRss = peakRss(pid);
  await host.close();
  return { put: median(put), get: median(get), pluginPeakRss, pluginPeakRssAfterPut, pluginIdleRss, pluginCpu, pluginPutCpu, pluginGetCpu };
}

if (values.scenario !== undefined) {
  // Child mode: one path in a fresh process, so its peak RSS belongs to that path alone.
  const endpoint = values.endpoint;
  const scenarioName = values.scenario;
  const result =
    scenarioName === "direct"
      ? await direct(endpoint, sizeMiB * MiB, runs)
      : scenarioName === "plugin"
        ? await throughPlugin(endpoint, values["credentials-file"], sizeMiB * MiB, runs)
        : await throughPlugin(endpoint, values["credentials-file"], rssSizeMiB * MiB, 1);
  console.log(JSON.stringify({ ...result, hostPeakRss: peakRss(process.pid), hostCpu: cpuSeconds(process.pid) }));
  process.exit(0);
}

const { startMinio } = await import("@stowage/test-servers");
const minio = await startMinio({ accessKey: ACCESS_KEY, secretKey: SECRET_KEY, region: REGION });
const dir = await mkdtemp(join(tmpdir(), "stowage-bench-aws-"));
const credentialsFile = join(dir, "credentials");
await writeFile(credentialsFile, `[default]\naws_access_key_id=${ACCESS_KEY}\naws_secret_access_key=${SECRET_KEY}\n`);

async function scenario(name) {
  const args = [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--scenario", name,
    "--endpoint", minio.endpoint,
    "--credentials-file", credentialsFile,
    "--size-mib", String(sizeMiB),
    "--rss-size-mib", String(rssSizeMiB),
    "--runs", String(runs),
    "--part-mib", String(partMiB),
    "--concurrency", String(concurrency),
    ...(values["plugin-node-flags"] === undefined ? [] : [`--plugin-node-flags=${values["plugin-node-flags"]}`]),
    ...(values["plugin-main"] === undefined ? [] : ["--plugin-main", values["plugin-main"]]),
  ];
  const minioCpu = cpuSeconds(minio.pid);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1024 * 1024 });
  return { ...JSON.parse(stdout.trim().split("\n").at(-1)), minioCpu: cpuSeconds(minio.pid) - minioCpu };
}

const results = { sizeMiB, rssSizeMiB, runs, partMiB, concurrency, node: process.version, date: new Date().toISOString() };
try {
  const setup = directClient(minio.endpoint);
  await setup.send(new CreateBucketCommand({ Bucket: BUCKET }));
  setup.destroy();
  const viaDirect = await scenario("direct");
  const viaPlugin = await scenario("plugin");
  const memory = await scenario("rss");
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
    // CPU seconds per GiB moved (PUT + GET, all runs), by process.
    directCpuPerGiB: { client: viaDirect.hostCpu / gib(sizeMiB * 2 * runs), minio: viaDirect.minioCpu / gib(sizeMiB * 2 * runs) },
    pluginCpuPerGiB: {
      host: viaPlugin.hostCpu / gib(sizeMiB * 2 * runs),
      plugin: viaPlugin.pluginCpu / gib(sizeMiB * 2 * runs),
      minio: viaPlugin.minioCpu / gib(sizeMiB * 2 * runs),
    },
    // The plugin's CPU seconds per GiB, PUT and GET apart (transfers only, no start-up).
    pluginCpuPerGiBByDirection: { put: viaPlugin.pluginPutCpu / gib(sizeMiB * runs), get: viaPlugin.pluginGetCpu / gib(sizeMiB * runs) },
    rssPutMiBps: rssSizeMiB / memory.put,
    rssGetMiBps: rssSizeMiB / memory.get,
    hostPeakRssMiB: memory.hostPeakRss / MiB,
    pluginPeakRssMiB: memory.pluginPeakRss / MiB,
    pluginPeakRssAfterPutMiB: memory.pluginPeakRssAfterPut / MiB,
    pluginIdleRssMiB: memory.pluginIdleRss / MiB,
  });
} finally {
  await minio.stop();
  await rm(dir, { recursive: true, force: true });
}

const f = (n) => n.toFixed(n < 10 ? 2 : 0);
console.log(`| figure | value | target |\n| --- | --- | --- |`);
console.log(`| object size, part size, concurrency | ${sizeMiB} MiB, ${partMiB} MiB, ${concurrency}; median of ${runs} runs | |`);
if (values["plugin-node-flags"] !== undefined) console.log(`| plugin's Node flags | \`${values["plugin-node-flags"]}\` | |`);
if (values["plugin-main"] !== undefined) console.log(`| plugin executable | \`${values["plugin-main"]}\` | |`);
console.log(`| PUT direct / through plugin (MiB/s) | ${f(results.directPutMiBps)} / ${f(results.pluginPutMiBps)} | |`);
console.log(`| PUT ratio to direct | ${f(results.putRatio)} | >= 0.9 |`);
console.log(`| GET direct / through plugin (MiB/s) | ${f(results.directGetMiBps)} / ${f(results.pluginGetMiBps)} | |`);
console.log(`| GET ratio to direct | ${f(results.getRatio)} | >= 0.9 |`);
console.log(`| peak RSS direct process (MiB) | ${f(results.directPeakRssMiB)} | |`);
console.log(`| peak RSS host / plugin, ${sizeMiB} MiB runs (MiB) | ${f(results.throughputHostPeakRssMiB)} / ${f(results.throughputPluginPeakRssMiB)} | |`);
console.log(`| peak RSS host / plugin, one ${rssSizeMiB} MiB PUT + GET (MiB) | ${f(results.hostPeakRssMiB)} / ${f(results.pluginPeakRssMiB)} | each < 191 (200 MB) |`);
console.log(`| plugin peak RSS after the ${rssSizeMiB} MiB PUT, before the GET (MiB) | ${f(results.pluginPeakRssAfterPutMiB)} | |`);
console.log(`| plugin RSS once initialised, before any transfer (MiB) | ${f(results.pluginIdleRssMiB)} | |`);
console.log(`| ${rssSizeMiB} MiB PUT / GET through plugin (MiB/s) | ${f(results.rssPutMiBps)} / ${f(results.rssGetMiBps)} | |`);
const c = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
console.log(`| CPU s per GiB moved, direct | ${c(results.directCpuPerGiB)} | |`);
console.log(`| CPU s per GiB moved, through plugin | ${c(results.pluginCpuPerGiB)} | |`);
console.log(`| plugin CPU s per GiB, PUT / GET apart | ${c(results.pluginCpuPerGiBByDirection)} | |`);
if (values.json !== undefined) await writeFile(values.json, JSON.stringify(results, null, 2));
