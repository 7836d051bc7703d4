#!/usr/bin/env node
// One soak run, in its own process so that it runs under the open-file limit its parent sets
// (`prlimit --nofile=1024`): a PluginHost, one plugin, and a long mix of small puts, gets, heads,
// lists and deletes with some large transfers in between, `concurrency` calls in flight.
// Samples the open descriptors, resident memory and heap after a full collection of the host (this
// process, run with --expose-gc) and of the plugin process (through its inspector), and prints one
// JSON object per line: {"sample": …} while running, {"summary": …} at the end.
//
// Usage: soak-driver.mjs '<json>' where json is
//   { command: PluginCommand, plugin, config, bucket, ops, concurrency, keys, largeEvery, largeBytes, samples }
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { Readable } from "node:stream";
import { PluginHost } from "@stowage/sdk/host";
import { Code, StowageError, silentLogger } from "@stowage/sdk";

const spec = JSON.parse(process.argv[2] ?? "{}");
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;
const rss = (pid) => Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0") * 1024;
const emit = (record) => process.stdout.write(`${JSON.stringify(record)}\n`);

// The plugin runs with the inspector on a loopback port, so that each sample can first make it
// collect its garbage (below): memory is then compared at the same point of the GC cycle.
const inspectorPort = await freePort();
const command = { ...spec.command, args: [`--inspect=127.0.0.1:${String(inspectorPort)}`, ...(spec.command.args ?? [])] };
const host = new PluginHost({ plugins: [command], logger: silentLogger });
await host.start();
const store = host.objectStore(spec.plugin);
await store.init(spec.config);
const pluginPid = () => host.plugins().find((p) => p.descriptor.name === spec.plugin && p.descriptor.kind === "object-store")?.pid ?? -1;

// The first call through a client launches nothing new; read the pid after it.
const counts = { put: 0, get: 0, head: 0, list: 0, delete: 0, large: 0, notFound: 0 };
const failures = [];
const key = (i) => `soak/${String(i % spec.keys).padStart(4, "0")}`;

async function drain(body) {
  let n = 0;
  for await (const chunk of body) n += chunk.length;
  return n;
}

async function* largeBody(total) {
  const block = randomBytes(1024 * 1024);
  for (let sent = 0; sent < total; sent += block.length) yield block.subarray(0, Math.min(block.length, total - sent));
}

async function one(i) {
  if (spec.largeEvery > 0 && i % spec.largeEvery === Math.floor(spec.largeEvery / 2)) {
    await store.putObject({ bucket: spec.bucket, key: "soak/large", body: Readable.from(largeBody(spec.largeBytes)), size: spec.largeBytes });
    const got = await store.getObject({ bucket: spec.bucket, key: "soak/large" });
    if ((await drain(got.body)) !== spec.largeBytes) throw new Error("large object came back with another size");
    counts.large++;
    return;
  }
  const r = (i * 7919) % 100;
  const k = key(i * 31);
  if (r < 30) {
    const size = (i * 131) % 4096;
    await store.putObject({ bucket: spec.bucket, key: k, body: Readable.from([randomBytes(size)]), size });
    counts.put++;
  } else if (r < 55) {
    counts.get++;
    const got = await store.getObject({ bucket: spec.bucket, key: k });
    await drain(got.body);
  } else if (r < 75) {
    counts.head++;
    await store.headObject({ bucket: spec.bucket, key: k });
  } else if (r < 85) {
    counts.list++;
    for await (const page of store.listObjects({ bucket: spec.bucket, prefix: "soak/0", pageSize: 50, maxPages: 1 })) void page;
  } else {
    counts.delete++;
    await store.deleteObject({ bucket: spec.bucket, key: k });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/** A DevTools-protocol session with the plugin process (Node's inspector, over its WebSocket). */
async function inspector(port) {
  const [target] = await (await fetch(`http://127.0.0.1:${String(port)}/json/list`)).json();
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`cannot reach the plugin's inspector on port ${String(port)}`));
  });
  const pending = new Map();
  let id = 0;
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    pending.get(message.id)?.(message.result);
    pending.delete(message.id);
  };
  return {
    call: (method) =>
      new Promise((resolve) => {
        pending.set(++id, resolve);
        socket.send(JSON.stringify({ id, method }));
      }),
    close: () => socket.close(),
  };
}

// Memory after a full collection in both processes (the host through --expose-gc, the plugin
// through its inspector): what each still holds, not how long ago V8 last collected.
async function memory() {
  globalThis.gc?.();
  await plugin.call("HeapProfiler.collectGarbage");
  const { heapUsed, external } = process.memoryUsage();
  const { usedSize } = await plugin.call("Runtime.getHeapUsage");
  return { hostRss: rss("self"), hostHeap: heapUsed + external, pluginRss: rss(pid), pluginHeap: usedSize };
}

const pid = pluginPid();
const plugin = await inspector(inspectorPort);
const sampleEvery = Math.max(1, Math.floor(spec.ops / spec.samples));
const started = process.hrtime.bigint();
let next = 0;
let done = 0;
async function worker() {
  for (;;) {
    const i = next++;
    if (i >= spec.ops) return;
    try {
      await one(i);
    } catch (error) {
      if (error instanceof StowageError && error.code === Code.NotFound) counts.notFound++;
      else failures.push(error instanceof StowageError ? `${error.code}/${error.reason ?? ""}: ${error.rawMessage}` : String(error?.stack ?? error));
    }
    done++;
    if (done % sampleEvery === 0) emit({ sample: { done, hostFds: fds("self"), pluginFds: fds(pid), ...(await memory()) } });
  }
}
await Promise.all(Array.from({ length: spec.concurrency }, worker));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
emit({ summary: { ops: done, seconds, counts, failures: failures.slice(0, 20), failureCount: failures.length, pluginPidBefore: pid, pluginPidAfter: pluginPid() } });
plugin.close();
await host.close();
