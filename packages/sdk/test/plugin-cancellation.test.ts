/**
 * Cancellations and deadlines are normal outcomes for a plugin: they end the call with CANCELLED
 * or DEADLINE_EXCEEDED and their reason, are logged at debug, and never escape as an uncaught
 * exception or an INTERNAL error at error level. Through the host (both body paths), and with a raw
 * grpc-js client whose deadline only the plugin enforces (a `grpc-timeout` header, no client timer).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ERROR_DOMAIN, Reason } from "../src/errors.js";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";
import { ObjectStoreService, PutObjectRequestSchema } from "../src/gen/stowage/v1/object_store_pb.js";
import type { PluginHost } from "../src/host.js";
import { ENV, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "../src/protocol/constants.js";
import { parseHandshake } from "../src/protocol/handshake.js";
import { methodCodec } from "../src/wire/rpc.js";
import { capturingLogger, memoryFixture, startFixtureHost } from "./support/host.js";
import { eventually } from "../src/testing.js";

const PLUGIN = "fixture.stowage.io/memory";

let hosts: PluginHost[] = [];
let children: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(hosts.map((h) => h.close()));
  hosts = [];
  for (const child of children) child.kill("SIGKILL");
  children = [];
});

async function settle(promise: Promise<unknown>): Promise<void> {
  await promise.then(
    () => undefined,
    () => undefined,
  );
}

/** A body of `chunks` 64 KiB pieces, one per timer tick, so that a cancellation lands mid-body. */
async function* trickle(chunks: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < chunks; i++) {
    yield randomBytes(64 * 1024);
    await sleep(1);
  }
}

describe("through the host", () => {
  it.each([true, false])("cancelled and timed-out GETs and PUTs leave no error-level line in the plugin's log (dataChannel=%s)", async (dataChannel) => {
    const { logger, lines } = capturingLogger();
    const h = await startFixtureHost("ok", { logger, dataChannel });
    hosts.push(h);
    const store = h.objectStore(PLUGIN);
    // streamGet: bodies trickle out and are destroyed with the call's abort reason, as plugin-local's files are.
    await store.init({ buckets: "b", streamGet: "true" });
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([randomBytes(4 * 1024 * 1024)]) });
    const pid = h.plugins()[0]?.pid;
    for (let i = 0; i < 12; i++) {
      const cancelGet = new AbortController();
      setTimeout(() => cancelGet.abort(), i * 2);
      await settle((async () => (await store.getObject({ bucket: "b", key: "k" }, { signal: cancelGet.signal })).body.toArray())());
      await settle((async () => (await store.getObject({ bucket: "b", key: "k" }, { timeoutMs: 1 + i * 3 })).body.toArray())());
      const cancelPut = new AbortController();
      setTimeout(() => cancelPut.abort(), i * 2);
      await settle(store.putObject({ bucket: "b", key: "p", body: trickle(40) }, { signal: cancelPut.signal }));
      await settle(store.putObject({ bucket: "b", key: "p", body: trickle(40) }, { timeoutMs: 1 + i * 3 }));
    }
    // Every call has ended on both sides once the plugin answers the next one.
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeDefined();
    await sleep(300);
    const errors = lines.filter((l) => (l.level as number) >= 50);
    const text = (l: Record<string, unknown>): string => `${String(l.msg)} ${JSON.stringify(l.error ?? "")}`;
    expect(errors.map(text)).toEqual([]);
    expect(lines.filter((l) => /uncaught|unhandled|Premature close|ECONNRESET|EPIPE/.test(text(l)))).toEqual([]);
    expect(h.plugins()[0]?.pid).toBe(pid);
  }, 120_000);
});

describe("a cancelled upload stores nothing", () => {
  it.each([false, true])("a PUT of unknown size cancelled at any point leaves no partial object, even with a naive implementation (dataChannel=%s)", async (dataChannel) => {
    const h = await startFixtureHost("ok", { dataChannel });
    hosts.push(h);
    const store = h.objectStore(PLUGIN);
    await store.init({ buckets: "b", naivePut: "true" });
    const stored: string[] = [];
    for (let i = 0; i < 40; i++) {
      const key = `cancelled-${String(i)}`;
      const controller = new AbortController();
      setTimeout(() => controller.abort(), i);
      // No size: only the end of the stream (a half-close, clause 5.2.4) says the body is complete.
      const put = await store.putObject({ bucket: "b", key, body: trickle(20) }, { signal: controller.signal }).then(
        () => "stored",
        (error: unknown) => error,
      );
      const head = await store.headObject({ bucket: "b", key });
      if (put === "stored") stored.push(key);
      // Never a prefix of the body (clause 2.4.4). The whole body may be there: a cancellation that
      // raced the plugin's answer comes too late to undo the upload (the caller must check, 2.4.5).
      if (head !== undefined) expect(head.size).toBe(20 * 64 * 1024);
      else expect(put).not.toBe("stored");
    }
    expect(stored.length).toBeLessThan(40);
  }, 120_000);
});

/** A plugin process spoken to with a bare grpc-js client, its stderr lines collected. */
async function rawFixture(config: Record<string, string>): Promise<{ client: Client; stderr: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), "stowage-raw-"));
  const child = spawn(process.execPath, [memoryFixture, "--log-level", "debug"], {
    env: { ...process.env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, [ENV.protocolVersions]: "1", [ENV.unixSocketDir]: dir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  child.once("exit", () => {
    rmSync(dir, { recursive: true, force: true });
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on("line", (line) => stderr.push(line));
  const first = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
  const handshake = parseHandshake(String(first.value), { appVersions: [1] });
  const client = new Client(`unix:${handshake.address}`, credentials.createInsecure());
  const init = methodCodec(ObjectStoreService.method.init);
  await new Promise<void>((resolve, reject) => {
    client.makeUnaryRequest(init.path, init.serializeRequest, init.deserializeResponse, create(ObjectStoreService.method.init.input, { plugin: PLUGIN, config }), (error) => {
      if (error === null) resolve();
      else reject(error);
    });
  });
  return { client, stderr };
}

/** Metadata carrying only a `grpc-timeout` header: the client sets no timer of its own. */
function pluginDeadline(ms: number): Metadata {
  const metadata = new Metadata();
  metadata.set("grpc-timeout", `${String(ms)}m`);
  return metadata;
}

/** The Stowage reason in a status's `grpc-status-details-bin` trailer, as the plugin sent it. */
function reasonSent(error: ServiceError): string | undefined {
  const raw = error.metadata.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return undefined;
  for (const detail of fromBinary(StatusSchema, raw).details) {
    const info = anyUnpack(detail, ErrorInfoSchema);
    if (info?.domain === ERROR_DOMAIN) return info.reason;
  }
  return undefined;
}

describe("requests a host never sends", () => {
  it("a negative max_pages fails with INVALID_ARGUMENT (contract 5.5.9)", async () => {
    const { client } = await rawFixture({ buckets: "b" });
    const list = methodCodec(ObjectStoreService.method.listObjects);
    const error = await new Promise<ServiceError>((resolve, reject) => {
      const call = client.makeServerStreamRequest(list.path, list.serializeRequest, list.deserializeResponse, create(ObjectStoreService.method.listObjects.input, { plugin: PLUGIN, bucket: "b", maxPages: -1 }), new Metadata(), {});
      call.on("data", () => {
        reject(new Error("a page arrived"));
      });
      call.on("error", resolve);
    });
    expect(error.code).toBe(3);
    expect(error.details).toMatch(/max_pages/);
    client.close();
  }, 60_000);
});

describe("a deadline only the plugin enforces", () => {
  it("a PUT whose caller stalls ends with DEADLINE_EXCEEDED and its reason, logged at debug, not as INTERNAL", async () => {
    const { client, stderr } = await rawFixture({ buckets: "b" });
    const put = methodCodec(ObjectStoreService.method.putObject);
    const error = await new Promise<ServiceError>((resolve, reject) => {
      const call = client.makeClientStreamRequest(put.path, put.serializeRequest, put.deserializeResponse, pluginDeadline(300), {}, (e) => {
        if (e === null) reject(new Error("the stalled upload succeeded"));
        else resolve(e);
      });
      call.on("error", () => undefined);
      // The header, then nothing: the caller stalls.
      call.write(create(PutObjectRequestSchema, { part: { case: "header", value: { plugin: PLUGIN, bucket: "b", key: "stalled" } } }));
    });
    expect(error.code).toBe(4);
    expect(reasonSent(error)).toBe(Reason.DeadlineExceeded);
    const logged = (): Record<string, unknown>[] => stderr.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l["@message"] !== undefined);
    // The plugin logs the call's end at debug; everything it logged about the call comes before that line.
    await eventually(() => logged().some((l) => l["@level"] === "debug" && l.method === put.path && l.code === 4 && l.reason === Reason.DeadlineExceeded), { timeoutMs: 30_000 });
    expect(logged().filter((l) => l["@level"] === "error" || l["@level"] === "warn")).toEqual([]);
    client.close();
  }, 60_000);

  it("a GET that the plugin cannot serve in time ends with DEADLINE_EXCEEDED and its reason", async () => {
    const { client, stderr } = await rawFixture({ buckets: "b", hangGet: "true" });
    const get = methodCodec(ObjectStoreService.method.getObject);
    const error = await new Promise<ServiceError>((resolve, reject) => {
      const call = client.makeServerStreamRequest(get.path, get.serializeRequest, get.deserializeResponse, create(ObjectStoreService.method.getObject.input, { plugin: PLUGIN, bucket: "b", key: "k" }), pluginDeadline(300), {});
      call.on("data", () => {
        reject(new Error("a message arrived"));
      });
      call.on("error", resolve);
    });
    expect(error.code).toBe(4);
    expect(reasonSent(error)).toBe(Reason.DeadlineExceeded);
    await sleep(300);
    const logged = stderr.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.filter((l) => l["@level"] === "error" || l["@level"] === "warn")).toEqual([]);
    client.close();
  }, 60_000);
});
