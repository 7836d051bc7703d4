#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: host -> plugin-local vs writing/reading the same bytes directly, in one run.
//
//   node bench/local.mjs [--size-mib 2048] [--runs 3] [--cold-starts 10] [--json out.json]
//
// Figures: PUT and GET MiB/s through the plugin (data channel and plain gRPC) and direct, their
// ratios, peak RSS (VmHWM) of the host and of the plugin process, and the plugin's cold start
// (spawn to the first answered RPC). Ratios are what count: absolute numbers depend on the disk.
// The skeleton (child process per transport, measurements, table) is bench/harness.mjs.

import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, rm, open } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { MiB, benchArgs, directTransfers, inChild, num, openStore, pluginExecutable, printTable, runChildScenario, throughPlugin, writeJson } from "./harness.mjs";
import { time, median } from "./measure.mjs";

const values = benchArgs({
  "size-mib": { type: "string", default: "2048" },
  runs: { type: "string", default: "3" },
  "cold-starts": { type: "string", default: "10" },
  dir: { type: "string" },
});
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
const coldStarts = Number(values["cold-starts"]);
const size = sizeMiB * MiB;
const PLUGIN = pluginExecutable("@stowage/plugin-local");

/** plugin-local storing under `root`/`folder`, over the data channel or plain gRPC chunks. */
async function local(root, folder, dataChannel) {
  await mkdir(join(root, folder), { recursive: true });
  return { plugin: PLUGIN, name: "stowage.io/local", config: { root: join(root, folder), createBuckets: "true" }, dataChannel };
}

// Child mode: one transport in a fresh host process, so peak RSS belongs to this path alone.
const transport = (dataChannel) => async ({ root }) => throughPlugin(await local(root, `objects-${dataChannel}`, dataChannel), { bucket: "bench", size, runs, keyPrefix: "obj" });
await runChildScenario(values, { channel: transport(true), grpc: transport(false) });

const root = values.dir ?? (await mkdtemp(join(process.cwd(), ".bench-")));
const results = { sizeMiB, runs, node: process.version, date: new Date().toISOString() };

// Direct (in this process): write the same bytes to a file (with fsync, as the plugin does), read them back.
const direct = await directTransfers({
  size,
  runs,
  async put(key, body) {
    await pipeline(body, createWriteStream(join(root, key)));
    const fh = await open(join(root, key), "r+");
    await fh.sync();
    await fh.close();
  },
  get: (key) => createReadStream(join(root, key), { highWaterMark: MiB }),
  remove: (key) => rm(join(root, key)),
});

const viaChannel = await inChild(import.meta.url, values, "channel", { root });
const viaGrpc = await inChild(import.meta.url, values, "grpc", { root });

// Cold start: spawn to the first answered RPC (handshake + GetPluginInfo + Init).
const cold = await local(root, "cold");
const starts = [];
for (let i = 0; i < coldStarts; i++) {
  const { seconds, result } = await time(() => openStore(cold));
  await result.host.close();
  starts.push(seconds * 1000);
}

const mibps = (s) => sizeMiB / s;
Object.assign(results, {
  directPutMiBps: mibps(direct.put),
  directGetMiBps: mibps(direct.get),
  channelPutMiBps: mibps(viaChannel.put),
  channelGetMiBps: mibps(viaChannel.get),
  grpcPutMiBps: mibps(viaGrpc.put),
  grpcGetMiBps: mibps(viaGrpc.get),
  channelPutRatio: direct.put / viaChannel.put,
  channelGetRatio: direct.get / viaChannel.get,
  grpcPutRatio: direct.put / viaGrpc.put,
  grpcGetRatio: direct.get / viaGrpc.get,
  hostPeakRssMiB: Math.max(viaChannel.hostPeakRss, viaGrpc.hostPeakRss) / MiB,
  pluginPeakRssMiB: Math.max(viaChannel.pluginPeakRss, viaGrpc.pluginPeakRss) / MiB,
  channelHostPeakRssMiB: viaChannel.hostPeakRss / MiB,
  channelPluginPeakRssMiB: viaChannel.pluginPeakRss / MiB,
  grpcHostPeakRssMiB: viaGrpc.hostPeakRss / MiB,
  grpcPluginPeakRssMiB: viaGrpc.pluginPeakRss / MiB,
  coldStartMedianMs: median(starts),
  coldStartMaxMs: Math.max(...starts),
});
if (values.dir === undefined) await rm(root, { recursive: true, force: true });

const r = results;
printTable(
  ["figure", "value"],
  [
    ["object size", `${sizeMiB} MiB, median of ${runs} runs`],
    ["PUT direct / data channel / gRPC chunks (MiB/s)", `${num(r.directPutMiBps)} / ${num(r.channelPutMiBps)} / ${num(r.grpcPutMiBps)}`],
    ["PUT ratio to direct: data channel / gRPC", `${num(r.channelPutRatio)} / ${num(r.grpcPutRatio)}`],
    ["GET direct / data channel / gRPC chunks (MiB/s)", `${num(r.directGetMiBps)} / ${num(r.channelGetMiBps)} / ${num(r.grpcGetMiBps)}`],
    ["GET ratio to direct: data channel / gRPC", `${num(r.channelGetRatio)} / ${num(r.grpcGetRatio)}`],
    ["peak RSS host / plugin, data channel (MiB)", `${num(r.channelHostPeakRssMiB)} / ${num(r.channelPluginPeakRssMiB)}`],
    ["peak RSS host / plugin, gRPC chunks (MiB)", `${num(r.grpcHostPeakRssMiB)} / ${num(r.grpcPluginPeakRssMiB)}`],
    [`cold start to first RPC, median / max of ${coldStarts} (ms)`, `${num(r.coldStartMedianMs)} / ${num(r.coldStartMaxMs)}`],
  ],
);
await writeJson(values, results);
