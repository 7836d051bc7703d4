/**
 * Proof with a second real peer: the unmodified Go velero-plugin-for-gcp (v1.14.2), loaded through
 * PluginHost with `protocol: "velero"`, storing objects in fake-gcs-server (its `storeEndpoint`
 * config key). The plugin needs Google credentials: it gets a service-account file holding a test RSA
 * key made here, whose `token_uri` points at a token stub on 127.0.0.1, so no request leaves the
 * machine. Install the plugin with `bash scripts/install-velero-plugins` (.ci/run does); the test
 * fails when it is missing.
 */
import { generateKeyPairSync, verify, type KeyObject } from "node:crypto";
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { startFakeGcs, type FakeGcsServer } from "@stowage/test-servers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, StowageError } from "../src/errors.js";
import { PluginHost } from "../src/host.js";
import type { ListObjectsPage, ObjectStore } from "../src/types.js";
import { capturingLogger } from "./support/host.js";

const GCP_PLUGIN = fileURLToPath(new URL("../../../.tools/bin/velero-plugin-for-gcp", import.meta.url));
const BUCKET = "velero-gcp-interop";
const CLIENT_EMAIL = "velero@stowage-test.iam.gserviceaccount.com";

async function requireBinary(): Promise<void> {
  try {
    await access(GCP_PLUGIN, constants.X_OK);
  } catch {
    throw new Error(`${GCP_PLUGIN} is missing: run \`bash scripts/install-velero-plugins\` (go install github.com/vmware-tanzu/velero-plugin-for-gcp/velero-plugin-for-gcp@v1.14.2)`);
  }
}

async function listAll(store: ObjectStore, input: Parameters<ObjectStore["listObjects"]>[0]): Promise<ListObjectsPage[]> {
  const out: ListObjectsPage[] = [];
  for await (const page of store.listObjects(input)) out.push(page);
  return out;
}

function base64UrlJson(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as Record<string, unknown>;
}

/** A grant the token stub received, with the JWT assertion checked against the test key. */
interface Grant {
  readonly grantType: string | null;
  readonly signatureValid: boolean;
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
}

/**
 * An OAuth2 token endpoint on 127.0.0.1: answers every JWT-bearer grant with a fixed access token and
 * records the grant, verifying the assertion's RS256 signature with the service account's public key.
 */
async function startTokenStub(publicKey: KeyObject): Promise<{ server: Server; url: string; grants: Grant[] }> {
  const grants: Grant[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      const [header = "", claims = "", signature = ""] = (form.get("assertion") ?? "").split(".");
      try {
        grants.push({
          grantType: form.get("grant_type"),
          signatureValid: verify("RSA-SHA256", Buffer.from(`${header}.${claims}`), publicKey, Buffer.from(signature, "base64url")),
          header: base64UrlJson(header),
          claims: base64UrlJson(claims),
        });
      } catch {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "invalid_grant" }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: "stub-access-token", token_type: "Bearer", expires_in: 3600 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/token`, grants };
}

describe("PluginHost with velero-plugin-for-gcp against fake-gcs-server", () => {
  let gcs: FakeGcsServer;
  let token: Awaited<ReturnType<typeof startTokenStub>>;
  let host: PluginHost;
  let store: ObjectStore;
  let dir: string;
  let publicKey: KeyObject;
  const logs = capturingLogger();

  beforeAll(async () => {
    await requireBinary();
    const keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
    publicKey = keys.publicKey;
    token = await startTokenStub(publicKey);
    gcs = await startFakeGcs();
    const created = await fetch(`${gcs.endpoint}/storage/v1/b?project=stowage-test`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: BUCKET }) });
    if (!created.ok) throw new Error(`fake-gcs-server refused to create bucket ${BUCKET}: HTTP ${String(created.status)} ${await created.text()}`);
    dir = await mkdtemp(join(tmpdir(), "velero-gcp-"));
    const credentials = join(dir, "service-account.json");
    await writeFile(
      credentials,
      JSON.stringify({
        type: "service_account",
        project_id: "stowage-test",
        private_key_id: "stowage-test-key",
        private_key: keys.privateKey.export({ type: "pkcs8", format: "pem" }),
        client_email: CLIENT_EMAIL,
        client_id: "100000000000000000001",
        token_uri: token.url,
      }),
    );
    host = new PluginHost({
      plugins: [
        {
          command: GCP_PLUGIN,
          args: ["--log-level=debug"],
          // No metadata-server probing, no default credentials from the machine.
          env: { GCE_METADATA_HOST: "127.0.0.1:9", NO_GCE_CHECK: "True", GOOGLE_APPLICATION_CREDENTIALS: credentials },
          protocol: "velero",
        },
      ],
      logger: logs.logger,
    });
    await host.start();
    store = host.objectStore("velero.io/gcp");
    await store.init({ credentialsFile: credentials, storeEndpoint: `${gcs.endpoint}/storage/v1/`, bucket: BUCKET, prefix: "" });
  }, 120_000);

  afterAll(async () => {
    await host?.close();
    await gcs?.stop();
    await new Promise<void>((resolve) => (token?.server ? token.server.close(() => resolve()) : resolve()));
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("lists the Go binary's plugins through generated.PluginLister", () => {
    const names = host.plugins().map((p) => `${p.descriptor.kind}:${p.descriptor.name}`);
    expect(names).toContain("object-store:velero.io/gcp");
    expect(names).toContain("block-store:velero.io/gcp");
  });

  it("puts, checks, gets, lists and deletes objects in fake-gcs-server", async () => {
    const body = Buffer.alloc(5 * 1024 * 1024 + 321, 0x5a);
    body.write("velero-gcp", 0);
    await store.putObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz", body: Readable.from([body]) });
    await store.putObject({ bucket: BUCKET, key: "backups/b1/velero-backup.json", body: Readable.from([Buffer.from('{"b":1}')]) });
    await store.putObject({ bucket: BUCKET, key: "backups/b2/velero-backup.json", body: Readable.from([Buffer.from('{"b":2}')]) });
    await store.putObject({ bucket: BUCKET, key: "backups/empty", body: Readable.from([]) });

    // What fake-gcs-server holds, read without the plugin.
    const direct = await fetch(`${gcs.endpoint}/storage/v1/b/${BUCKET}/o/${encodeURIComponent("backups/b1/b1.tar.gz")}`);
    expect(((await direct.json()) as { size: string }).size).toBe(String(body.length));

    expect(await store.headObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz" })).toMatchObject({ key: "backups/b1/b1.tar.gz" });
    expect(await store.headObject({ bucket: BUCKET, key: "backups/none" })).toBeUndefined();

    const got = await store.getObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz" });
    expect((await buffer(got.body)).equals(body)).toBe(true);
    expect((await buffer((await store.getObject({ bucket: BUCKET, key: "backups/empty" })).body)).length).toBe(0);

    const level = await listAll(store, { bucket: BUCKET, prefix: "backups/", delimiter: "/" });
    expect(level.flatMap((p) => p.commonPrefixes)).toEqual(["backups/b1/", "backups/b2/"]);
    expect(level.flatMap((p) => p.objects.map((o) => o.key))).toEqual(["backups/empty"]);
    const flat = await listAll(store, { bucket: BUCKET, prefix: "backups/b1/" });
    expect(flat.flatMap((p) => p.objects.map((o) => o.key))).toEqual(["backups/b1/b1.tar.gz", "backups/b1/velero-backup.json"]);

    for (const key of ["backups/b1/b1.tar.gz", "backups/b1/velero-backup.json", "backups/b2/velero-backup.json", "backups/empty"]) {
      await store.deleteObject({ bucket: BUCKET, key });
    }
    expect(await store.headObject({ bucket: BUCKET, key: "backups/b1/b1.tar.gz" })).toBeUndefined();
    const left = (await (await fetch(`${gcs.endpoint}/storage/v1/b/${BUCKET}/o`)).json()) as { items?: unknown[] };
    expect(left.items ?? []).toEqual([]);
  });

  it("got its access token from the local stub with a JWT signed by the service account's key", () => {
    expect(token.grants.length).toBeGreaterThan(0);
    for (const grant of token.grants) {
      expect(grant.grantType).toBe("urn:ietf:params:oauth:grant-type:jwt-bearer");
      expect(grant.signatureValid).toBe(true);
      expect(grant.header).toMatchObject({ alg: "RS256", kid: "stowage-test-key" });
      expect(grant.claims).toMatchObject({ iss: CLIENT_EMAIL, aud: token.url });
      expect(String(grant.claims.scope)).toContain("https://www.googleapis.com/auth/devstorage.read_write");
    }
  });

  it("signs a GET URL locally with the key (V2 scheme, verified here); fake-gcs-server serves its path", async () => {
    await store.putObject({ bucket: BUCKET, key: "backups/b3/velero-backup.json", body: Readable.from([Buffer.from('{"b":3}')]) });
    const before = Math.floor(Date.now() / 1000);
    const signed = await store.createSignedUrl({ bucket: BUCKET, key: "backups/b3/velero-backup.json", ttlSeconds: 600 });
    const url = new URL(signed.url);
    // The Go storage library always signs for the public host; the plugin has no option to change it.
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe(`https://storage.googleapis.com/${BUCKET}/backups/b3/velero-backup.json`);
    expect(url.searchParams.get("GoogleAccessId")).toBe(CLIENT_EMAIL);
    const expires = Number(url.searchParams.get("Expires"));
    expect(expires).toBeGreaterThanOrEqual(before + 600);
    expect(expires).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600);
    // V2 string to sign: method, MD5, content type, expiry, path.
    const signature = Buffer.from(url.searchParams.get("Signature") ?? "", "base64");
    expect(verify("RSA-SHA256", Buffer.from(`GET\n\n\n${String(expires)}\n${url.pathname}`), publicKey, signature)).toBe(true);
    expect(verify("RSA-SHA256", Buffer.from(`GET\n\n\n${String(expires + 1)}\n${url.pathname}`), publicKey, signature)).toBe(false);
    // fake-gcs-server does not check signatures; fetching the same path and query from it proves the
    // URL addresses the object, not that a real GCS would accept the signature.
    const res = await fetch(`${gcs.endpoint}${url.pathname}${url.search}`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('{"b":3}');
    await store.deleteObject({ bucket: BUCKET, key: "backups/b3/velero-backup.json" });
  });

  it("maps the Go plugin's errors: a missing key is NOT_FOUND with the Go origin in metadata", async () => {
    const missing = await store.getObject({ bucket: BUCKET, key: "backups/missing" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(StowageError);
    expect((missing as StowageError).code).toBe(Code.NotFound);
    expect((missing as StowageError).metadata.file).toMatch(/velero-plugin-for-gcp\/object_store\.go$/);
    // Its stderr (logrus JSON through hclog) reaches the host logger.
    expect(logs.lines.some((l) => l.plugin === "velero-plugin-for-gcp")).toBe(true);
  });
});
