#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: the same PluginHost moving the same object to and from the same MinIO, once through
// the Go velero-plugin-for-aws (Velero's protocol, `protocol: "velero"`) and once through Stowage's
// plugin-aws (Stowage's protocol), in one run.
//
//   node bench/velero.mjs [--size-mib 1024] [--runs 2] [--body reused|fresh] [--json out.json]
//
// `--body fresh` makes every 1 MiB chunk of a PUT body a newly allocated buffer, as a file or
// network stream gives them, where the default reuses 16 blocks (no allocation per chunk): a path
// that keeps chunks reachable then shows in the host's memory.
//
// Both plugins upload with the same settings: 5 MiB parts, 5 at a time (the Go plugin's fixed
// aws-sdk-go-v2 uploader defaults; plugin-aws configured to match) and no extra checksum (the Go
// plugin's default CRC32 is switched off with `checksumAlgorithm: ""`; a third scenario measures
// it with its default, which is what a Velero installation gets). The skeleton (child process per
// scenario, so a peak RSS belongs to one path alone; /proc measurements; table) is
// bench/harness.mjs. The Go binary comes from `bash scripts/install-velero-plugins`, MinIO from
// `bash scripts/install-test-servers minio`.

import { access, constants } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { S3Client, CreateBucketCommand } from "@aws-sdk/client-s3";
import { MiB, MINIO, benchArgs, inChild, num, perProcess, pluginExecutable, printTable, runChildScenario, startMinioServer, throughPlugin, writeJson } from "./harness.mjs";

const values = benchArgs({
  "size-mib": { type: "string", default: "1024" },
  runs: { type: "string", default: "2" },
  body: { type: "string", default: "reused" },
});
const sizeMiB = Number(values["size-mib"]);
const runs = Number(values.runs);
if (!(sizeMiB > 0) || !Number.isInteger(runs) || runs < 1) throw new Error("--size-mib must be positive and --runs a positive integer");
if (values.body !== "reused" && values.body !== "fresh") throw new Error("--body is reused or fresh");
const BUCKET = "bench";
const PART_MIB = 5;
const CONCURRENCY = 5;
const GO_PLUGIN = fileURLToPath(new URL("../.tools/bin/velero-plugin-for-aws", import.meta.url));
const S3 = { bucket: BUCKET, region: MINIO.region, s3ForcePathStyle: "true" };

/** The plugin of one scenario: the Go plugin (with or without its default CRC32) or plugin-aws. */
function plugin(scenario, { endpoint, credentialsFile }) {
  if (scenario === "stowage") {
    const config = { ...S3, s3Url: endpoint, credentialsFile, partSize: `${PART_MIB}MiB`, uploadConcurrency: String(CONCURRENCY) };
    return { plugin: pluginExecutable("@stowage/plugin-aws"), name: "stowage.io/aws", config };
  }
  const config = { ...S3, s3Url: endpoint, ...(scenario === "velero" ? { checksumAlgorithm: "" } : {}) };
  return { plugin: { command: GO_PLUGIN, protocol: "velero", env: { AWS_SHARED_CREDENTIALS_FILE: credentialsFile } }, name: "velero.io/aws", config };
}

const SCENARIOS = ["velero", "stowage", "velero-crc32"];
await runChildScenario(
  values,
  Object.fromEntries(SCENARIOS.map((name) => [name, (context) => throughPlugin(plugin(name, context), { bucket: BUCKET, size: sizeMiB * MiB, runs, keyPrefix: name, freshBody: values.body === "fresh" })])),
);

try {
  await access(GO_PLUGIN, constants.X_OK);
} catch {
  throw new Error(`${GO_PLUGIN} is missing: run \`bash scripts/install-velero-plugins\``);
}
const minio = await startMinioServer();
const results = { sizeMiB, runs, body: values.body, partMiB: PART_MIB, concurrency: CONCURRENCY, node: process.version, date: new Date().toISOString() };
try {
  const setup = new S3Client({ endpoint: minio.endpoint, region: MINIO.region, forcePathStyle: true, credentials: { accessKeyId: MINIO.accessKey, secretAccessKey: MINIO.secretKey } });
  await setup.send(new CreateBucketCommand({ Bucket: BUCKET }));
  setup.destroy();
  const gib = (sizeMiB * 2 * runs) / 1024;
  for (const name of SCENARIOS) {
    const s = await inChild(import.meta.url, values, name, { endpoint: minio.endpoint, credentialsFile: minio.credentialsFile }, minio.pid);
    results[name] = {
      putMiBps: sizeMiB / s.put,
      getMiBps: sizeMiB / s.get,
      hostPeakRssMiB: s.hostPeakRss / MiB,
      pluginPeakRssMiB: s.pluginPeakRss / MiB,
      hostPeakRssAfterPutMiB: s.hostPeakRssAfterPut / MiB,
      pluginPeakRssAfterPutMiB: s.pluginPeakRssAfterPut / MiB,
      cpuPerGiB: { host: s.hostCpu / gib, plugin: s.pluginCpu / gib, minio: s.serverCpu / gib },
    };
  }
  results.putRatio = results.stowage.putMiBps / results.velero.putMiBps;
  results.getRatio = results.stowage.getMiBps / results.velero.getMiBps;
} finally {
  await minio.stop();
}

const columns = SCENARIOS.map((name) => results[name]);
const each = (cell) => columns.map(cell);
printTable(
  ["figure", "host → Go velero-plugin-for-aws", "host → plugin-aws", "Go plugin, default CRC32"],
  [
    ["object, parts, concurrency", `${sizeMiB} MiB (${values.body} chunks), ${PART_MIB} MiB, ${CONCURRENCY}; median of ${runs} runs`, "same", "same"],
    ["PUT (MiB/s)", ...each((c) => num(c.putMiBps))],
    ["GET (MiB/s)", ...each((c) => num(c.getMiBps))],
    ["plugin-aws / Go plugin", `PUT ${num(results.putRatio)}, GET ${num(results.getRatio)}`],
    ["peak RSS host / plugin (MiB)", ...each((c) => `${num(c.hostPeakRssMiB)} / ${num(c.pluginPeakRssMiB)}`)],
    ["the same after the first PUT, before any GET (MiB)", ...each((c) => `${num(c.hostPeakRssAfterPutMiB)} / ${num(c.pluginPeakRssAfterPutMiB)}`)],
    ["CPU s per GiB moved", ...each((c) => perProcess(c.cpuPerGiB))],
  ],
);
await writeJson(values, results);
