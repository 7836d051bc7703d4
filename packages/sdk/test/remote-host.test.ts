/**
 * The host's remote plugins (docs/protocol.md, network mode, "Hosts"): replicas of a network-mode
 * fixture server on loopback, reached over mTLS, balanced, re-initialised, killed and restarted.
 */
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { makeTestPki, type PemFiles, type TestPki } from "@stowage/test-servers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import { PluginHost, type HostObjectStore, type PluginHostOptions, type RemoteTls } from "../src/host.js";
import { RemoteService } from "../src/host/remote-service.js";
import { hostAdapter } from "../src/protocols/registry.js";
import { eventually, rejection } from "../src/testing.js";
import { capturingLogger, memoryFixture } from "./support/host.js";
import { startNetworkPlugin, type NetworkPlugin } from "./support/network-plugin.js";

const PLUGIN = "fixture.stowage.io/memory";
const DNS_NAME = "stowage-plugins.test";

let dir: string;
let pki: TestPki;
let client: PemFiles;
const running = new Set<NetworkPlugin>();
const hosts = new Set<PluginHost>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-remote-host-"));
  pki = await makeTestPki(dir, DNS_NAME);
  client = await pki.client("host", { cn: "backup-host" });
});

afterEach(async () => {
  await Promise.all([...hosts].map((h) => h.close()));
  hosts.clear();
  await Promise.all([...running].map((p) => p.stop()));
  running.clear();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts a replica of the memory fixture in network mode on `listen` (port 0: any). */
async function replica(listen = "127.0.0.1:0", extra: readonly string[] = []): Promise<NetworkPlugin> {
  const plugin = await startNetworkPlugin(memoryFixture, [
    "--listen",
    listen,
    "--tls-cert",
    pki.server.certPath,
    "--tls-key",
    pki.server.keyPath,
    "--tls-client-ca",
    pki.ca.certPath,
    "--log-level",
    "debug",
    ...extra,
  ]);
  running.add(plugin);
  return plugin;
}

/** Kills a replica with SIGKILL and waits for it to be gone. */
async function kill(plugin: NetworkPlugin): Promise<void> {
  plugin.child.kill("SIGKILL");
  await plugin.exited;
  running.delete(plugin);
}

function tls(overrides: Partial<RemoteTls> = {}): RemoteTls {
  return { caFile: pki.ca.certPath, certFile: client.certPath, keyFile: client.keyPath, ...overrides };
}

function newHost(address: string, overrides: Partial<RemoteTls> = {}, options: PluginHostOptions = {}): PluginHost {
  const host = new PluginHost({ remote: [{ address, tls: tls(overrides) }], logger: capturingLogger().logger, handshakeTimeoutMs: 10_000, defaultTimeoutMs: 10_000, ...options });
  hosts.add(host);
  return host;
}

function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(":") + 1));
}

/** How many sessions a replica opened (its debug log). */
function sessionsOpened(plugin: NetworkPlugin): number {
  return plugin.logs.filter((l) => l["@message"] === "session opened").length;
}

const body = (text: string): Readable => Readable.from([Buffer.from(text)]);

/**
 * Starts GETs that wait until cancelled (the fixture's `hangGet`), one after another, until every
 * replica has a session: a replica opens one when the host first sends it a call. Calls pinned to
 * one connection would never reach the others; the pool needs about one per replica.
 */
async function spread(store: HostObjectStore, servers: readonly NetworkPlugin[], signal: AbortSignal): Promise<Promise<StowageError>[]> {
  const gets: Promise<StowageError>[] = [];
  await eventually(
    () => {
      if (servers.every((s) => sessionsOpened(s) === 1)) return true;
      if (gets.length >= 12) throw new Error(`12 calls in flight reached only ${String(servers.filter((s) => sessionsOpened(s) > 0).length)} replicas`);
      gets.push(rejection(store.getObject({ bucket: "b", key: "k" }, { signal })));
      return false;
    },
    { what: "a session on every replica", intervalMs: 100, timeoutMs: 20_000 },
  );
  return gets;
}

describe("remote plugin services", { timeout: 60_000 }, () => {
  it("lists the service's plugins with its address, and calls them over mTLS", async () => {
    const server = await replica();
    const host = newHost(server.address);
    await host.start();
    expect(host.plugins()).toEqual([expect.objectContaining({ command: server.address, pid: undefined, pids: [], runtime: expect.stringContaining("node") as unknown })]);
    const store = host.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    await store.putObject({ bucket: "b", key: "k", body: body("hello") });
    const got = await store.getObject({ bucket: "b", key: "k" });
    expect(Buffer.concat(await got.body.toArray()).toString()).toBe("hello");
  });

  it("spreads calls over the replicas, each with the host's Init in its own session", async () => {
    const servers = await Promise.all([replica(), replica(), replica()]);
    const host = newHost(servers.map((s) => s.address).join(","));
    await host.start();
    const store = host.objectStore(PLUGIN);
    await store.init({ buckets: "b", hangGet: "true" });
    const abort = new AbortController();
    const gets = await spread(store, servers, abort.signal);
    expect(gets.length).toBeLessThanOrEqual(6);
    abort.abort();
    for (const error of await Promise.all(gets)) expect(error.code).toBe(Code.Canceled);
    // Heads on every replica find the bucket: each replica's session got the Init.
    await Promise.all(Array.from({ length: 9 }, () => expect(store.headObject({ bucket: "b", key: "missing" })).resolves.toBeUndefined()));
    expect(servers.map(sessionsOpened)).toEqual([1, 1, 1]);
  });

  it("fails the calls in flight on a killed replica with UNAVAILABLE naming it, and sends later calls to the others", async () => {
    const servers = await Promise.all([replica(), replica(), replica()]);
    const host = newHost(servers.map((s) => s.address).join(","));
    await host.start();
    const store = host.objectStore(PLUGIN);
    await store.init({ buckets: "b", hangGet: "true" });
    const abort = new AbortController();
    const gets = await spread(store, servers, abort.signal);
    // The last replica got its session when a GET was sent to it: that GET is in flight there.
    const victim = servers[2];
    if (victim === undefined) throw new Error("no replica");
    await kill(victim);
    const failed = await Promise.race(gets);
    expect(failed.code).toBe(Code.Unavailable);
    expect(failed.reason).toBe(Reason.PluginCrashed);
    expect(failed.message).toContain(victim.address);
    abort.abort();
    await Promise.all(gets);
    for (let i = 0; i < 6; i++) await expect(store.headObject({ bucket: "b", key: "missing" })).resolves.toBeUndefined();
  });

  it("lets a draining replica (SIGTERM) finish its calls while new calls go to the others", async () => {
    const servers = await Promise.all([replica("127.0.0.1:0", ["--drain-ms", "20000"]), replica("127.0.0.1:0", ["--drain-ms", "20000"])]);
    const host = newHost(servers.map((s) => s.address).join(","));
    await host.start();
    const store = host.objectStore(PLUGIN);
    // Every GET takes 3 s before its answer (NOT_FOUND: the key does not exist).
    await store.init({ buckets: "b", slowGetMs: "3000" });
    const gets = await spread(store, servers, new AbortController().signal);
    const draining = servers[1];
    if (draining === undefined) throw new Error("no replica");
    draining.child.kill("SIGTERM");
    await eventually(() => draining.logs.some((l) => String(l["@message"]).startsWith("draining")), { what: "the drain to start" });
    for (let i = 0; i < 4; i++) await expect(store.headObject({ bucket: "b", key: "k" })).resolves.toBeUndefined();
    // The calls in flight on the draining replica end with the server's answer, not a transport error.
    for (const error of await Promise.all(gets)) expect(error.reason).toBe(Reason.ObjectNotFound);
    expect(await draining.exited).toBe(0);
    running.delete(draining);
  });

  it("replays Init on a replica restarted on the same port before the next call", async () => {
    const first = await replica();
    const host = newHost(first.address);
    await host.start();
    const store = host.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    await store.putObject({ bucket: "b", key: "k", body: body("x") });
    await kill(first);
    const again = await replica(first.address);
    const errors: StowageError[] = [];
    // The restarted replica knows nothing of the session; the host gives it the Init again.
    await eventually(
      async () => {
        try {
          return (await store.headObject({ bucket: "b", key: "k" })) === undefined;
        } catch (error) {
          errors.push(StowageError.from(error));
          return false;
        }
      },
      { what: "a head on the restarted replica", timeoutMs: 15_000, intervalMs: 100 },
    );
    expect(errors.filter((e) => e.reason === Reason.NotInitialized)).toEqual([]);
    expect(sessionsOpened(again)).toBe(1);
  });

  it("turns a replica's NOT_INITIALIZED for a dropped session into one UNAVAILABLE, then replays Init", async () => {
    const server = await replica("127.0.0.1:0", ["--session-idle-ms", "300"]);
    const host = newHost(server.address);
    await host.start();
    const store = host.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    await eventually(() => server.logs.some((l) => l["@message"] === "session closed"), { what: "the idle session to close" });
    const error = await rejection(store.headObject({ bucket: "b", key: "k" }));
    expect(error.code).toBe(Code.Unavailable);
    expect(error.reason).toBe(Reason.PluginCrashed);
    expect(error.message).toMatch(/lost its configuration.*re-sends Init/);
    await expect(store.headObject({ bucket: "b", key: "k" })).resolves.toBeUndefined();
  });

  it("keeps two hosts' configurations apart on one server, and two instances of one host", async () => {
    const server = await replica();
    const one = newHost(server.address);
    const two = newHost(server.address);
    await Promise.all([one.start(), two.start()]);
    const a = one.objectStore(PLUGIN);
    const b = two.objectStore(PLUGIN);
    await a.init({ buckets: "a" });
    await b.init({ buckets: "b" });
    await a.putObject({ bucket: "a", key: "k", body: body("a") });
    expect((await rejection(b.headObject({ bucket: "a", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(a.headObject({ bucket: "b", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    const other = one.objectStore(PLUGIN, { instance: "other" });
    await other.init({ buckets: "c" });
    expect((await rejection(other.headObject({ bucket: "a", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    expect(await a.headObject({ bucket: "a", key: "k" })).toBeDefined();
  });

  it("refuses a server whose certificate is not from caFile, or lacks serverName; and missing files", async () => {
    const server = await replica();
    const wrongCa = await rejection(newHost(server.address, { caFile: pki.otherCa.certPath }).start());
    expect(wrongCa.message).toContain(`not signed by the CA in tls.caFile ${pki.otherCa.certPath}`);
    const wrongName = await rejection(newHost(server.address, { serverName: "elsewhere.test" }).start());
    expect(wrongName.message).toContain(`does not carry the name "elsewhere.test"`);
    const named = newHost(server.address, { serverName: DNS_NAME });
    await named.start();
    const missing = await rejection(newHost(server.address, { keyFile: join(dir, "nowhere.key") }).start());
    expect(missing.message).toContain(`cannot read tls.keyFile ${join(dir, "nowhere.key")} (ENOENT)`);
    const mismatched = await rejection(newHost(server.address, { keyFile: pki.server.keyPath }).start());
    expect(mismatched.message).toContain("is not the key of the certificate");
    expect(mismatched.message).not.toContain("PRIVATE KEY");
  });

  it("says when the server refuses the host's client certificate", async () => {
    const server = await replica();
    const refused = await rejection(newHost(server.address, { certFile: pki.otherClient.certPath, keyFile: pki.otherClient.keyPath }).start());
    expect(refused.message).toContain(`the server refused the host's client certificate (tls.certFile ${pki.otherClient.certPath})`);
  });

  it("uses a rotated client certificate for new connections", async () => {
    const certFile = join(dir, "rotating.pem");
    const keyFile = join(dir, "rotating.key");
    await copyFile(client.certPath, certFile);
    await copyFile(client.keyPath, keyFile);
    const first = await replica();
    const host = newHost(first.address, { certFile, keyFile, refreshIntervalMs: 100 });
    await host.start();
    const store = host.objectStore(PLUGIN);
    await store.init({ buckets: "b" });
    // Rotate to a certificate the server refuses: a new connection (the replica restarted) uses it.
    await copyFile(pki.otherClient.certPath, certFile);
    await copyFile(pki.otherClient.keyPath, keyFile);
    await kill(first);
    const second = await replica(first.address);
    await eventually(
      async () => {
        const error = await rejection(store.headObject({ bucket: "b", key: "k" })).catch(() => undefined);
        return error?.message.includes("refused the host's client certificate") === true;
      },
      { what: "the refused certificate in use", timeoutMs: 15_000, intervalMs: 200 },
    );
    // Rotate to a new valid certificate: the host reconnects with it and replays its Init.
    const renewed = await pki.client("renewed", { cn: "backup-host" });
    await copyFile(renewed.certPath, certFile);
    await copyFile(renewed.keyPath, keyFile);
    await eventually(async () => (await store.headObject({ bucket: "b", key: "k" }).then(() => true, () => false)) || undefined, {
      what: "calls to succeed with the renewed certificate",
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    expect(second.child.exitCode).toBeNull();
  });
});

describe("remote option checks", () => {
  it("refuses a malformed address or interval in the constructor, and a service given twice at start", async () => {
    const files = { caFile: "/ca.pem", certFile: "/c.pem", keyFile: "/c.key" };
    const refused = (remote: PluginHostOptions["remote"]): string => {
      try {
        new PluginHost({ remote });
      } catch (error) {
        const e = StowageError.from(error);
        expect(e.code).toBe(Code.InvalidArgument);
        return e.message;
      }
      throw new Error("accepted");
    };
    expect(refused([{ address: "plugins:7443:1", tls: files }])).toContain("is not host:port");
    expect(refused([{ address: "dns://server/plugins:7443", tls: files }])).toContain("three slashes");
    expect(refused([{ address: "a:1,b", tls: files }])).toContain(`"b" is not host:port`);
    expect(refused([{ address: "a:70000", tls: files }])).toContain("is not host:port");
    expect(refused([{ address: "a:1", tls: { ...files, keyFile: "" } }])).toContain("tls.keyFile must name a PEM file");
    expect(refused([{ address: "a:1", tls: { ...files, refreshIntervalMs: 5 } }])).toContain("tls.refreshIntervalMs must be an integer from 100");
    expect(refused([{ address: "dns:///a:1", tls: files, resolveIntervalMs: -1 }])).toContain("resolveIntervalMs");
    expect(() => new PluginHost({ remote: [{ address: "dns:///[::1]:7443", tls: files }, { address: "10.0.0.1:1,10.0.0.2:1", tls: files }] })).not.toThrow();
    const twice = new PluginHost({ remote: [{ address: "127.0.0.1:1", tls: tls() }, { address: "127.0.0.1:1", tls: tls() }], logger: capturingLogger().logger });
    expect((await rejection(twice.start())).message).toContain("remote plugin service 127.0.0.1:1 is given twice");
  });

  it("refuses a plugin served both by an executable and by a remote service", async () => {
    const server = await replica();
    const host = newHost(server.address, {}, { plugins: [{ command: process.execPath, args: [memoryFixture] }] });
    const error = await rejection(host.start());
    expect(error.message).toContain(`object-store plugin ${PLUGIN} is served by both`);
    expect(error.message).toContain(`remote plugin service ${server.address}`);
  });
});

describe("RemoteService", { timeout: 60_000 }, () => {
  it("resolves a dns:/// name to every replica, retires vanished ones and adds new ones", async () => {
    const one = await replica("127.0.0.1:0");
    const port = portOf(one.address);
    const two = await replica(`127.0.0.2:${String(port)}`);
    let answer = ["127.0.0.1", "127.0.0.2"];
    const { logger } = capturingLogger();
    const service = new RemoteService(
      { address: `dns:///${DNS_NAME}:${String(port)}`, tls: tls(), resolveIntervalMs: 100 },
      { adapter: hostAdapter("stowage"), connectTimeoutMs: 10_000, initTimeoutMs: 10_000, logger, resolver: () => Promise.resolve(answer) },
    );
    try {
      const info = await service.start();
      expect(info.plugins.map((p) => p.name)).toEqual([PLUGIN]);
      expect(service.replicas().map((r) => r.address)).toEqual([`127.0.0.1:${String(port)}`, `127.0.0.2:${String(port)}`]);
      const source = service.source("default");
      await expect(source.acquire()).resolves.toBeDefined();
      const [, second] = service.replicas();
      expect((await second?.acquire())?.name).toContain("127.0.0.2");
      answer = ["127.0.0.2"];
      await eventually(() => service.replicas().length === 1, { what: "the vanished replica retired" });
      const left = await source.acquire();
      expect(left.name).toContain("127.0.0.2");
      answer = ["127.0.0.1", "127.0.0.2"];
      await eventually(() => service.replicas().length === 2, { what: "the replica added again" });
      expect(two.child.exitCode).toBeNull();
    } finally {
      await service.close();
    }
  });
});
