/**
 * Test helpers of the Cloud Storage ObjectStore: fake-gcs-server with a bucket, a generated
 * service-account key file, and byte helpers.
 */
import { startFakeGcs, type FakeGcsServer } from "@stowage/test-servers";
import { createHash, createVerify, generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A service-account key generated for the test. */
export interface TestServiceAccount {
  /** Path of the key JSON file. */
  readonly file: string;
  /** The account's email. */
  readonly email: string;
  /** The public half, to verify signatures. */
  readonly publicKey: KeyObject;
  /** The PEM private key. */
  readonly privateKeyPem: string;
}

/** A fake-gcs-server and a key file. */
export interface GcsFixture {
  /** The server. */
  readonly server: FakeGcsServer;
  /** A temporary folder, removed by `stop`. */
  readonly dir: string;
  /** A service-account key for the plugin. */
  readonly account: TestServiceAccount;
  /** A plugin configuration pointing at the server with the key. */
  readonly config: Record<string, string>;
  /** Creates a bucket through the JSON API. */
  readonly createBucket: (name: string) => Promise<void>;
  /** Stops the server and removes the folder. */
  readonly stop: () => Promise<void>;
}

/** Generates an RSA key and writes a service-account key file whose token_uri is `tokenUri`. */
export async function writeServiceAccount(dir: string, name: string, tokenUri = "http://127.0.0.1:9/token"): Promise<TestServiceAccount> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const privateKeyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const email = `${name}@stowage-test.iam.gserviceaccount.com`;
  const file = join(dir, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      type: "service_account",
      project_id: "stowage-test",
      private_key_id: randomBytes(20).toString("hex"),
      private_key: privateKeyPem,
      client_email: email,
      client_id: "1234567890",
      token_uri: tokenUri,
    }),
  );
  return { file, email, publicKey, privateKeyPem };
}

/** Starts fake-gcs-server and writes a service-account key. */
export async function startGcsFixture(): Promise<GcsFixture> {
  const server = await startFakeGcs();
  const dir = await mkdtemp(join(tmpdir(), "stowage-gcs-test-"));
  const account = await writeServiceAccount(dir, "plugin");
  const createBucket = async (name: string): Promise<void> => {
    const response = await fetch(`${server.endpoint}/storage/v1/b?project=stowage-test`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name }),
    });
    if (!response.ok) throw new Error(`cannot create bucket ${name}: HTTP ${String(response.status)} ${await response.text()}`);
  };
  return {
    server,
    dir,
    account,
    config: { storeEndpoint: server.endpoint, credentialsFile: account.file },
    createBucket,
    stop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The JSON API's view of an object (out of band), or undefined when it does not exist. */
export async function oobMetadata(endpoint: string, bucket: string, key: string): Promise<Record<string, unknown> | undefined> {
  const response = await fetch(`${endpoint}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(key)}`);
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) throw new Error(`metadata of ${key}: HTTP ${String(response.status)}`);
  return (await response.json()) as Record<string, unknown>;
}

/** The object's bytes through the JSON API's media download (out of band). */
export async function oobDownload(endpoint: string, bucket: string, key: string): Promise<Buffer> {
  const response = await fetch(`${endpoint}/download/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(key)}?alt=media`);
  if (!response.ok) throw new Error(`download of ${key}: HTTP ${String(response.status)}`);
  return Buffer.from(await response.arrayBuffer());
}

/** Uploads an object with a JSON API media upload (out of band). */
export async function oobUpload(endpoint: string, bucket: string, key: string, data: Uint8Array, contentType = "application/octet-stream"): Promise<void> {
  const response = await fetch(`${endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=media&name=${encodeURIComponent(key)}`, {
    method: "POST",
    headers: { "content-type": contentType },
    body: new Blob([new Uint8Array(data)]),
  });
  if (!response.ok) throw new Error(`upload of ${key}: HTTP ${String(response.status)} ${await response.text()}`);
}

/** Deterministic pseudo-random bytes. */
export function bytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed * 2654435761;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Splits data into chunks of at most `size` bytes. */
export async function* chunks(data: Uint8Array, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, Math.min(data.length, i + size));
}

/**
 * Verifies a V4 signed URL (`GOOG4-RSA-SHA256`, signed header `host`, unsigned payload) with a public
 * key, rebuilding the canonical request from the URL. `@google-cloud/storage` signs the host name
 * without its port (Cloud Storage's own host has none), so the rebuilt request does too.
 */
export function verifyV4(url: string, method: string, publicKey: KeyObject): boolean {
  const parsed = new URL(url);
  const pairs = parsed.search.slice(1).split("&");
  const signature = pairs.find((p) => p.startsWith("X-Goog-Signature="))?.split("=")[1] ?? "";
  const canonicalQuery = pairs
    .filter((p) => !p.startsWith("X-Goog-Signature="))
    .sort()
    .join("&");
  const canonicalRequest = [method, parsed.pathname, canonicalQuery, `host:${parsed.hostname}\n`, "host", "UNSIGNED-PAYLOAD"].join("\n");
  const date = parsed.searchParams.get("X-Goog-Date") ?? "";
  const scope = (parsed.searchParams.get("X-Goog-Credential") ?? "").split("/").slice(1).join("/");
  const toSign = ["GOOG4-RSA-SHA256", date, scope, createHash("sha256").update(canonicalRequest).digest("hex")].join("\n");
  return createVerify("RSA-SHA256").update(toSign).verify(publicKey, Buffer.from(signature, "hex"));
}
