#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark (issue 7): the same PluginHost moving the same object to and from the same MinIO,
// once through the Go velero-plugin-for-aws (Velero's protocol, `protocol: "velero"`) and once
// through Stowage's plugin-aws (Stowage's protocol), in one run.
//
//   node bench/velero.mjs [--size-mib 1024] [--runs 2] [--json out.json]
//
// Both plugins upload with the same settings: 5 MiB parts, 5 at a time (the Go plugin's fixed
// aws-sdk-go-v2 uploader defaults; plugin-aws configured to match) and no extra checksum (the Go
// plugin's default CRC32 is switched off with `checksumAlgorithm: ""`; a third scenario measures
// it with its default, which is what a Velero installation gets). Every scenario runs in a fresh
// child process, so a peak RSS (VmHWM) belongs to one path alone; CPU seconds come from
// /proc/<pid>/stat. The Go binary comes from `bash scripts/install-velero-plugins`, MinIO from
// `bash scripts/install-test-servers minio`.

import { body, peakRss, cpuSeconds, time, drain, median } from "./measure.mjs";
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { execFile } from "node:child_process";
import { S3Client, CreateBucketCommand } from "@aws-sdk/client-s3";

const { values } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    "size-mib": { type: "string", default: "1024" },
    runs: { type: "string", default: "2" },
    json: { type: "string" },
    // Child mode.
    scenario: { type: "string" },
    endpoint: { type: "string" },
    "credentials-file": { type: "string" },
  },
});
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
if (!(sizeMiB > 0) || !Number.isInteger(runs) || runs < 1) throw new Error("--size-mib must be positive and --runs a positive integer");
const MiB = 1024 * 1024;
const BUCKET = "bench";
const ACCESS_KEY = "minioadmin";
const SECRET_KEY = "minioadmin";
const REGION = "us-east-1";
const PART_MIB = 5;
const CONCURRENCY = 5;
const GO_PLUGIN = fileURLToPath(new URL("../.tools/bin/velero-plugin-for-aws", import.meta.url));

function check(n, expected, what) {
  if (n !== expected) throw new Error(`${what}: read ${n} bytes, expected ${expected}`);
}

/** Host and client for one scenario: the Go plugin (with or without its default CRC32) or plugin-aws. */
async function open(scenario, endpoint, credentialsFile) {
  const { PluginHost, nodePluginCommand } = await import("@stowage/sdk/host");
  const { silentLogger } = await import("@stowage/sdk");
  if (scenario === "stowage") {
    const pluginMain = fileURLToPath(import.meta.resolve("@stowage/plugin-aws")).replace(/index\.js$/, "main.js");
    const host = new PluginHost({ plugins: [nodePluginCommand(pluginMain)], logger: silentLogger });
    await host.start();
    const store = host.objectStore("stowage.io/aws");
    await store.init({ bucket: BUCKET, s3Url: endpoint, region: REGION, s3ForcePathStyle: "true", credentialsFile, partSize: `${PART_MIB}MiB`, uploadConcurrency: String(CONCURRENCY) });
    return { host, store, name: "stowage.io/aws" };
  }
  const host = new PluginHost({ plugins: [{ command: GO_PLUGIN, protocol: "velero", env: { AWS_SHARED_CREDENTIALS_FILE: credentialsFile } }], logger: silentLogger });
  await host.start();
  const store = host.objectStore("velero.io/aws");
  await store.init({ bucket: BUCKET, s3Url: endpoint, region: REGION, s3ForcePathStyle: "true", ...(scenario === "velero" ? { checksumAlgorithm: "" } : {}) });
  return { host, store, name: "velero.io/aws" };
}

async function run(scenario, endpoint, credentialsFile, size, n) {
  const { host, store, name } = await open(scenario, endpoint, credentialsFile);
  const pid = host.plugins().find((p) => p.descriptor.name === name && p.descriptor.kind === "object-store").pid;
  const put = [];
  const get = [];
  let pluginCpu = -cpuSeconds(pid);
  let afterPut;
  for (let r = 0; r < n; r++) {
    const key = `${scenario}-${r}`;
    put.push((await time(() => store.putObject({ bucket: BUCKET, key, body: body(size), size }))).seconds);
    // Peaks reached by the first PUT alone, before any GET.
    if (r === 0) afterPut = { hostPeakRssAfterPut: peakRss(process.pid), pluginPeakRssAfterPut: peakRss(pid) };
    get.push((await time(async () => check(await drain((await store.getObject({ bucket: BUCKET, key })).body), size, `${scenario} GET`))).seconds);
    await store.deleteObject({ bucket: BUCKET, key });
  }
  pluginCpu += cpuSeconds(pid);
  const pluginPeakRss = peakRss(pid);
  await host.close();
  return { put: median(put), get: median(get), pluginPeakRss, pluginCpu, ...afterPut };
}

if (values.scenario !== undefined) {
  const result = await run(values.scenario, values.endpoint, values["credentials-file"], sizeMiB * MiB, runs);
  console.log(JSON.stringify({ ...result, hostPeakRss: peakRss(process.pid), hostCpu: cpuSeconds(process.pid) }));
  process.exit(0);
}

try {
  await access(GO_PLUGIN, constants.X_OK);
} catch {
  throw new Error(`${GO_PLUGIN} is missing: run \`bash scripts/install-velero-plugins\``);
}
const { startMinio } = await import("@stowage/test-servers");
const minio = await startMinio({ accessKey: ACCESS_KEY, secretKey: SECRET_KEY, region: REGION });
const dir = await mkdtemp(join(tmpdir(), "stowage-bench-velero-"));
const credentialsFile = join(dir, "credentials");
await writeFile(credentialsFile, `[default]\naws_access_key_id=${ACCESS_KEY}\naws_secret_access_key=${SECRET_KEY}\n`);

async function scenario(name) {
  const args = [...process.execArgv, fileURLToPath(import.meta.url), "--scenario", name, "--endpoint", minio.endpoint, "--credentials-file", credentialsFile, "--size-mib", String(sizeMiB), "--runs", String(runs)];
  const minioCpu = cpuSeconds(minio.pid);
  const { stdout } = await promisify(execFile)(process.execPath, args, { maxBuffer: 1024 * 1024 });
  return { ...JSON.parse(stdout.trim().split("\n").at(-1)), minioCpu: cpuSeconds(minio.pid) - minioCpu };
}

const results = { sizeMiB, runs, partMiB: PART_MIB, concurrency: CONCURRENCY, node: process.version, date: new Date().toISOString() };
try {
  const setup = new S3Client({ endpoint: minio.endpoint, region: REGION, forcePathStyle: true, credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
  await setup.send(new CreateBucketCommand({ Bucket: BUCKET }));
  setup.destroy();
  const gib = sizeMiB * 2 * runs / 1024;
  for (const name of ["velero", "stowage", "velero-crc32"]) {
    const s = await scenario(name);
    results[name] = {
      putMiBps: sizeMiB / s.put,
      getMiBps: sizeMiB / s.get,
      hostPeakRssMiB: s.hostPeakRss / MiB,
      pluginPeakRssMiB: s.pluginPeakRss / MiB,
      hostPeakRssAfterPutMiB: s.hostPeakRssAfterPut / MiB,
      pluginPeakRssAfterPutMiB: s.pluginPeakRssAfterPut / MiB,
      cpuPerGiB: { host: s.hostCpu / gib, plugin: s.pluginCpu / gib, minio: s.minioCpu / gib },
    };
  }
  results.putRatio = results.stowage.putMiBps / results.velero.putMiBps;
  results.getRatio = results.stowage.getMiBps / results.velero.getMiBps;
} finally {
  await minio.stop();
  await rm(dir, { recursive: true, force: true });
}

const f = (n) => n.toFixed(n < 10 ? 2 : 0);
const c = (o) => Object.entries(o).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
const v = results.velero;
const s = results.stowage;
const d = results["velero-crc32"];
console.log(`| figure | host → Go velero-plugin-for-aws | host → plugin-aws | Go plugin, default CRC32 |\n| --- | --- | --- | --- |`);
console.log(`| object, parts, concurrency | ${sizeMiB} MiB, ${PART_MIB} MiB, ${CONCURRENCY}; median of ${runs} runs | same | same |`);
console.log(`| PUT (MiB/s) | ${f(v.putMiBps)} | ${f(s.putMiBps)} | ${f(d.putMiBps)} |`);
console.log(`| GET (MiB/s) | ${f(v.getMiBps)} | ${f(s.getMiBps)} | ${f(d.getMiBps)} |`);
console.log(`| plugin-aws / Go plugin | PUT ${f(results.putRatio)}, GET ${f(results.getRatio)} | | |`);
console.log(`| peak RSS host / plugin (MiB) | ${f(v.hostPeakRssMiB)} / ${f(v.pluginPeakRssMiB)} | ${f(s.hostPeakRssMiB)} / ${f(s.pluginPeakRssMiB)} | ${f(d.hostPeakRssMiB)} / ${f(d.pluginPeakRssMiB)} |`);
console.log(`| the same after the first PUT, before any GET (MiB) | ${f(v.hostPeakRssAfterPutMiB)} / ${f(v.pluginPeakRssAfterPutMiB)} | ${f(s.hostPeakRssAfterPutMiB)} / ${f(s.pluginPeakRssAfterPutMiB)} | ${f(d.hostPeakRssAfterPutMiB)} / ${f(d.pluginPeakRssAfterPutMiB)} |`);
console.log(`| CPU s per GiB moved | ${c(v.cpuPerGiB)} | ${c(s.cpuPerGiB)} | ${c(d.cpuPerGiB)} |`);
if (values.json !== undefined) await writeFile(values.json, JSON.stringify(results, null, 2));
