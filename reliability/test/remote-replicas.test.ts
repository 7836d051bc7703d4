/**
 * Trials of a shared plugin service (docs/protocol.md, network mode): three replicas of plugin-local
 * run as network services on loopback, sharing one root as replicas share one store, and one host
 * balances calls over them. A replica is killed in the middle of puts and gets, the replicas are
 * restarted one by one while calls go on, their certificates are rotated, and clients without a
 * certificate or with one from another CA are refused. Nothing may be lost or half-written: every
 * put that succeeded reads back whole, and every key listed is one whose put succeeded.
 */
import { createHash, randomBytes, X509Certificate } from "node:crypto";
import { copyFile, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { connect } from "node:tls";
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Client, credentials } from "@grpc/grpc-js";
import { Code, StowageError } from "@stowage/sdk";
import { PluginHost, type HostObjectStore } from "@stowage/sdk/host";
import { makeTestPki, startNetworkPlugin, type NetworkPlugin, type PemFiles, type TestPki } from "@stowage/test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordTrial, runs } from "./support/trials.js";

const PLUGIN_LOCAL = fileURLToPath(new URL("../../packages/plugin-local/dist/main.js", import.meta.url));
const PLUGIN = "stowage.io/local";
const SERVER_NAME = "stowage-plugins.test";
const BUCKET = "b";
const OBJECT_BYTES = 4 * 1024 * 1024;

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A body yielded in 256 KiB chunks, each after a turn of the event loop; `onHalf` runs half-way. */
function slowBody(data: Buffer, onHalf?: () => void): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < data.length; offset += 256 * 1024) {
        if (offset >= data.length / 2 && offset - 256 * 1024 < data.length / 2) onHalf?.();
        await yieldToLoop();
        yield data.subarray(offset, offset + 256 * 1024);
      }
    })(),
  );
}

/** Writes `from` over `to` as cert-manager does: a new file renamed into place. */
async function replaceFile(from: string, to: string): Promise<void> {
  await copyFile(from, `${to}.new`);
  await rename(`${to}.new`, to);
}

/** The serial number of the certificate a TLS handshake with `address` presents. */
async function presentedSerial(address: string, client: PemFiles, ca: string): Promise<string> {
  const [host, port] = address.split(":");
  const socket = connect({ host, port: Number(port), ca, cert: client.certPem, key: client.keyPem, servername: SERVER_NAME, ALPNProtocols: ["h2"] });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    return socket.getPeerX509Certificate()?.serialNumber ?? "";
  } finally {
    socket.destroy();
  }
}

/** Whether a bare gRPC call with `creds` reaches the replica (GetPluginInfo). */
async function reaches(address: string, creds: ReturnType<typeof credentials.createSsl>): Promise<{ ok: boolean; code?: number }> {
  const client = new Client(address, creds, { "grpc.ssl_target_name_override": SERVER_NAME, "grpc.default_authority": SERVER_NAME });
  try {
    return await new Promise((resolve) => {
      client.makeUnaryRequest(
        "/stowage.v1.PluginInfoService/GetPluginInfo",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        { deadline: Date.now() + 10_000 },
        (error: { code: number } | null) => {
          resolve(error === null ? { ok: true } : { ok: false, code: error.code });
        },
      );
    });
  } finally {
    client.close();
  }
}

describe("a shared plugin service: replicas on loopback behind one host", () => {
  let dir: string;
  let pki: TestPki;
  let hostCert: PemFiles;
  /** The files the replicas serve with (rotated in place). */
  let serverFiles: { certFile: string; keyFile: string; clientCaFile: string };
  const replicas: NetworkPlugin[] = [];
  let host: PluginHost;
  let store: HostObjectStore;
  /** Every key whose put succeeded, with its content hash. */
  const written = new Map<string, string>();

  const start = (listen?: string): Promise<NetworkPlugin> =>
    startNetworkPlugin({ script: PLUGIN_LOCAL, tls: serverFiles, ...(listen === undefined ? {} : { listen }), args: ["--drain-ms", "10000", "--tls-refresh-ms", "200"] });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stowage-replicas-"));
    pki = await makeTestPki(dir, SERVER_NAME);
    hostCert = await pki.client("backup-server", { cn: "backup-server" });
    const tls = join(dir, "tls");
    await mkdir(tls);
    serverFiles = { certFile: join(tls, "tls.crt"), keyFile: join(tls, "tls.key"), clientCaFile: join(tls, "ca.crt") };
    await copyFile(pki.server.certPath, serverFiles.certFile);
    await copyFile(pki.server.keyPath, serverFiles.keyFile);
    await copyFile(pki.ca.certPath, serverFiles.clientCaFile);
    for (let i = 0; i < 3; i++) replicas.push(await start());
    const root = join(dir, "root");
    await mkdir(root);
    host = new PluginHost({
      remote: [{ address: replicas.map((r) => r.address).join(","), tls: { caFile: pki.ca.certPath, certFile: hostCert.certPath, keyFile: hostCert.keyPath, serverName: SERVER_NAME, refreshIntervalMs: 200 } }],
      retry: {},
    });
    await host.start();
    store = host.objectStore(PLUGIN);
    await store.init({ root, createBuckets: "true" });
  }, 60_000);

  afterAll(async () => {
    await host?.close();
    await Promise.all(replicas.map((r) => r.kill()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Every key listed was written whole by a put that succeeded, and reads back whole. */
  async function checkNothingLostOrHalfWritten(): Promise<number> {
    const listed: string[] = [];
    for await (const page of store.listObjects({ bucket: BUCKET })) listed.push(...page.objects.map((o) => o.key));
    expect(listed.filter((key) => !written.has(key))).toEqual([]);
    expect([...written.keys()].filter((key) => !listed.includes(key))).toEqual([]);
    for (const [key, digest] of written) {
      const got = await store.getObject({ bucket: BUCKET, key });
      expect(sha256(Buffer.concat(await got.body.toArray()))).toBe(digest);
    }
    return listed.length;
  }

  it("one replica killed in the middle of puts and gets: its calls fail UNAVAILABLE, the rest succeed, nothing is half-written", async () => {
    const n = runs(3);
    const failedPuts: number[] = [];
    const failedGets: number[] = [];
    const seed = randomBytes(OBJECT_BYTES);
    await store.putObject({ bucket: BUCKET, key: "seed", body: Readable.from([seed]) });
    written.set("seed", sha256(seed));
    for (let run = 0; run < n; run++) {
      const victim = run % replicas.length;
      const address = replicas[victim]?.address ?? "";
      let killing: Promise<void> | undefined;
      const kill = (): void => {
        killing ??= replicas[victim]?.kill();
      };
      const puts = Array.from({ length: 6 }, async (_, i) => {
        const key = `run${String(run)}/put-${String(i)}`;
        const data = randomBytes(OBJECT_BYTES);
        await store.putObject({ bucket: BUCKET, key, body: slowBody(data, i === 0 ? kill : undefined) });
        written.set(key, sha256(data));
      });
      const gets = Array.from({ length: 3 }, async () => {
        const got = await store.getObject({ bucket: BUCKET, key: "seed" });
        expect(sha256(Buffer.concat(await got.body.toArray()))).toBe(sha256(seed));
      });
      const outcomes = await Promise.allSettled([...puts, ...gets]);
      await killing;
      for (const [i, outcome] of outcomes.entries()) {
        if (outcome.status === "fulfilled") continue;
        expect(outcome.reason).toBeInstanceOf(StowageError);
        expect((outcome.reason as StowageError).code).toBe(Code.Unavailable);
        expect((outcome.reason as StowageError).message).toContain(`the replica ${address} `);
        (i < puts.length ? failedPuts : failedGets).push(run);
      }
      // The replica comes back on its address; the host replays Init on its new session.
      replicas[victim] = await start(address);
      await checkNothingLostOrHalfWritten();
    }
    const objects = await checkNothingLostOrHalfWritten();
    recordTrial({
      trial: "remote plugin service: one of 3 plugin-local replicas SIGKILLed during 6 puts and 3 gets of 4 MiB (host over mTLS, retries on)",
      runs: n,
      result: `${String(failedPuts.length)} of ${String(6 * n)} puts and ${String(failedGets.length)} of ${String(3 * n)} gets failed, each UNAVAILABLE naming the replica; every other call succeeded; ${String(objects)} objects listed, each from a put that succeeded and read back whole (none half-written); the killed replica restarted on its address and served again after the host replayed Init`,
    });
  }, 300_000);

  it("rolling restart, one replica at a time, while reads go on: every read succeeds", async () => {
    let reads = 0;
    let failures = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        try {
          const got = await store.getObject({ bucket: BUCKET, key: "seed" });
          await got.body.toArray();
          expect(await store.headObject({ bucket: BUCKET, key: "seed" })).toBeDefined();
          reads++;
        } catch (error) {
          failures++;
          expect(error).toBeInstanceOf(StowageError);
        }
      }
    })();
    const exits: (number | null)[] = [];
    for (let i = 0; i < replicas.length; i++) {
      const replica = replicas[i];
      if (replica === undefined) continue;
      const readsBefore = reads;
      exits.push(await replica.terminate());
      replicas[i] = await start(replica.address);
      // Let reads reach the new process before the next one goes.
      while (reads < readsBefore + 5) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    stop = true;
    await reader;
    expect(exits).toEqual([0, 0, 0]);
    expect(failures).toBe(0);
    await checkNothingLostOrHalfWritten();
    recordTrial({
      trial: "remote plugin service: rolling restart of 3 replicas (SIGTERM, drain, start on the same address) during reads (host retries on)",
      runs: 1,
      result: `${String(reads)} reads (GET and HEAD), ${String(failures)} failed; every replica drained and exited 0; nothing lost`,
    });
  }, 300_000);

  it("certificate rotation: new server and host certificates are used without a restart, and the host keeps working", async () => {
    const renewed = await pki.serverCertificate("server-renewed");
    const wanted = new X509Certificate(renewed.certPem).serialNumber;
    await replaceFile(renewed.keyPath, serverFiles.keyFile);
    await replaceFile(renewed.certPath, serverFiles.certFile);
    const renewedHost = await pki.client("backup-server-renewed", { cn: "backup-server" });
    await replaceFile(renewedHost.keyPath, hostCert.keyPath);
    await replaceFile(renewedHost.certPath, hostCert.certPath);
    for (const replica of replicas) {
      let serial = "";
      for (let attempt = 0; attempt < 200 && serial !== wanted; attempt++) {
        serial = await presentedSerial(replica.address, renewedHost, pki.ca.certPem);
        if (serial !== wanted) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(serial).toBe(wanted);
    }
    // A new connection (a replica restarted) is made with the rotated files on both sides.
    const first = replicas[0];
    if (first !== undefined) {
      await first.kill();
      replicas[0] = await start(first.address);
    }
    for (let i = 0; i < 6; i++) expect(await store.headObject({ bucket: BUCKET, key: "seed" })).toBeDefined();
    await checkNothingLostOrHalfWritten();
    recordTrial({
      trial: "remote plugin service: server and host certificates rotated in place (files renamed over, re-read every 200 ms)",
      runs: 1,
      result: `every replica presented the renewed certificate on new connections without a restart; the host kept calling, also over a new connection after a replica restart; nothing lost`,
    });
  }, 120_000);

  it("refuses a client without a certificate and one with a certificate from another CA, and keeps serving the host", async () => {
    const ca = Buffer.from(pki.ca.certPem);
    const outcomes: { ok: boolean; code?: number }[] = [];
    for (const replica of replicas) {
      outcomes.push(await reaches(replica.address, credentials.createSsl(ca)));
      outcomes.push(await reaches(replica.address, credentials.createSsl(ca, Buffer.from(pki.otherClient.keyPem), Buffer.from(pki.otherClient.certPem))));
    }
    for (const outcome of outcomes) expect(outcome).toEqual({ ok: false, code: Code.Unavailable });
    expect(await store.headObject({ bucket: BUCKET, key: "seed" })).toBeDefined();
    recordTrial({
      trial: "remote plugin service: clients without a certificate, or with one from another CA",
      runs: 1,
      result: `${String(outcomes.length)} of ${String(outcomes.length)} refused at the TLS handshake (UNAVAILABLE); the host's calls went on`,
    });
  }, 60_000);
});
