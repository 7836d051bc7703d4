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
// GiB moved by each process. The skeleton (child process per scenario, measurements, table) is
// bench/harness.mjs. fake-gcs-server comes from @stowage/test-servers
// (`bash scripts/install-test-servers fake-gcs`).
//
// fake-gcs-server keeps each object in memory and re-hashes (MD5 + CRC32C) the whole object received
// so far at every resumable chunk, so its cost grows with size² / chunk size: the figures measure
// the emulator as much as the client, and larger chunks are used for the big RSS object, which
// gets a fresh server.

import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Storage } from "@google-cloud/storage";
import { MiB, directTransfers, pluginExecutable, providerBenchmark, scratchDir, standardRows } from "./harness.mjs";

const BUCKET = "bench";

/** fake-gcs-server with the bucket; GOMEMLIMIT keeps its garbage (it grows each object by appending every chunk) in check. */
async function startGcs(credentialsFile, scratch) {
  const { startFakeGcs } = await import("@stowage/test-servers");
  const gcs = await startFakeGcs({ env: { ...process.env, GOMEMLIMIT: "9GiB" } });
  const created = await fetch(`${gcs.endpoint}/storage/v1/b?project=bench`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: BUCKET }) });
  if (!created.ok) throw new Error(`cannot create the bucket: HTTP ${created.status}`);
  return {
    pid: gcs.pid,
    context: { endpoint: gcs.endpoint, credentialsFile },
    stop: async () => {
      await gcs.stop();
      await scratch.cleanup();
    },
    // A fresh server for the big object, so the earlier runs' memory is gone.
    restart: async () => {
      await gcs.stop();
      return startGcs(credentialsFile, scratch);
    },
  };
}

await providerBenchmark({
  script: import.meta.url,
  defaults: { "size-mib": "1024", "rss-size-mib": "4096", runs: "1" },
  options: {
    "chunk-mib": { type: "string", default: "16" },
    "rss-chunk-mib": { type: "string", default: "64" },
  },
  serverLabel: "server",
  async startServer() {
    const scratch = await scratchDir("gcp");
    const credentialsFile = join(scratch.dir, "key.json");
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    await writeFile(
      credentialsFile,
      JSON.stringify({ type: "service_account", project_id: "bench", client_email: "bench@bench.iam.gserviceaccount.com", private_key: privateKey.export({ type: "pkcs8", format: "pem" }) }),
    );
    return startGcs(credentialsFile, scratch);
  },
  direct({ endpoint }, s, size, runs) {
    // The library set up as plugin-gcp sets it up against an emulator endpoint.
    const bucket = new Storage({ apiEndpoint: endpoint, projectId: "bench" }).bucket(BUCKET);
    return directTransfers({
      size,
      runs,
      put: (key, body) => pipeline(body, bucket.file(key).createWriteStream({ resumable: true, validation: "crc32c", chunkSize: Number(s["chunk-mib"]) * MiB })),
      get: (key) => bucket.file(key).createReadStream({ validation: "crc32c" }),
      remove: (key) => bucket.file(key).delete(),
    });
  },
  plugin: ({ endpoint, credentialsFile }, s) => ({
    plugin: pluginExecutable("@stowage/plugin-gcp"),
    name: "stowage.io/gcp",
    bucket: BUCKET,
    config: { bucket: BUCKET, storeEndpoint: endpoint, credentialsFile, chunkSize: `${s["chunk-mib"]}MiB` },
  }),
  rssSettings: (s) => ({ "chunk-mib": s["rss-chunk-mib"] }),
  results: (s) => ({ chunkMiB: Number(s["chunk-mib"]), rssChunkMiB: Number(s["rss-chunk-mib"]) }),
  extraFigures: ({ direct, plugin, memory }) => ({ serverPeakRssMiB: Math.max(direct.serverPeakRss, plugin.serverPeakRss, memory?.serverPeakRss ?? 0) / MiB }),
  rows: (r, s) => [
    ["object size, chunk size", `${s.sizeMiB} MiB, ${s["chunk-mib"]} MiB resumable chunks, CRC32C on; median of ${s.runs} run(s)`],
    ...standardRows(r, s, { memoryNote: `, ${s["rss-chunk-mib"]} MiB chunks` }),
  ],
});
