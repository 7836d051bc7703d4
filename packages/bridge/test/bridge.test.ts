/**
 * The bridge between real processes: a Stowage host starts `stowage-plugin-bridge` as a local
 * plugin, and the bridge forwards every call over mTLS to two replicas of plugin-local running as a
 * network service, which share one root directory.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { Code } from "@stowage/sdk";
import { nodePluginCommand, PluginHost } from "@stowage/sdk/host";
import { makeTestPki, startNetworkPlugin, type NetworkPlugin, type PemFiles, type TestPki } from "@stowage/test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const BRIDGE = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const PLUGIN_LOCAL = fileURLToPath(new URL("../../plugin-local/dist/main.js", import.meta.url));
const PLUGIN = "stowage.io/local";

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("stowage-plugin-bridge", () => {
  let dir: string;
  let pki: TestPki;
  let client: PemFiles;
  let root: string;
  const replicas: NetworkPlugin[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stowage-bridge-"));
    root = join(dir, "root");
    await mkdir(root);
    pki = await makeTestPki(dir);
    client = await pki.client("velero", { cn: "velero" });
    for (let i = 0; i < 2; i++) {
      replicas.push(await startNetworkPlugin({ script: PLUGIN_LOCAL, tls: { certFile: pki.server.certPath, keyFile: pki.server.keyPath, clientCaFile: pki.ca.certPath } }));
    }
  });

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill()));
    await rm(dir, { recursive: true, force: true });
  });

  function bridgeEnv(extra: Record<string, string> = {}): Record<string, string> {
    return {
      STOWAGE_BRIDGE_ADDRESS: replicas.map((r) => r.address).join(","),
      STOWAGE_BRIDGE_CA_FILE: pki.ca.certPath,
      STOWAGE_BRIDGE_CERT_FILE: client.certPath,
      STOWAGE_BRIDGE_KEY_FILE: client.keyPath,
      // The name in the replicas' certificate (their addresses are IPs, which TLS does not send as a server name).
      STOWAGE_BRIDGE_SERVER_NAME: "stowage-plugins.test",
      ...extra,
    };
  }

  it("offers the service's plugins to a local host and forwards every call, bodies included", async () => {
    const host = new PluginHost({ plugins: [nodePluginCommand(BRIDGE, { env: bridgeEnv() })] });
    try {
      await host.start();
      const offered = host.plugins().map((p) => `${p.descriptor.kind}:${p.descriptor.name}`);
      expect(offered).toEqual(["block-store:stowage.io/local", "object-store:stowage.io/local"]);
      const store = host.objectStore(PLUGIN);
      expect(store.descriptor.description).toContain("through the Stowage bridge");
      expect(store.descriptor.capabilities).not.toContain("DIRECT_TRANSFER");
      await store.init({ root, createBuckets: "true" });
      const body = randomBytes(5 * 1024 * 1024 + 17);
      await store.putObject({ bucket: "b", key: "backups/one.tar.gz", body: Readable.from([body]) });
      const got = await store.getObject({ bucket: "b", key: "backups/one.tar.gz" });
      expect(sha256(await readAll(got.body))).toBe(sha256(body));
      const keys: string[] = [];
      for await (const page of store.listObjects({ bucket: "b", prefix: "backups/" })) keys.push(...page.objects.map((o) => o.key));
      expect(keys).toEqual(["backups/one.tar.gz"]);
      // The replicas wrote into the root the host configured through the bridge.
      expect(await readdir(root)).toContain("b");
      await store.deleteObject({ bucket: "b", key: "backups/one.tar.gz" });
      expect(await store.headObject({ bucket: "b", key: "backups/one.tar.gz" })).toBeUndefined();
    } finally {
      await host.close();
    }
  });

  it("offers only the plugins it is told to", async () => {
    const host = new PluginHost({ plugins: [nodePluginCommand(BRIDGE, { env: bridgeEnv({ STOWAGE_BRIDGE_PLUGINS: PLUGIN }) })] });
    try {
      await host.start();
      expect(host.plugins().map((p) => p.descriptor.kind)).toEqual(["block-store", "object-store"]);
    } finally {
      await host.close();
    }
  });

  it("refuses to start, saying why, without an address, with a plugin the service lacks, or with a certificate from another CA", async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ STOWAGE_BRIDGE_ADDRESS: "" }, /STOWAGE_BRIDGE_ADDRESS is not set/],
      [{ STOWAGE_BRIDGE_PLUGINS: "example.com/none" }, /does not offer \[example\.com\/none\] to this identity; it offers \[stowage\.io\/local\]$/m],
      [{ STOWAGE_BRIDGE_CERT_FILE: pki.otherClient.certPath, STOWAGE_BRIDGE_KEY_FILE: pki.otherClient.keyPath }, /refused the host's client certificate/],
    ];
    for (const [env, message] of cases) {
      const host = new PluginHost({ plugins: [nodePluginCommand(BRIDGE, { env: bridgeEnv(env) })], handshakeTimeoutMs: 20_000 });
      const error = await host.start().then(
        () => undefined,
        (e: unknown) => e as { code: number; message: string },
      );
      await host.close();
      expect(error?.code).toBe(Code.FailedPrecondition);
      expect(error?.message).toMatch(/stowage-plugin-bridge:/);
      expect(error?.message).toMatch(message);
    }
  });
});
