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
// seconds per GiB moved of each process (from /proc/<pid>/stat, start-up included). The skeleton
// (child process per scenario, measurements, table) is bench/harness.mjs. MinIO comes from
// @stowage/test-servers (`bash scripts/install-test-servers minio`).

import { Agent as HttpAgent } from "node:http";
import { S3Client, CreateBucketCommand, GetObjectCommand, DeleteObjectCommand } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { MiB, MINIO, directTransfers, num, perProcess, pluginExecutable, providerBenchmark, standardRows, startMinioServer } from "./harness.mjs";

const BUCKET = "bench";

/** An S3 client set up as plugin-aws sets up its own (no optional checksums, keep-alive agent). */
function directClient(endpoint, concurrency) {
  return new S3Client({
    endpoint,
    region: MINIO.region,
    forcePathStyle: true,
    credentials: { accessKeyId: MINIO.accessKey, secretAccessKey: MINIO.secretKey },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    requestHandler: { httpAgent: new HttpAgent({ keepAlive: true, maxSockets: Math.max(50, concurrency * 2) }) },
  });
}

/** The plugin's command: nodePluginCommand() of plugin-aws, or another build or other Node flags. */
function pluginCommand(s) {
  const main = s["plugin-main"] ?? pluginExecutable("@stowage/plugin-aws");
  const flags = s["plugin-node-flags"];
  if (flags === undefined) return main;
  return { command: process.execPath, args: [...flags.split(" ").filter(Boolean), main] };
}

await providerBenchmark({
  script: import.meta.url,
  defaults: { "size-mib": "1024", "rss-size-mib": "4096", runs: "2" },
  options: {
    "part-mib": { type: "string", default: "16" },
    concurrency: { type: "string", default: "4" },
    // Node flags of the plugin process instead of nodePluginCommand()'s (for experiments).
    "plugin-node-flags": { type: "string" },
    // Another build of plugin-aws's main.js (A/B comparisons in the same conditions).
    "plugin-main": { type: "string" },
  },
  serverLabel: "minio",
  async startServer(s) {
    const minio = await startMinioServer();
    const setup = directClient(minio.endpoint, Number(s.concurrency));
    await setup.send(new CreateBucketCommand({ Bucket: BUCKET }));
    setup.destroy();
    return { pid: minio.pid, context: { endpoint: minio.endpoint, credentialsFile: minio.credentialsFile }, stop: minio.stop };
  },
  async direct({ endpoint }, s, size, runs) {
    const client = directClient(endpoint, Number(s.concurrency));
    try {
      return await directTransfers({
        size,
        runs,
        put: (key, body) =>
          new Upload({ client, params: { Bucket: BUCKET, Key: key, Body: body, ContentLength: size }, partSize: Number(s["part-mib"]) * MiB, queueSize: Number(s.concurrency), leavePartsOnError: false }).done(),
        get: async (key) => (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body,
        remove: (key) => client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })),
      });
    } finally {
      client.destroy();
    }
  },
  plugin: ({ endpoint, credentialsFile }, s) => ({
    plugin: pluginCommand(s),
    name: "stowage.io/aws",
    bucket: BUCKET,
    config: { bucket: BUCKET, s3Url: endpoint, region: MINIO.region, s3ForcePathStyle: "true", credentialsFile, partSize: `${s["part-mib"]}MiB`, uploadConcurrency: s.concurrency },
  }),
  results: (s) => ({ partMiB: Number(s["part-mib"]), concurrency: Number(s.concurrency) }),
  extraFigures: ({ plugin, memory }, s) => ({
    // The plugin's CPU seconds per GiB, PUT and GET apart (transfers only, no start-up).
    pluginCpuPerGiBByDirection: { put: plugin.pluginPutCpu / ((s.sizeMiB * s.runs) / 1024), get: plugin.pluginGetCpu / ((s.sizeMiB * s.runs) / 1024) },
    ...(memory === undefined ? {} : { pluginIdleRssMiB: memory.pluginIdleRss / MiB }),
  }),
  columns: ["figure", "value", "target"],
  rows: (r, s) => [
    ["object size, part size, concurrency", `${s.sizeMiB} MiB, ${s["part-mib"]} MiB, ${s.concurrency}; median of ${s.runs} runs`],
    ...(s["plugin-node-flags"] === undefined ? [] : [["plugin's Node flags", `\`${s["plugin-node-flags"]}\``]]),
    ...(s["plugin-main"] === undefined ? [] : [["plugin executable", `\`${s["plugin-main"]}\``]]),
    ...standardRows(r, s, {
      targets: { putRatio: ">= 0.9", getRatio: ">= 0.9", memory: "each < 191 (200 MB)" },
      afterMemory: [["plugin RSS once initialised, before any transfer (MiB)", num(r.pluginIdleRssMiB)]],
    }),
    ["plugin CPU s per GiB, PUT / GET apart", perProcess(r.pluginCpuPerGiBByDirection)],
  ],
});
