/**
 * The host's retry policy and per-plugin limits against a fault-injecting proxy in front of MinIO,
 * through a real PluginHost (`retry: {}`, `directTransfer: false`, so every body goes through the
 * plugin) and the built plugin-aws executable:
 *
 * - heads, gets and lists succeed through `503 SlowDown` bursts shorter than the attempts, every
 *   retry waiting at least the store's `Retry-After` (read from the operation spans' retry events);
 * - connection resets before a GET's first byte are retried; a reset after bytes reached the caller
 *   is not (the body errors);
 * - a put without `retryBody` is never retried, one with it is, and nothing half-written is visible;
 * - a black hole ends in DEADLINE_EXCEEDED and `stowage.location.available` goes 0, then back to 1;
 * - the retry budget caps retries under a sustained outage (attempts counted at the proxy);
 * - `maxInFlight: 4, maxQueued: 8` keeps at most 4 requests at the proxy and refuses the overflow.
 *
 * plugin-aws's S3 client makes up to 5 attempts of its own (`maxAttempts: 5`, no configuration
 * key), so one host attempt is up to 5 requests at the proxy; the bursts are sized for that.
 */
import { metrics, trace } from "@opentelemetry/api";
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Code, StowageError, codeName, silentLogger } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore, type PluginHostOptions } from "@stowage/sdk/host";
import { startFaultProxy, startMinio, type FaultProxy, type MinioServer } from "@stowage/test-servers";
import { Client } from "minio";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { recordTrial, runs } from "./support/trials.js";

const PLUGIN = "stowage.io/aws";
const BUCKET = "retries";
const executable = fileURLToPath(new URL("../../packages/plugin-aws/dist/main.js", import.meta.url));
/** The S3 client's own attempts per host attempt (plugin-aws `maxAttempts`). */
const SDK_ATTEMPTS = 5;

const spans = new InMemorySpanExporter();
const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });

/** The failure of `promise`, which must fail with a StowageError. */
async function failure(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected the call to fail");
}

/** The finished operation spans named `stowage <operation>`. */
function operationSpans(operation: string): ReadableSpan[] {
  return spans.getFinishedSpans().filter((span) => span.name === `stowage ${operation}`);
}

/** The waits of the retry events of `spans`, in ms. */
function retryDelays(of: readonly ReadableSpan[]): number[] {
  return of.flatMap((span) => span.events.filter((event) => event.name === "stowage.retry").map((event) => Number(event.attributes?.["stowage.retry.delay_ms"])));
}

/** The last value of the `stowage.location.available` gauge for plugin-aws. */
async function available(): Promise<number | undefined> {
  await reader.forceFlush();
  const all = metricExporter.getMetrics();
  const metric = all[all.length - 1]?.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === "stowage.location.available");
  const point = metric?.dataPoints.find((p) => p.attributes["stowage.plugin"] === PLUGIN);
  return point === undefined ? undefined : Number(point.value);
}

function ms(value: number): string {
  return `${String(Math.round(value))} ms`;
}

describe("host retries and limits against MinIO behind a fault proxy (plugin-aws)", () => {
  let minio: MinioServer;
  let proxy: FaultProxy;
  let dir: string;
  let credentialsFile: string;
  const open: PluginHost[] = [];
  const small = randomBytes(64 * 1024);
  const large = randomBytes(1024 * 1024);

  beforeAll(async () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    minio = await startMinio();
    const url = new URL(minio.endpoint);
    const oob = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: minio.region });
    await oob.makeBucket(BUCKET, minio.region);
    await oob.putObject(BUCKET, "small.bin", small);
    await oob.putObject(BUCKET, "large.bin", large);
    proxy = await startFaultProxy({ upstream: minio.endpoint });
    dir = await mkdtemp(join(tmpdir(), "stowage-retry-trials-"));
    credentialsFile = join(dir, "cloud");
    await writeFile(credentialsFile, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
  }, 120_000);

  afterAll(async () => {
    for (const host of open) await host.close();
    await proxy.stop();
    await minio.stop();
    await rm(dir, { recursive: true, force: true });
    trace.disable();
    metrics.disable();
  });

  beforeEach(() => {
    proxy.resetCounts();
    spans.reset();
  });

  /** A started host running plugin-aws against the proxy, with `retry: {}` unless `options` say otherwise. */
  async function store(options: PluginHostOptions = {}): Promise<HostObjectStore> {
    while (open.length > 0) await open.pop()?.close();
    const host = new PluginHost({ plugins: [nodePluginCommand(executable)], logger: silentLogger, retry: {}, directTransfer: false, ...options });
    open.push(host);
    await host.start();
    const objects = host.objectStore(PLUGIN);
    await objects.init({ s3Url: proxy.endpoint, region: minio.region, s3ForcePathStyle: "true", credentialsFile, connectTimeoutSeconds: "2", requestTimeoutSeconds: "15", idleTimeoutSeconds: "5" });
    proxy.resetCounts();
    spans.reset();
    return objects;
  }

  it("503 SlowDown bursts: heads, gets and lists succeed, every retry waits at least Retry-After", async () => {
    const objects = await store();
    const n = runs(1);
    const retries = { head: 0, get: 0, list: 0 };
    const requests = { head: 0, get: 0, list: 0 };
    const took = { head: 0, get: 0, list: 0 };
    const waits: number[] = [];
    // Each call's own burst (matched by method and path), so the three run at once.
    const calls = {
      head: { match: (r: { method: string; path: string }) => r.method === "HEAD" && r.path.startsWith(`/${BUCKET}/small.bin`), run: async () => expect(await objects.headObject({ bucket: BUCKET, key: "small.bin" })).toMatchObject({ size: small.length }) },
      get: { match: (r: { method: string; path: string }) => r.method === "GET" && r.path.startsWith(`/${BUCKET}/small.bin`), run: async () => expect(Buffer.compare(await buffer((await objects.getObject({ bucket: BUCKET, key: "small.bin" })).body), small)).toBe(0) },
      list: {
        match: (r: { method: string; path: string }) => r.method === "GET" && r.path.startsWith(`/${BUCKET}/?`),
        run: async () => {
          const keys: string[] = [];
          for await (const page of objects.listObjects({ bucket: BUCKET })) keys.push(...page.objects.map((o) => o.key));
          expect(keys).toContain("small.bin");
        },
      },
    };
    const operations = ["head", "get", "list"] as const;
    for (let i = 0; i < n; i++) {
      proxy.resetCounts();
      spans.reset();
      proxy.retryAfterSeconds = 1;
      for (const operation of operations) proxy.slowDownWhere(calls[operation].match, SDK_ATTEMPTS);
      await Promise.all(
        operations.map(async (operation) => {
          const started = performance.now();
          await calls[operation].run();
          took[operation] += performance.now() - started;
        }),
      );
      for (const operation of operations) {
        const delays = retryDelays(operationSpans(operation));
        expect(delays.length).toBeGreaterThanOrEqual(1);
        for (const delay of delays) expect(delay).toBeGreaterThanOrEqual(1000);
        expect(proxy.requests.filter((r) => r.fault === "slow-down" && calls[operation].match(r))).toHaveLength(SDK_ATTEMPTS);
        retries[operation] += delays.length;
        waits.push(...delays);
        requests[operation] += proxy.requests.filter((r) => calls[operation].match(r)).length;
      }
    }
    const lines = operations.map((operation) => `${operation}: ${String(retries[operation])} host retries, ${String(requests[operation])} requests at the proxy, ${ms(took[operation] / n)} per call`);
    recordTrial({
      trial: "plugin-aws behind a fault proxy: 503 SlowDown (Retry-After: 1) for the next 5 requests of a head, a get and a list at once, retry: {}",
      runs: n * 3,
      result: `every head, get and list succeeded; every host retry waited ≥ 1000 ms, the hint (waits ${String(Math.min(...waits))}–${String(Math.max(...waits))} ms); ${lines.join("; ")} (one call's time is ~10 ms without faults; the S3 client's own 5 attempts wait out Retry-After too, with its throttling backoff)`,
    });
  }, 60_000);

  it("resets before a GET's first byte are retried; a reset after bytes reached the caller is not", async () => {
    const objects = await store();
    proxy.resetNext = SDK_ATTEMPTS;
    const started = performance.now();
    expect(Buffer.compare(await buffer((await objects.getObject({ bucket: BUCKET, key: "large.bin" })).body), large)).toBe(0);
    const took = performance.now() - started;
    const before = retryDelays(operationSpans("get"));
    expect(before.length).toBeGreaterThanOrEqual(1);
    const requestsBefore = proxy.requests.length;

    proxy.resetCounts();
    spans.reset();
    proxy.resetNextAfterBytes = 1;
    proxy.resetAfterBytes = 256 * 1024;
    const out = await objects.getObject({ bucket: BUCKET, key: "large.bin" });
    let received = 0;
    out.body.on("data", (chunk: Buffer) => {
      received += chunk.length;
    });
    const error = await failure(new Promise((resolve, reject) => out.body.once("end", resolve).once("error", reject)));
    await new Promise((resolve) => setImmediate(resolve));
    expect(received).toBeGreaterThan(0);
    expect(received).toBeLessThan(large.length);
    expect(retryDelays(operationSpans("get"))).toEqual([]);
    expect(proxy.requests.map((r) => r.fault)).toEqual(["reset-after-bytes"]);
    recordTrial({
      trial: "plugin-aws behind a fault proxy: connection resets during a 1 MiB GET, retry: {}",
      runs: 1,
      result: `5 resets before the answer: ${String(before.length)} host retry, ${String(requestsBefore)} requests at the proxy, the body read back whole in ${ms(took)}; a reset after 256 KiB: ${String(received)} bytes reached the caller, then the body failed ${codeName(error.code)}/${error.reason ?? ""}, 0 retries, 1 request`,
    });
  }, 60_000);

  it("a put without retryBody is never retried, one with retryBody is; nothing half-written is visible", async () => {
    const objects = await store();
    const body = randomBytes(512 * 1024);
    proxy.resetNext = SDK_ATTEMPTS;
    const error = await failure(objects.putObject({ bucket: BUCKET, key: "put/once.bin", body: Readable.from([body]), size: body.length }));
    const onceRetries = retryDelays(operationSpans("put"));
    const onceRequests = proxy.requests.length;
    expect(onceRetries).toEqual([]);
    expect(await objects.headObject({ bucket: BUCKET, key: "put/once.bin" })).toBeUndefined();

    proxy.resetCounts();
    spans.reset();
    proxy.resetNext = SDK_ATTEMPTS;
    const stored = await objects.putObject({ bucket: BUCKET, key: "put/replayed.bin", body: Readable.from([body]), size: body.length, retryBody: () => Readable.from([body]) });
    expect(stored.size).toBe(body.length);
    const replayRetries = retryDelays(operationSpans("put"));
    expect(replayRetries.length).toBeGreaterThanOrEqual(1);
    const replayRequests = proxy.requests.length;

    const keys: string[] = [];
    for await (const page of objects.listObjects({ bucket: BUCKET, prefix: "put/" })) keys.push(...page.objects.map((o) => o.key));
    expect(keys).toEqual(["put/replayed.bin"]);
    expect(await objects.headObject({ bucket: BUCKET, key: "put/replayed.bin" })).toMatchObject({ size: body.length });
    expect(Buffer.compare(await buffer((await objects.getObject({ bucket: BUCKET, key: "put/replayed.bin" })).body), body)).toBe(0);
    recordTrial({
      trial: "plugin-aws behind a fault proxy: 512 KiB put with the next 5 connections reset, retry: {}",
      runs: 1,
      result: `without retryBody: failed ${codeName(error.code)}/${error.reason ?? ""}, 0 host retries, ${String(onceRequests)} requests at the proxy, nothing visible (HEAD not found, not listed); with retryBody: stored whole after ${String(replayRetries.length)} host retry (${String(replayRequests)} requests)`,
    });
  }, 60_000);

  it("a black hole ends in DEADLINE_EXCEEDED and the location gauge goes to 0, then back to 1", async () => {
    const objects = await store();
    expect(await objects.headObject({ bucket: BUCKET, key: "small.bin" })).toBeDefined();
    expect(await available()).toBe(1);
    proxy.blackHole = true;
    const started = performance.now();
    const error = await failure(objects.headObject({ bucket: BUCKET, key: "small.bin" }, { timeoutMs: 1500 }));
    const took = performance.now() - started;
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(await available()).toBe(0);
    proxy.blackHole = false;
    expect(await objects.headObject({ bucket: BUCKET, key: "small.bin" })).toMatchObject({ size: small.length });
    expect(await available()).toBe(1);
    recordTrial({
      trial: "plugin-aws behind a fault proxy: black hole, head with timeoutMs 1500, retry: {}",
      runs: 1,
      result: `DEADLINE_EXCEEDED after ${ms(took)}; stowage.location.available 1 → 0, back to 1 on the first head once the proxy forwarded again`,
    });
  }, 60_000);

  it("the retry budget stops retries under a sustained outage", async () => {
    const objects = await store();
    const calls = 20;
    proxy.resetFraction = 1;
    const started = performance.now();
    const outcomes = await Promise.allSettled(Array.from({ length: calls }, () => objects.headObject({ bucket: BUCKET, key: "small.bin" })));
    const took = performance.now() - started;
    proxy.resetFraction = 0;
    expect(outcomes.every((o) => o.status === "rejected")).toBe(true);
    const hostRetries = retryDelays(operationSpans("head")).length;
    // Reserve of 10 plus 0.2 per call, far below the 2 retries per call that 3 attempts allow.
    expect(hostRetries).toBeLessThanOrEqual(10 + Math.ceil(0.2 * calls));
    const attempts = proxy.requests.length;
    recordTrial({
      trial: "plugin-aws behind a fault proxy: every connection reset, 20 concurrent heads, retry: {} (budget 0.2, reserve 10)",
      runs: 1,
      result: `all 20 failed UNAVAILABLE in ${ms(took)}; ${String(hostRetries)} host retries of the 40 that 3 attempts allow (budget); ${String(attempts)} requests at the proxy (up to ${String(SDK_ATTEMPTS)} S3-client attempts per host attempt)`,
    });
  }, 60_000);

  it("maxInFlight 4, maxQueued 8: at most 4 requests at the proxy, the overflow refused RESOURCE_EXHAUSTED", async () => {
    const objects = await store({ limits: { plugins: { [PLUGIN]: { maxInFlight: 4, maxQueued: 8 } } } });
    proxy.latencyMs = 200;
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => objects.headObject({ bucket: BUCKET, key: "small.bin" })));
    const ok = outcomes.filter((o) => o.status === "fulfilled").length;
    const refused = outcomes.filter((o) => o.status === "rejected" && o.reason instanceof StowageError && o.reason.code === Code.ResourceExhausted).length;
    expect(ok).toBe(12);
    expect(refused).toBe(8);
    expect(proxy.maxInFlight).toBeLessThanOrEqual(4);
    expect(proxy.requests).toHaveLength(12);
    recordTrial({
      trial: "plugin-aws behind a fault proxy: 20 concurrent heads, 200 ms added latency, limits maxInFlight 4, maxQueued 8",
      runs: 1,
      result: `${String(ok)} succeeded, ${String(refused)} refused RESOURCE_EXHAUSTED at once; at most ${String(proxy.maxInFlight)} requests in flight at the proxy`,
    });
  }, 60_000);
  it("direct transfer (contract 5.8): a 503 SlowDown burst on a large GET's ranges is retried by the host's transfer", async () => {
    const objects = await store({ directTransfer: { readPartSize: 4 * 1024 * 1024 } });
    const body = randomBytes(12 * 1024 * 1024);
    await objects.putObject({ bucket: BUCKET, key: "direct.bin", body: Readable.from([body]), size: body.length });
    proxy.resetCounts();
    spans.reset();
    proxy.retryAfterSeconds = 1;
    const match = (r: { method: string; path: string }): boolean => r.method === "GET" && r.path.startsWith(`/${BUCKET}/direct.bin?`) && r.path.includes("X-Amz-Signature");
    proxy.slowDownWhere(match, 2);
    const started = performance.now();
    expect(Buffer.compare(await buffer((await objects.getObject({ bucket: BUCKET, key: "direct.bin" })).body), body)).toBe(0);
    const took = performance.now() - started;
    const ranges = proxy.requests.filter(match);
    expect(ranges.filter((r) => r.fault === "slow-down")).toHaveLength(2);
    // The wait between each refused range and the next range request.
    const waits: number[] = [];
    ranges.forEach((r, i) => {
      const next = ranges[i + 1];
      if (r.fault === "slow-down" && next !== undefined) waits.push(next.at - r.at);
    });
    recordTrial({
      trial: "plugin-aws behind a fault proxy: direct transfer (contract 5.8), 12 MiB GET in 4 MiB ranges, 503 SlowDown (Retry-After: 1) on 2 range requests",
      runs: 1,
      result: `read back whole in ${ms(took)}; ${String(ranges.length)} signed range requests at the proxy; waits after a refused range ${waits.map(ms).join(", ")} (${waits.every((w) => w >= 1000) ? "at least the store's Retry-After" : "the transfer's own backoff; Retry-After not honoured"})`,
    });
  }, 60_000);
});
