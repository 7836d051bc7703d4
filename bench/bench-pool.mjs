#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: plugin pools (issue 17). Many transfers at once through one PluginHost whose plugin runs
// as 1, 2 or 4 processes (`processes: { default: n }`), against the provider's SDK doing the same
// work in one process, in one run against one server. The bodies go through the plugin
// (`directTransfer: false`), else they would bypass it and the pool would have nothing to spread.
//
//   node bench/bench-pool.mjs [--objects 8] [--object-mib 256] [--processes 1,2,4]
//                             [--part-mib 16] [--concurrency 4] [--providers aws,local] [--json out.json]
//
// The total size can also come from the environment: STOWAGE_BENCH_POOL_OBJECTS and
// STOWAGE_BENCH_POOL_OBJECT_MIB (the command line wins).
//
// Each scenario (direct; through the plugin with each process count) runs in a fresh child process:
// `objects` PUTs of `object-mib` MiB at once, then `objects` GETs of them at once (each read to its
// end and its length checked), then the deletes. Figures: aggregate MiB/s of each phase and its ratio
// to the direct SDK, CPU seconds per GiB moved (PUT + GET) of each process (host, all plugin
// processes together, the server; start-up included; and the plugins' for the transfers alone),
// how many cores the plugin processes kept busy during the transfers (their CPU seconds over the
// transfers' seconds: about 1 per process when the processes are the bottleneck), peak RSS (VmHWM)
// of the host and of each plugin process, and how many plugin processes were running at the end.
// plugin-local runs on a temporary folder against `fs` streams in one process (no server);
// `--providers aws` leaves it out. Skeleton: bench/harness.mjs.

import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { Agent as HttpAgent } from "node:http";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { MINIO, MiB, benchArgs, inChild, num, perProcess, pluginExecutable, printTable, runChildScenario, startMinioServer, writeJson } from "./harness.mjs";
import { body, cpuSeconds, drain, peakRss, time } from "./measure.mjs";

const BUCKET = "bench";

const values = benchArgs({
  objects: { type: "string", default: process.env.STOWAGE_BENCH_POOL_OBJECTS ?? "8" },
  "object-mib": { type: "string", default: process.env.STOWAGE_BENCH_POOL_OBJECT_MIB ?? "256" },
  processes: { type: "string", default: "1,2,4" },
  "part-mib": { type: "string", default: "16" },
  concurrency: { type: "string", default: "4" },
  providers: { type: "string", default: "aws,local" },
});
const objects = Number(values.objects);
const objectMiB = Number(values["object-mib"]);
const size = objectMiB * MiB;
const partMiB = Number(values["part-mib"]);
const concurrency = Number(values.concurrency);
const counts = values.processes.split(",").map(Number);
const providers = new Set(values.providers.split(","));
for (const n of [objects, objectMiB, partMiB, concurrency, ...counts]) {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--objects, --object-mib, --part-mib, --concurrency and --processes take positive integers; got ${String(n)}`);
}
const gib = (objects * objectMiB * 2) / 1024;

function check(n, what) {
  if (n !== size) throw new Error(`${what}: read ${n} bytes, expected ${size}`);
}

/**
 * The PUTs at once, then the GETs at once (each drained and checked), then the deletes: the seconds
 * of each phase. `put(key, body)`, `get(key)` (a readable), `remove(key)`.
 */
async function allAtOnce(prefix, { put, get, remove }) {
  const keys = Array.from({ length: objects }, (_, i) => `${prefix}-${String(i)}`);
  const putPhase = await time(() => Promise.all(keys.map((key) => put(key, body(size)))));
  const getPhase = await time(() => Promise.all(keys.map(async (key) => check(await drain(await get(key)), `${prefix} GET`))));
  await Promise.all(keys.map((key) => remove(key)));
  return { put: putPhase.seconds, get: getPhase.seconds };
}

/** An S3 client set up as plugin-aws sets up its own (no optional checksums, keep-alive agent). */
function s3Client(endpoint) {
  return new S3Client({
    endpoint,
    region: MINIO.region,
    forcePathStyle: true,
    credentials: { accessKeyId: MINIO.accessKey, secretAccessKey: MINIO.secretKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets: Math.max(50, objects * concurrency * 2) }) },
  });
}

/** `objects` transfers at once through a host whose plugin runs as `processes` processes. */
async function throughPool({ plugin, name, config, processes }) {
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  const host = new PluginHost({ plugins: [nodePluginCommand(plugin)], logger: silentLogger, directTransfer: false, processes: { default: processes } });
  await host.start();
  try {
    const store = host.objectStore(name);
    await store.init(config);
    // Every process started before the clock runs (the pool launches its members as calls need them).
    await Promise.all(Array.from({ length: processes }, () => store.headObject({ bucket: BUCKET, key: "warm-up" })));
    const started = host.plugins().find((p) => p.descriptor.name === name)?.pids ?? [];
    const cpuAtStart = started.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const phases = await allAtOnce("pool", {
      put: (key, data) => store.putObject({ bucket: BUCKET, key, body: data, size }),
      get: async (key) => (await store.getObject({ bucket: BUCKET, key })).body,
      remove: (key) => store.deleteObject({ bucket: BUCKET, key }),
    });
    // Every process of the pool is still running: its CPU (start-up included) and its peak RSS.
    const pids = host.plugins().find((p) => p.descriptor.name === name)?.pids ?? [];
    const pluginCpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    // The transfers alone: less what the processes used to start (the same processes, unless one was relaunched).
    const transfersOnly = started.length === pids.length && started.every((pid) => pids.includes(pid)) ? pluginCpu - cpuAtStart : undefined;
    return { ...phases, pluginProcesses: pids.length, pluginCpu, pluginTransferCpu: transfersOnly, pluginPeakRss: pids.map((pid) => peakRss(pid)) };
  } finally {
    await host.close();
  }
}

const awsConfig = (endpoint, credentialsFile) => ({ bucket: BUCKET, s3Url: endpoint, region: MINIO.region, s3ForcePathStyle: "true", credentialsFile, partSize: `${String(partMiB)}MiB`, uploadConcurrency: String(concurrency) });

async function localFolder(root, folder) {
  await mkdir(join(root, folder, BUCKET), { recursive: true });
  return join(root, folder);
}

// Child mode: one scenario in a fresh process, so its peak RSS and CPU are its own.
const scenarios = {
  "aws-direct": async ({ endpoint }) => {
    const client = s3Client(endpoint);
    try {
      return await allAtOnce("direct", {
        put: (key, data) => new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: data, ContentLength: size }, partSize: partMiB * MiB, queueSize: concurrency, leavePartsOnError: false }).done(),
        get: async (key) => (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body,
        remove: (key) => client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })),
      });
    } finally {
      client.destroy();
    }
  },
  "local-direct": async ({ root }) => {
    const dir = await localFolder(root, "direct");
    return allAtOnce("direct", {
      // As plugin-local does: the bytes, then an fsync.
      async put(key, data) {
        await pipeline(data, createWriteStream(join(dir, key)));
        const fh = await open(join(dir, key), "r+");
        await fh.sync();
        await fh.close();
      },
      get: async (key) => createReadStream(join(dir, key), { highWaterMark: MiB }),
      remove: (key) => rm(join(dir, key)),
    });
  },
};
for (const n of counts) {
  scenarios[`aws-${String(n)}`] = ({ endpoint, credentialsFile }) => throughPool({ plugin: pluginExecutable("@stowage/plugin-aws"), name: "stowage.io/aws", config: awsConfig(endpoint, credentialsFile), processes: n });
  scenarios[`local-${String(n)}`] = async ({ root }) =>
    throughPool({ plugin: pluginExecutable("@stowage/plugin-local"), name: "stowage.io/local", config: { root: await localFolder(root, `pool-${String(n)}`), createBuckets: "true" }, processes: n });
}
await runChildScenario(values, scenarios);

/** The figures of one scenario against its direct baseline. */
function figures(direct, pool, serverLabel) {
  const rates = (r) => ({ putMiBps: (objects * objectMiB) / r.put, getMiBps: (objects * objectMiB) / r.get });
  const server = (r) => (serverLabel === undefined ? {} : { [serverLabel]: r.serverCpu / gib });
  return {
    ...rates(pool),
    putRatio: direct.put / pool.put,
    getRatio: direct.get / pool.get,
    pluginProcesses: pool.pluginProcesses,
    cpuPerGiB: { host: pool.hostCpu / gib, plugins: pool.pluginCpu / gib, ...server(pool) },
    pluginTransferCpuPerGiB: pool.pluginTransferCpu === undefined ? undefined : pool.pluginTransferCpu / gib,
    // The plugins' CPU seconds over the seconds of the transfers: about 1 per process when each is the bottleneck.
    pluginCoresBusy: pool.pluginTransferCpu === undefined ? undefined : pool.pluginTransferCpu / (pool.put + pool.get),
    hostPeakRssMiB: pool.hostPeakRss / MiB,
    pluginPeakRssMiB: pool.pluginPeakRss.map((b) => b / MiB),
    direct: { ...rates(direct), cpuPerGiB: { client: direct.hostCpu / gib, ...server(direct) }, peakRssMiB: direct.hostPeakRss / MiB },
  };
}

const results = { objects, objectMiB, partMiB, concurrency, processes: counts, node: process.version, date: new Date().toISOString(), aws: {}, local: {} };
const log = (name, result) => console.error(`${new Date().toISOString()} ${name}: ${JSON.stringify(result)}`);

if (providers.has("aws")) {
  const minio = await startMinioServer();
  try {
    const setup = s3Client(minio.endpoint);
    await setup.send(new CreateBucketCommand({ Bucket: BUCKET }));
    setup.destroy();
    const context = { endpoint: minio.endpoint, credentialsFile: minio.credentialsFile };
    const direct = await inChild(import.meta.url, values, "aws-direct", context, minio.pid);
    log("aws-direct", direct);
    for (const n of counts) {
      const pool = await inChild(import.meta.url, values, `aws-${String(n)}`, context, minio.pid);
      log(`aws-${String(n)}`, pool);
      results.aws[n] = figures(direct, pool, "minio");
    }
  } finally {
    await minio.stop();
  }
}

if (providers.has("local")) {
  const root = await mkdtemp(join(process.cwd(), ".bench-pool-"));
  try {
    const direct = await inChild(import.meta.url, values, "local-direct", { root });
    log("local-direct", direct);
    for (const n of counts) {
      const pool = await inChild(import.meta.url, values, `local-${String(n)}`, { root });
      log(`local-${String(n)}`, pool);
      results.local[n] = figures(direct, pool);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

const rows = [];
for (const [provider, label] of [
  ["aws", "plugin-aws → MinIO"],
  ["local", "plugin-local → disk"],
]) {
  const byCount = results[provider];
  const first = Object.values(byCount)[0];
  if (first === undefined) continue;
  rows.push([`**${label}**, direct SDK in one process`, "", `${num(first.direct.putMiBps)} / ${num(first.direct.getMiBps)}`, "1 / 1", perProcess(first.direct.cpuPerGiB), "", num(first.direct.peakRssMiB)]);
  for (const [n, f] of Object.entries(byCount)) {
    rows.push([
      `${label}, processes: ${n}`,
      String(f.pluginProcesses),
      `${num(f.putMiBps)} / ${num(f.getMiBps)}`,
      `${num(f.putRatio)} / ${num(f.getRatio)}`,
      `${perProcess(f.cpuPerGiB)} (plugins, transfers only: ${num(f.pluginTransferCpuPerGiB)})`,
      num(f.pluginCoresBusy),
      `${num(f.hostPeakRssMiB)} / ${f.pluginPeakRssMiB.map(num).join(", ")}`,
    ]);
  }
}
console.log(`${String(objects)} × ${String(objectMiB)} MiB PUT at once, then GET at once; ${String(partMiB)} MiB parts × ${String(concurrency)} per upload; bodies through the plugin (directTransfer: false)\n`);
printTable(["scenario", "plugin processes running", "PUT / GET MiB/s (aggregate)", "PUT / GET ratio to direct", "CPU s per GiB moved", "plugin cores busy (transfers)", "peak RSS host / each plugin process (MiB)"], rows);
await writeJson(values, results);
