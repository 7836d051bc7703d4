#!/usr/bin/env -S node --max-semi-space-size=1
// Benchmark: host -> plugin-azure -> Azurite vs @azure/storage-blob -> Azurite directly, same block
// size and upload concurrency, in one run against one Azurite (in memory).
//
//   node bench/azure.mjs [--size-mib 1024] [--rss-size-mib 4096] [--runs 1]
//                        [--block-mib 8] [--concurrency 4] [--json out.json]
//
// Figures: PUT and GET MiB/s direct and through the plugin and their ratios, peak RSS (VmHWM) of
// the host and of the plugin process while moving one --rss-size-mib blob, and CPU seconds per
// GiB moved by process (from /proc/<pid>/stat, start-up included). The skeleton (child process per
// scenario, measurements, table) is bench/harness.mjs. Azurite comes from @stowage/test-servers
// (the `azurite` npm package).

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { MiB, directTransfers, pluginExecutable, providerBenchmark, scratchDir, standardRows } from "./harness.mjs";

const CONTAINER = "bench";
const KEY_ENTRY = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY";

async function accountKey(file) {
  const line = (await readFile(file, "utf8")).split("\n").find((l) => l.startsWith(`${KEY_ENTRY}=`));
  return line.slice(KEY_ENTRY.length + 1).trim();
}

await providerBenchmark({
  script: import.meta.url,
  defaults: { "size-mib": "1024", "rss-size-mib": "4096", runs: "1" },
  options: {
    "block-mib": { type: "string", default: "8" },
    concurrency: { type: "string", default: "4" },
  },
  serverLabel: "azurite",
  async startServer(s) {
    const { startAzurite } = await import("@stowage/test-servers");
    // In memory: room for the largest blob plus one in flight.
    const azurite = await startAzurite({ extentMemoryLimitMb: Math.max(s.sizeMiB, s.rssSizeMiB) + 2048 });
    const scratch = await scratchDir("azure");
    const credentialsFile = join(scratch.dir, "credentials");
    await writeFile(credentialsFile, `${KEY_ENTRY}=${azurite.accountKey}\n`);
    await BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER).create();
    return {
      pid: azurite.pid,
      context: { endpoint: azurite.blobEndpoint, account: azurite.accountName, credentialsFile },
      stop: async () => {
        await azurite.stop();
        await scratch.cleanup();
      },
    };
  },
  async direct({ endpoint, account, credentialsFile }, s, size, runs) {
    const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(account, await accountKey(credentialsFile)));
    const container = service.getContainerClient(CONTAINER);
    return directTransfers({
      size,
      runs,
      // uploadStream: staged blocks of --block-mib, --concurrency at once, as the plugin is configured.
      put: (key, body) => container.getBlockBlobClient(key).uploadStream(body, Number(s["block-mib"]) * MiB, Number(s.concurrency)),
      get: async (key) => (await container.getBlockBlobClient(key).download()).readableStreamBody,
      remove: (key) => container.getBlockBlobClient(key).delete(),
    });
  },
  plugin: ({ endpoint, account, credentialsFile }, s) => ({
    plugin: pluginExecutable("@stowage/plugin-azure"),
    name: "stowage.io/azure",
    bucket: CONTAINER,
    config: {
      bucket: CONTAINER,
      storageAccount: account,
      storageAccountURI: endpoint,
      storageAccountKeyEnvVar: KEY_ENTRY,
      credentialsFile,
      blockSizeInBytes: String(Number(s["block-mib"]) * MiB),
      uploadConcurrency: s.concurrency,
    },
  }),
  results: (s) => ({ blockMiB: Number(s["block-mib"]), concurrency: Number(s.concurrency) }),
  rows: (r, s) => [["object size, block size, concurrency", `${s.sizeMiB} MiB, ${s["block-mib"]} MiB, ${s.concurrency}; median of ${s.runs} run(s)`], ...standardRows(r, s)],
});
