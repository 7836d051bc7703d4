/**
 * `serve()` in network mode (docs/protocol.md "Network mode"), against the in-memory fixture run as
 * a real process with `--listen 127.0.0.1:0`: mutual TLS (no client certificate, or one from
 * another CA, is refused), sessions kept apart, the allow list, the plaintext health port, the
 * drain on SIGTERM, certificate rotation without a restart, and sessions that idle out or are
 * evicted. Nothing waits on the clock: conditions are polled with bounded waits, log lines awaited.
 */
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { makeTestPki, type PemFiles, type TestPki } from "@stowage/test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { Health, HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health_pb.js";
import { GRPCController } from "../src/gen/plugin/grpc_controller_pb.js";
import { BlockStoreService } from "../src/gen/stowage/v1/block_store_pb.js";
import { ObjectStoreService, PutObjectRequestSchema } from "../src/gen/stowage/v1/object_store_pb.js";
import { PluginInfoService } from "../src/gen/stowage/v1/plugin_info_pb.js";
import type { RpcChannel } from "../src/host/rpc-channel.js";
import { eventually, rejection } from "../src/testing.js";
import { memoryFixture } from "./support/host.js";
import {
  networkClient,
  newSession,
  plaintextChannel,
  refusedStart,
  serverSerial,
  startNetworkPlugin,
  type ClientTls,
  type NetworkClient,
  type NetworkPlugin,
} from "./support/network-plugin.js";

const MEMORY = "fixture.stowage.io/memory";

/** A span as the flaky fixture writes it to its trace file. */
interface Span {
  name: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}
const BLOCKS = "fixture.stowage.io/blocks";
const VELERO_SPIFFE = "spiffe://cluster.local/ns/velero/sa/velero";

let dir: string;
let pki: TestPki;
let hostA: PemFiles;
let hostB: PemFiles;
let hostC: PemFiles;
const open: NetworkClient[] = [];
const started: NetworkPlugin[] = [];

/** The TLS of a client presenting `files` (none: no client certificate). */
function tlsOf(files: PemFiles | undefined): ClientTls {
  return { ca: pki.ca.certPem, cert: files?.certPem, key: files?.keyPem };
}

/** An mTLS client of `plugin` (closed after the tests) on a connection of its own, with a new session unless `session` is given (`null`: none). */
function clientOf(plugin: NetworkPlugin, files: PemFiles | undefined, session: string | null = newSession(), tls: ClientTls = tlsOf(files)): RpcChannel {
  const client = networkClient(plugin.address, tls, session ?? undefined);
  open.push(client);
  return client.channel;
}

function tlsArgs(cert = pki.server.certPath, key = pki.server.keyPath): string[] {
  return ["--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pki.ca.certPath];
}

async function start(args: readonly string[], env: NodeJS.ProcessEnv = {}, fixture = memoryFixture): Promise<NetworkPlugin> {
  const plugin = await startNetworkPlugin(fixture, args, env);
  started.push(plugin);
  return plugin;
}

async function initMemory(channel: RpcChannel, buckets: string): Promise<void> {
  await channel.unary(ObjectStoreService.method.init, { plugin: MEMORY, config: { buckets } });
}

async function put(channel: RpcChannel, bucket: string, key: string, body: string): Promise<void> {
  const call = channel.clientStream(ObjectStoreService.method.putObject, { plugin: MEMORY });
  await call.write(create(PutObjectRequestSchema, { part: { case: "header", value: { plugin: MEMORY, bucket, key } } }));
  await call.write(create(PutObjectRequestSchema, { part: { case: "chunk", value: Buffer.from(body) } }));
  await call.finish();
}

async function head(channel: RpcChannel, bucket: string, key: string): Promise<boolean> {
  return (await channel.unary(ObjectStoreService.method.headObject, { plugin: MEMORY, bucket, key })).exists;
}

async function healthOf(address: string): Promise<HealthCheckResponse_ServingStatus> {
  const client = plaintextChannel(address);
  try {
    return (await client.channel.unary(Health.method.check, { service: "plugin" }, { timeoutMs: 5000 })).status;
  } finally {
    client.close();
  }
}

/** Waits for a log line whose message is `message` and whose fields include `fields`. */
async function logLine(plugin: NetworkPlugin, message: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
  return eventually(() => plugin.logs.find((l) => l["@message"] === message && Object.entries(fields).every(([k, v]) => l[k] === v)), { what: `the log line "${message}"` });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-network-"));
  pki = await makeTestPki(dir);
  hostA = await pki.client("host-a", { cn: "host-a", uri: VELERO_SPIFFE });
  hostB = await pki.client("host-b", { cn: "host-b" });
  hostC = await pki.client("host-c", { cn: "host-c" });
}, 60_000);

afterAll(async () => {
  for (const client of open.splice(0)) client.close();
  await Promise.all(started.splice(0).map((p) => p.stop()));
  await rm(dir, { recursive: true, force: true });
});

describe("a plugin served over mTLS", () => {
  let plugin: NetworkPlugin;

  beforeAll(async () => {
    const allow = join(dir, "allow.json");
    await writeFile(
      allow,
      JSON.stringify({
        allow: [
          { identity: `uri:${VELERO_SPIFFE}`, plugins: ["*"] },
          { identity: "cn:host-b", plugins: [BLOCKS] },
          { identity: "cn:host-c", plugins: [MEMORY] },
        ],
      }),
    );
    plugin = await start([...tlsArgs(), "--health-listen", "127.0.0.1:0", "--allow", allow, "--max-sessions", "2", "--log-level", "debug"], { FIXTURE_MODE: "with-blocks" });
  }, 30_000);

  it("refuses a client without a certificate, and one whose certificate another CA signed", async () => {
    const bare = clientOf(plugin, undefined);
    expect((await rejection(bare.unary(PluginInfoService.method.getPluginInfo, {}, { timeoutMs: 10_000 }))).code).toBe(Code.Unavailable);
    const stranger = clientOf(plugin, undefined, newSession(), { ca: pki.ca.certPem, cert: pki.otherClient.certPem, key: pki.otherClient.keyPem });
    expect((await rejection(stranger.unary(PluginInfoService.method.getPluginInfo, {}, { timeoutMs: 10_000 }))).code).toBe(Code.Unavailable);
    // The same server answers a client whose certificate its CA signed.
    const info = await clientOf(plugin, hostA).unary(PluginInfoService.method.getPluginInfo, {});
    expect(info.plugins.map((p) => p.name).sort()).toEqual([BLOCKS, MEMORY]);
    expect(info.dataChannelAddress).toBe("");
  });

  it("keeps two sessions of one identity apart: each has its own Init", async () => {
    const first = clientOf(plugin, hostA);
    const second = clientOf(plugin, hostA);
    await initMemory(first, "alpha");
    await initMemory(second, "beta");
    await put(first, "alpha", "k", "one");
    expect(await head(first, "alpha", "k")).toBe(true);
    // The second session's instance has no bucket alpha: it is another instance with another config.
    const other = await rejection(head(second, "alpha", "k"));
    expect(other.reason).toBe(Reason.BucketNotFound);
    expect(await head(second, "beta", "k")).toBe(false);
  });

  it("serves the direct-transfer and object-protection RPCs in the caller's session", async () => {
    const a = clientOf(plugin, hostA);
    // Before Init the session refuses them like any call; after it, the fixture announces neither capability.
    expect((await rejection(a.unary(ObjectStoreService.method.beginPut, { plugin: MEMORY, bucket: "alpha", key: "k", size: 1n }))).reason).toBe(Reason.NotInitialized);
    await initMemory(a, "alpha");
    expect((await rejection(a.unary(ObjectStoreService.method.beginPut, { plugin: MEMORY, bucket: "alpha", key: "k", size: 1n }))).reason).toBe(Reason.Unsupported);
    expect((await rejection(a.unary(ObjectStoreService.method.getBucketProtection, { plugin: MEMORY, bucket: "alpha" }))).reason).toBe(Reason.Unsupported);
  });

  it("refuses a call before Init in a new session with NOT_INITIALIZED, so the host replays Init", async () => {
    const fresh = clientOf(plugin, hostC);
    const error = await rejection(head(fresh, "alpha", "k"));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.reason).toBe(Reason.NotInitialized);
  });

  it("refuses a store call without a stowage-session with INVALID_ARGUMENT; GetPluginInfo needs none", async () => {
    const sessionless = clientOf(plugin, hostA, null);
    expect((await sessionless.unary(PluginInfoService.method.getPluginInfo, {})).plugins).toHaveLength(2);
    const error = await rejection(initMemory(sessionless, "alpha"));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toContain("stowage-session");
    const blocks = await rejection(sessionless.unary(BlockStoreService.method.init, { plugin: BLOCKS, config: {} }));
    expect(blocks.code).toBe(Code.InvalidArgument);
    const short = clientOf(plugin, hostA, "too-short");
    expect((await rejection(initMemory(short, "alpha"))).code).toBe(Code.InvalidArgument);
  });

  it("applies the allow list: a plugin the identity may not use is PERMISSION_DENIED and not listed", async () => {
    const b = clientOf(plugin, hostB);
    const info = await b.unary(PluginInfoService.method.getPluginInfo, {});
    expect(info.plugins.map((p) => p.name)).toEqual([BLOCKS]);
    const error = await rejection(initMemory(b, "alpha"));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.reason).toBe(Reason.AccessDenied);
    expect(error.message).toContain("cn:host-b");
    expect(error.message).toContain(MEMORY);
    expect(error.message).toContain("allow list");
    await b.unary(BlockStoreService.method.init, { plugin: BLOCKS, config: { zone: "z1" } });
    expect((await b.unary(BlockStoreService.method.getVolumeInfo, { plugin: BLOCKS, volumeId: "vol-1" })).volume?.volumeId).toBe("vol-1");
    await logLine(plugin, "refused a caller the allow list does not give this plugin", { identity: "cn:host-b", plugin: MEMORY });
  });

  it("closes an identity's least recently used session when it opens more than --max-sessions", async () => {
    const [s1, s2, s3] = [clientOf(plugin, hostC), clientOf(plugin, hostC), clientOf(plugin, hostC)];
    // hostC has an uninitialised session from an earlier test at most; these three evict it and s1.
    await initMemory(s1, "gamma");
    await initMemory(s2, "gamma");
    await initMemory(s3, "gamma");
    expect(await head(s3, "gamma", "k")).toBe(false);
    expect(await head(s2, "gamma", "k")).toBe(false);
    const evicted = await rejection(head(s1, "gamma", "k"));
    expect(evicted.reason).toBe(Reason.NotInitialized);
    await logLine(plugin, "session closed", { identity: "cn:host-c", why: "its identity opened more sessions than --max-sessions allows" });
  });

  it("serves the health service in plaintext on the health port, and not go-plugin's controller", async () => {
    expect(plugin.health).toBeDefined();
    expect(await healthOf(plugin.health ?? "")).toBe(HealthCheckResponse_ServingStatus.SERVING);
    // Health also answers on the mTLS port; the controller (Shutdown) is not served there.
    const a = clientOf(plugin, hostA);
    expect((await a.unary(Health.method.check, { service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect((await rejection(a.unary(GRPCController.method.shutdown, {}))).code).toBe(Code.Unimplemented);
  });
});

describe("draining on SIGTERM", () => {
  it("reports NOT_SERVING, takes no new connection, lets an in-flight call finish, then exits 0", async () => {
    const plugin = await start([...tlsArgs(), "--health-listen", "127.0.0.1:0"]);
    const a = clientOf(plugin, hostA);
    await initMemory(a, "delta");
    // An upload the test holds open: its header and a chunk are sent, its end is not.
    const upload = a.clientStream(ObjectStoreService.method.putObject, { plugin: MEMORY });
    await upload.write(create(PutObjectRequestSchema, { part: { case: "header", value: { plugin: MEMORY, bucket: "delta", key: "in-flight" } } }));
    await upload.write(create(PutObjectRequestSchema, { part: { case: "chunk", value: Buffer.from("first half, ") } }));
    expect(await head(a, "delta", "in-flight")).toBe(false);
    const probe = plaintextChannel(plugin.health ?? "");
    open.push(probe);
    const watch = probe.channel.serverStream(Health.method.watch, { service: "plugin" });
    const watched = async (): Promise<HealthCheckResponse_ServingStatus | "ended"> => {
      const next = await watch.messages.next();
      return next.done === true ? "ended" : next.value.status;
    };
    expect(await watched()).toBe(HealthCheckResponse_ServingStatus.SERVING);
    plugin.child.kill("SIGTERM");
    // A watcher hears NOT_SERVING, then its stream ends; a new check says the same.
    expect(await watched()).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    expect(await watched()).toBe("ended");
    expect(await healthOf(plugin.health ?? "")).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    const late = clientOf(plugin, hostA);
    expect((await rejection(late.unary(PluginInfoService.method.getPluginInfo, {}, { timeoutMs: 10_000 }))).code).toBe(Code.Unavailable);
    await upload.write(create(PutObjectRequestSchema, { part: { case: "chunk", value: Buffer.from("second half") } }));
    const stored = await upload.finish();
    expect(stored.size).toBe(BigInt("first half, second half".length));
    expect(await plugin.exited).toBe(0);
  }, 30_000);

  it("cancels what is still in flight when --drain-ms is over, then exits 0", async () => {
    const plugin = await start([...tlsArgs(), "--drain-ms", "300"]);
    const a = clientOf(plugin, hostA);
    await a.unary(ObjectStoreService.method.init, { plugin: MEMORY, config: { buckets: "epsilon", stallList: "true" } });
    const listing = a.serverStream(ObjectStoreService.method.listObjects, { plugin: MEMORY, bucket: "epsilon" });
    const outcome = rejection(listing.messages.next());
    // A call answered on the same connection after the listing began: the server has the listing.
    expect(await head(a, "epsilon", "k")).toBe(false);
    plugin.child.kill("SIGTERM");
    // UNAVAILABLE as the server cancels it; CANCELLED if the connection closed before that status left.
    expect([Code.Unavailable, Code.Canceled]).toContain((await outcome).code);
    expect(await plugin.exited).toBe(0);
    await logLine(plugin, "the drain time is over; cancelling the calls still in flight");
  }, 30_000);
});

describe("certificate rotation", () => {
  it("serves a rewritten certificate to new connections without a restart; open connections keep working", async () => {
    // Mounted like a Kubernetes Secret: tls.crt and tls.key link through ..data, swapped atomically.
    const mount = join(dir, "mounted");
    await mkdir(join(mount, "v1"), { recursive: true });
    await copyFile(pki.server.certPath, join(mount, "v1", "tls.crt"));
    await copyFile(pki.server.keyPath, join(mount, "v1", "tls.key"));
    await symlink("v1", join(mount, "..data"));
    await symlink(join("..data", "tls.crt"), join(mount, "tls.crt"));
    await symlink(join("..data", "tls.key"), join(mount, "tls.key"));
    const plugin = await start([...tlsArgs(join(mount, "tls.crt"), join(mount, "tls.key")), "--tls-refresh-ms", "100"]);
    const before = clientOf(plugin, hostA);
    await initMemory(before, "zeta");
    const oldSerial = new X509Certificate(pki.server.certPem).serialNumber;
    expect((await serverSerial(plugin.address, tlsOf(hostA))).toUpperCase()).toBe(oldSerial.toUpperCase());

    const next = await pki.serverCertificate("server-2");
    const newSerial = new X509Certificate(next.certPem).serialNumber;
    expect(newSerial).not.toBe(oldSerial);
    await mkdir(join(mount, "v2"));
    await writeFile(join(mount, "v2", "tls.crt"), await readFile(next.certPath));
    await writeFile(join(mount, "v2", "tls.key"), await readFile(next.keyPath));
    await symlink("v2", join(mount, "..data-next"));
    await rename(join(mount, "..data-next"), join(mount, "..data"));

    await eventually(async () => (await serverSerial(plugin.address, tlsOf(hostA)).catch(() => "")).toUpperCase() === newSerial.toUpperCase(), {
      what: "a new connection seeing the new certificate",
      timeoutMs: 15_000,
    });
    await logLine(plugin, "serving a new server certificate to new connections");
    // The connection made before the rotation still carries calls, in the same session.
    await put(before, "zeta", "after-rotation", "still here");
    expect(await head(before, "zeta", "after-rotation")).toBe(true);
    // And a new connection works end to end.
    const after = clientOf(plugin, hostA);
    await initMemory(after, "eta");
    expect(await head(after, "eta", "x")).toBe(false);
  }, 30_000);
});

describe("server spans", () => {
  it("wrap every call, with the implementation's own spans nested inside", async () => {
    const traces = join(dir, "spans.jsonl");
    await writeFile(traces, "");
    const plugin = await start(tlsArgs(), { TRACE_FILE: traces }, fileURLToPath(new URL("./fixtures/flaky-plugin.mjs", import.meta.url)));
    const a = clientOf(plugin, hostA);
    await a.unary(ObjectStoreService.method.init, { plugin: "fixture.stowage.io/flaky", config: { buckets: "iota" } });
    await a.unary(ObjectStoreService.method.headObject, { plugin: "fixture.stowage.io/flaky", bucket: "iota", key: "k" });
    const spans = await eventually(
      async () => {
        const all = (await readFile(traces, "utf8")).split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Span);
        return all.some((s) => s.name === "fixture.head") && all.some((s) => s.name === "stowage.v1.ObjectStoreService/HeadObject") ? all : undefined;
      },
      { what: "the spans of HeadObject" },
    );
    const server = spans.find((s) => s.name === "stowage.v1.ObjectStoreService/HeadObject");
    expect(server?.attributes["stowage.plugin"]).toBe("fixture.stowage.io/flaky");
    expect(spans.find((s) => s.name === "fixture.head")?.parentSpanId).toBe(server?.spanId);
  }, 30_000);
});

describe("session idleness", () => {
  it("closes a session idle for longer than --session-idle-ms; its next call is NOT_INITIALIZED", async () => {
    const plugin = await start([...tlsArgs(), "--session-idle-ms", "200", "--log-level", "debug"]);
    const a = clientOf(plugin, hostA);
    await initMemory(a, "theta");
    await logLine(plugin, "session closed", { identity: `uri:${VELERO_SPIFFE}`, why: "idle" });
    const error = await rejection(head(a, "theta", "k"));
    expect(error.reason).toBe(Reason.NotInitialized);
  }, 30_000);
});

describe("refusing to start", () => {
  it("without the TLS files: network mode never serves plaintext", async () => {
    const out = await refusedStart(memoryFixture, ["--listen", "127.0.0.1:0"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("--tls-cert, --tls-key and --tls-client-ca");
    expect(out.stdout).toBe("");
  });

  it("with an allow list that is not valid, saying what is wrong", async () => {
    const allow = join(dir, "bad-allow.json");
    await writeFile(allow, JSON.stringify({ allow: [{ identity: "velero", plugins: [] }] }));
    const out = await refusedStart(memoryFixture, [...tlsArgs(), "--allow", allow]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("allow[0].identity");
    expect(out.stderr).toContain("allow[0].plugins");
  });
});
