/**
 * The host's telemetry, retries and limits (docs/observability.md) against real plugin processes:
 * an OpenTelemetry SDK in this process (spans in memory, metrics collected on demand) and one in
 * the fixture plugin (its spans written to a file), so the trace context is seen crossing the
 * process boundary.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { context, metrics, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { PluginHost, type PluginHostOptions } from "../src/host.js";
import { CallLimiter } from "../src/host/call-limiter.js";
import { backoffMs, RETRY_DEFAULTS } from "../src/host/retry.js";
import { rejection } from "../src/testing.js";
import { capturingLogger, memoryFixture } from "./support/host.js";

const fixture = fileURLToPath(new URL("./fixtures/flaky-plugin.mjs", import.meta.url));
const PLUGIN = "fixture.stowage.io/flaky";

const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
let dir: string;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  dir = await mkdtemp(join(tmpdir(), "stowage-telemetry-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function startHost(name: string, options: PluginHostOptions = {}): Promise<{ host: PluginHost; traceFile: string }> {
  const traceFile = join(dir, `${name}.jsonl`);
  const host = new PluginHost({ plugins: [{ command: process.execPath, args: [fixture], env: { TRACE_FILE: traceFile } }], logger: capturingLogger().logger, ...options });
  await host.start();
  await host.objectStore(PLUGIN).init({ buckets: "b" });
  return { host, traceFile };
}

interface PluginSpan {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

async function pluginSpans(file: string): Promise<PluginSpan[]> {
  return (await readFile(file, "utf8"))
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as PluginSpan);
}

/** Every data point of a metric, with its attributes, summed values for sums, counts for histograms. */
async function points(name: string): Promise<{ attributes: Record<string, unknown>; value: number }[]> {
  await reader.forceFlush();
  const all: ResourceMetrics[] = metricExporter.getMetrics();
  const last = all[all.length - 1];
  const metric = last?.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  return (metric?.dataPoints ?? []).map((p) => ({ attributes: p.attributes, value: typeof p.value === "number" ? p.value : (p.value as { count: number }).count }));
}

function sum(found: { attributes: Record<string, unknown>; value: number }[], match: Record<string, unknown>): number {
  return found.filter((p) => Object.entries(match).every(([k, v]) => p.attributes[k] === v)).reduce((total, p) => total + p.value, 0);
}

describe("traces", () => {
  it("one span per operation, a client span per RPC under it, and the plugin's server span and its implementation's span in the same trace", async () => {
    const { host, traceFile } = await startHost("traces");
    try {
      const store = host.objectStore(PLUGIN);
      const body = randomBytes(300_000);
      await trace.getTracer("test").startActiveSpan("backup", async (root) => {
        await store.putObject({ bucket: "b", key: "secret/customer-42.tar", body: Readable.from([body]), size: body.length });
        expect(await store.headObject({ bucket: "b", key: "secret/customer-42.tar" })).toMatchObject({ size: body.length });
        root.end();
      });
      const finished = spans.getFinishedSpans();
      const root = finished.find((s) => s.name === "backup");
      const head = finished.find((s) => s.name === "stowage head");
      const rpc = finished.find((s) => s.name === "stowage.v1.ObjectStoreService/HeadObject");
      expect(head?.parentSpanContext?.spanId).toBe(root?.spanContext().spanId);
      expect(rpc?.kind).toBe(SpanKind.CLIENT);
      expect(rpc?.parentSpanContext?.spanId).toBe(head?.spanContext().spanId);
      expect(rpc?.attributes).toMatchObject({ "rpc.system.name": "grpc", "rpc.method": "stowage.v1.ObjectStoreService/HeadObject", "rpc.response.status_code": "OK", "stowage.plugin": PLUGIN });
      const put = finished.find((s) => s.name === "stowage put");
      expect(put?.attributes).toMatchObject({ "stowage.operation": "put", "stowage.bytes": body.length, "stowage.bucket": "b" });
      // Keys stay out of spans unless the application opts in: they can be personal data.
      expect(JSON.stringify(finished.map((s) => s.attributes))).not.toContain("customer-42");

      const inPlugin = await pluginSpans(traceFile);
      const server = inPlugin.find((s) => s.name === "stowage.v1.ObjectStoreService/HeadObject");
      expect(server).toMatchObject({ kind: SpanKind.SERVER, traceId: rpc?.spanContext().traceId, parentSpanId: rpc?.spanContext().spanId });
      expect(inPlugin.find((s) => s.name === "fixture.head")?.parentSpanId).toBe(server?.spanId);
    } finally {
      await host.close();
    }
  });

  it("puts keys on spans when the application opts in", async () => {
    const { host } = await startHost("keys", { telemetry: { recordKeys: true } });
    try {
      await host.objectStore(PLUGIN).headObject({ bucket: "b", key: "opted-in-key" });
      expect(spans.getFinishedSpans().find((s) => s.attributes["stowage.object.key"] === "opted-in-key")?.name).toBe("stowage head");
    } finally {
      await host.close();
    }
  });
});

describe("metrics", () => {
  it("per call and per operation, by status and reason; process starts, crashes and relaunches; the location's availability", async () => {
    const { host } = await startHost("metrics");
    try {
      const store = host.objectStore(PLUGIN);
      const body = randomBytes(100_000);
      await store.putObject({ bucket: "b", key: "k", body: Readable.from([body]), size: body.length });
      expect((await buffer((await store.getObject({ bucket: "b", key: "k" })).body)).length).toBe(body.length);
      await rejection(store.getObject({ bucket: "b", key: "missing" }));

      const calls = await points("rpc.client.call.duration");
      expect(sum(calls, { "rpc.method": "stowage.v1.ObjectStoreService/GetObject", "rpc.response.status_code": "OK", "stowage.plugin": PLUGIN })).toBeGreaterThanOrEqual(1);
      expect(sum(calls, { "rpc.method": "stowage.v1.ObjectStoreService/GetObject", "rpc.response.status_code": "NOT_FOUND" })).toBeGreaterThanOrEqual(1);
      const bytes = await points("stowage.operation.bytes");
      expect(sum(bytes, { "stowage.plugin": PLUGIN, "stowage.operation": "put" })).toBeGreaterThanOrEqual(body.length);
      expect(sum(bytes, { "stowage.plugin": PLUGIN, "stowage.operation": "get" })).toBeGreaterThanOrEqual(body.length);
      const errors = await points("stowage.operation.errors");
      expect(sum(errors, { "stowage.operation": "get", "rpc.response.status_code": "NOT_FOUND", "error.type": Reason.ObjectNotFound })).toBeGreaterThanOrEqual(1);
      // No attribute of any metric carries a key.
      for (const name of ["rpc.client.call.duration", "stowage.operation.duration", "stowage.operation.errors", "stowage.operation.bytes"]) {
        expect(JSON.stringify(await points(name))).not.toMatch(/"k"|missing/);
      }
      const available = async (): Promise<number> => sum(await points("stowage.location.available"), { "stowage.plugin": PLUGIN, "stowage.instance": "default" });
      expect(await available()).toBe(1);

      const starts = sum(await points("stowage.plugin.process.starts"), {});
      const crash = await rejection(store.headObject({ bucket: "b", key: "crash-head" }));
      expect(crash.code).toBe(Code.Unavailable);
      expect(await available()).toBe(0);
      // The relaunched process replays Init (its memory is new: the object is gone, the call succeeds).
      expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
      expect(await available()).toBe(1);
      expect(sum(await points("stowage.plugin.process.crashes"), {})).toBeGreaterThanOrEqual(1);
      expect(sum(await points("stowage.plugin.process.relaunches"), {})).toBeGreaterThanOrEqual(1);
      expect(sum(await points("stowage.plugin.process.starts"), {})).toBe(starts + 1);
      const relaunched = spans.getFinishedSpans().filter((s) => s.name === "stowage head" && s.events.some((e) => e.name === "stowage.plugin.relaunch"));
      expect(relaunched.length).toBeGreaterThanOrEqual(1);
    } finally {
      await host.close();
    }
  });
});

describe("block stores", () => {
  it("each call is an operation with its span and metrics, a listing one per page; errors that are not transient are not retried", async () => {
    const host = new PluginHost({
      plugins: [{ command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: "with-blocks" } }],
      logger: capturingLogger().logger,
      retry: { initialBackoffMs: 1 },
    });
    await host.start();
    try {
      const blocks = host.blockStore("fixture.stowage.io/blocks");
      await blocks.init({});
      const missing = await rejection(blocks.getSnapshot("snap-none"));
      expect([missing.code, missing.reason]).toEqual([Code.NotFound, Reason.SnapshotNotFound]);
      const pages = [];
      for await (const page of blocks.listSnapshots({})) pages.push(page);
      expect(pages).toHaveLength(1);
      const get = spans.getFinishedSpans().filter((s) => s.name === "stowage get-snapshot").at(-1);
      expect(get?.attributes).toMatchObject({ "stowage.plugin": "fixture.stowage.io/blocks", "error.type": Reason.SnapshotNotFound });
      expect(get?.events).toEqual([]);
      const rpc = spans.getFinishedSpans().find((s) => s.name === "stowage.v1.BlockStoreService/GetSnapshot");
      expect(rpc?.parentSpanContext?.spanId).toBe(get?.spanContext().spanId);
      expect(spans.getFinishedSpans().some((s) => s.name === "stowage list-snapshots")).toBe(true);
      expect(sum(await points("stowage.operation.errors"), { "stowage.operation": "get-snapshot", "error.type": Reason.SnapshotNotFound })).toBeGreaterThanOrEqual(1);
    } finally {
      await host.close();
    }
  });
});

describe("retries", () => {
  it("are off by default", async () => {
    const { host } = await startHost("no-retry");
    try {
      expect((await rejection(host.objectStore(PLUGIN).headObject({ bucket: "b", key: "flaky-1-a" }))).code).toBe(Code.Unavailable);
    } finally {
      await host.close();
    }
  });

  it("retry idempotent calls on UNAVAILABLE and RESOURCE_EXHAUSTED, honour retry_after_ms, give up after the attempts, and retry a put only with retryBody", async () => {
    const { host } = await startHost("retry", { retry: { initialBackoffMs: 10, maxBackoffMs: 50 } });
    try {
      const store = host.objectStore(PLUGIN);
      await store.putObject({ bucket: "b", key: "flaky-2-get", body: Readable.from([Buffer.from("x")]) });
      expect(await store.headObject({ bucket: "b", key: "flaky-2-a" })).toBeUndefined();
      const head = spans.getFinishedSpans().filter((s) => s.name === "stowage head").at(-1);
      expect(head?.events.map((e) => [e.name, e.attributes?.["stowage.attempt"]])).toEqual([
        ["stowage.retry", 2],
        ["stowage.retry", 3],
      ]);
      expect((await buffer((await store.getObject({ bucket: "b", key: "flaky-2-get" })).body)).toString()).toBe("x");

      const exhausted = await rejection(store.headObject({ bucket: "b", key: "flaky-5-b" }));
      expect([exhausted.code, exhausted.reason]).toEqual([Code.Unavailable, Reason.BackendUnavailable]);

      await store.headObject({ bucket: "b", key: "slow-down-c" });
      const slowed = spans.getFinishedSpans().filter((s) => s.name === "stowage head").at(-1);
      expect(Number(slowed?.events[0]?.attributes?.["stowage.retry.delay_ms"])).toBeGreaterThanOrEqual(200);

      const once = await rejection(store.putObject({ bucket: "b", key: "put-flaky-1", body: Readable.from([Buffer.from("first")]) }));
      expect(once.code).toBe(Code.Unavailable);
      const data = randomBytes(50_000);
      const stored = await store.putObject({ bucket: "b", key: "put-flaky-2", body: Readable.from([data]), retryBody: () => Readable.from([data]), size: data.length });
      expect(stored.size).toBe(data.length);
      expect((await buffer((await store.getObject({ bucket: "b", key: "put-flaky-2" })).body)).equals(data)).toBe(true);
    } finally {
      await host.close();
    }
  });

  it("back off with full jitter under a doubling cap, never below the plugin's hint", () => {
    const settings = { ...RETRY_DEFAULTS, initialBackoffMs: 100, maxBackoffMs: 1000 };
    expect([1, 2, 3, 4, 5].map((retry) => backoffMs(settings, retry, undefined, () => 0.999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffMs(settings, 1, undefined, () => 0)).toBe(0);
    expect(backoffMs(settings, 1, 750, () => 0.5)).toBe(750);
  });
});

describe("limits", () => {
  it("queue calls beyond maxInFlight and refuse those beyond maxQueued with RESOURCE_EXHAUSTED", async () => {
    const { host } = await startHost("limits", { limits: { plugins: { [PLUGIN]: { maxInFlight: 1, maxQueued: 1 } } } });
    try {
      const store = host.objectStore(PLUGIN);
      const hang = new AbortController();
      const hanging = store.getObject({ bucket: "b", key: "hang" }, { signal: hang.signal });
      hanging.catch(() => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      const queued = store.headObject({ bucket: "b", key: "k" });
      const refused = await rejection(store.headObject({ bucket: "b", key: "k" }));
      expect(refused.code).toBe(Code.ResourceExhausted);
      expect(refused.message).toMatch(/1 calls in flight and 1 waiting/);
      hang.abort();
      expect((await rejection(hanging)).code).toBe(Code.Canceled);
      expect(await queued).toBeUndefined();
    } finally {
      await host.close();
    }
  });

  it("hand a released slot to the next caller in line, and let a waiting caller cancel", async () => {
    const limiter = new CallLimiter("p", { maxInFlight: 1, maxQueued: 2 });
    const first = await limiter.acquire();
    const order: string[] = [];
    const second = limiter.acquire().then((release) => {
      order.push("second");
      return release;
    });
    const gone = new AbortController();
    const third = limiter.acquire(gone.signal);
    gone.abort();
    await expect(third).rejects.toBeDefined();
    expect(limiter.queued).toBe(1);
    first();
    (await second)();
    expect(order).toEqual(["second"]);
    expect([limiter.inFlight, limiter.queued]).toEqual([0, 0]);
  });
});
