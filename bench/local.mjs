#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: host -> plugin-local vs writing/reading the same bytes directly, in one run.
//
//   node bench/local.mjs [--size-mib 2048] [--runs 3] [--cold-starts 10] [--json out.json]
//
// Figures: PUT and GET MiB/s through the plugin (data channel and plain gRPC) and direct, their
// ratios, peak RSS (VmHWM) of the host and of the plugin process, and the plugin's cold start
// (spawn to the first answered RPC). Ratios are what count: absolute numbers depend on the disk.

import { body, peakRss, time, drain, median } from "./measure.mjs";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, open } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { silentLogger } from "@stowage/sdk";

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "2048" },
    runs: { type: "string", default: "3" },
    "cold-starts": { type: "string", default: "10" },
    json: { type: "string" },
    dir: { type: "string" },
    scenario: { type: "string" },
  },
});
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
const coldStarts = Number(values["cold-starts"]);
const MiB = 1024 * 1024;
const pluginMain = fileURLToPath(import.meta.resolve("@stowage/plugin-local"))
  .replace(/index\.js$/, "main.js");






const root = values.dir ?? (await mkdtemp(join(process.cwd(), ".bench-")));
const size = sizeMiB * MiB;
const results = { sizeMiB, runs, node: process.version, date: new Date().toISOString() };

async function throughPlugin(dataChannel) {
  const host = new PluginHost({ plugins: [nodePluginCommand(pluginMain)], logger: silentLogger, dataChannel });
  await host.start();
  const store = host.objectStore("stowage.io/local");
  await mkdir(join(root, `objects-${dataChannel}`), { recursive: true });
  await store.init({ root: join(root, `objects-${dataChannel}`), createBuckets: "true" });
  const pid = host.plugins()[0].pid;
  const put = [];
  const get = [];
  for (let r = 0; r < runs; r++) {
    put.push((await time(() => store.putObject({ bucket: "bench", key: `obj-${r}`, body: body(size), size }))).seconds);
    get.push((await time(async () => drain((await store.getObject({ bucket: "bench", key: `obj-${r}` })).body))).seconds);
    await store.deleteObject({ bucket: "bench", key: `obj-${r}` });
  }
  const pluginPeak = peakRss(pid);
  await host.close();
  return { put: median(put), get: median(get), pluginPeakRss: pluginPeak };
}

if (values.scenario !== undefined) {
  // Child mode: one transport in a fresh host process, so peak RSS belongs to this path alone.
  const result = await throughPlugin(values.scenario === "channel");
  console.log(JSON.stringify({ ...result, hostPeakRss: peakRss(process.pid) }));
  if (values.dir === undefined) await rm(root, { recursive: true, force: true });
  process.exit(0);
}

async function scenario(name) {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const args = [...process.execArgv, fileURLToPath(import.meta.url), "--scenario", name, "--size-mib", String(sizeMiB), "--runs", String(runs), "--dir", root];
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1024 * 1024 });
  return JSON.parse(stdout.trim().split("\n").at(-1));
}
// Direct (in this process): write the same bytes to a file (with fsync, as the plugin does), read them back.
const directPut = [];
const directGet = [];
for (let r = 0; r < runs; r++) {
  const path = join(root, `direct-${r}`);
  directPut.push(
    (
      await time(async () => {
        await pipeline(body(size), createWriteStream(path));
        const fh = await open(path, "r+");
        await fh.sync();
        await fh.close();
      })
    ).seconds,
  );
  directGet.push((await time(() => drain(createReadStream(path, { highWaterMark: MiB })))).seconds);
  await rm(path);
}

const viaChannel = await scenario("channel");
const viaGrpc = await scenario("grpc");
const hostPeak = Math.max(viaChannel.hostPeakRss, viaGrpc.hostPeakRss);

// Cold start: spawn to the first answered RPC (handshake + GetPluginInfo + Init).
await mkdir(join(root, "cold"), { recursive: true });
const starts = [];
for (let i = 0; i < coldStarts; i++) {
  const { seconds } = await time(async () => {
    const host = new PluginHost({ plugins: [nodePluginCommand(pluginMain)], logger: silentLogger });
    await host.start();
    await host.objectStore("stowage.io/local").init({ root: join(root, "cold"), createBuckets: "true" });
    return host;
  }).then(async (t) => {
    await t.result.close();
    return t;
  });
  starts.push(seconds * 1000);
}

const mibps = (s) => sizeMiB / s;
Object.assign(results, {
  directPutMiBps: mibps(median(directPut)),
  directGetMiBps: mibps(median(directGet)),
  channelPutMiBps: mibps(viaChannel.put),
  channelGetMiBps: mibps(viaChannel.get),
  grpcPutMiBps: mibps(viaGrpc.put),
  grpcGetMiBps: mibps(viaGrpc.get),
  channelPutRatio: median(directPut) / viaChannel.put,
  channelGetRatio: median(directGet) / viaChannel.get,
  grpcPutRatio: median(directPut) / viaGrpc.put,
  grpcGetRatio: median(directGet) / viaGrpc.get,
  hostPeakRssMiB: hostPeak / MiB,
  pluginPeakRssMiB: Math.max(viaChannel.pluginPeakRss, viaGrpc.pluginPeakRss) / MiB,
  channelHostPeakRssMiB: viaChannel.hostPeakRss / MiB,
  channelPluginPeakRssMiB: viaChannel.pluginPeakRss / MiB,
  grpcHostPeakRssMiB: viaGrpc.hostPeakRss / MiB,
  grpcPluginPeakRssMiB: viaGrpc.pluginPeakRss / MiB,
  coldStartMedianMs: median(starts),
  coldStartMaxMs: Math.max(...starts),
});
if (values.dir === undefined) await rm(root, { recursive: true, force: true });

const f = (n) => n.toFixed(n < 10 ? 2 : 0);
console.log(`| figure | value |\n| --- | --- |`);
console.log(`| object size | ${sizeMiB} MiB, median of ${runs} runs |`);
console.log(`| PUT direct / data channel / gRPC chunks (MiB/s) | ${f(results.directPutMiBps)} / ${f(results.channelPutMiBps)} / ${f(results.grpcPutMiBps)} |`);
console.log(`| PUT ratio to direct: data channel / gRPC | ${f(results.channelPutRatio)} / ${f(results.grpcPutRatio)} |`);
console.log(`| GET direct / data channel / gRPC chunks (MiB/s) | ${f(results.directGetMiBps)} / ${f(results.channelGetMiBps)} / ${f(results.grpcGetMiBps)} |`);
console.log(`| GET ratio to direct: data channel / gRPC | ${f(results.channelGetRatio)} / ${f(results.grpcGetRatio)} |`);
console.log(`| peak RSS host / plugin, data channel (MiB) | ${f(results.channelHostPeakRssMiB)} / ${f(results.channelPluginPeakRssMiB)} |`);
console.log(`| peak RSS host / plugin, gRPC chunks (MiB) | ${f(results.grpcHostPeakRssMiB)} / ${f(results.grpcPluginPeakRssMiB)} |`);
console.log(`| cold start to first RPC, median / max of ${coldStarts} (ms) | ${f(results.coldStartMedianMs)} / ${f(results.coldStartMaxMs)} |`);
if (values.json !== undefined) {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(values.json, JSON.stringify(results, null, 2));
}

