import { Code, Reason } from "@stowage/sdk";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { Client } from "minio";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IBM_COS_CONFIG_KEYS } from "./config.js";
import { IAM_APIKEY_GRANT_TYPE, IamTokenManager } from "./iam.js";
import { createIbmCosObjectStore } from "./plugins.js";
import { rejection } from "@stowage/sdk/testing";

async function* body(text: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of req) parts.push(c as Buffer);
  return Buffer.concat(parts).toString();
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A stub of IBM's IAM token endpoint: token N expires after `lifetime` seconds. */
function stubIam(lifetime: number): { server: Server; requests: URLSearchParams[] } {
  const requests: URLSearchParams[] = [];
  const server = createServer((req, res) => {
    void readBody(req).then((text) => {
      const form = new URLSearchParams(text);
      requests.push(form);
      if (form.get("apikey") !== "good-key" || form.get("grant_type") !== IAM_APIKEY_GRANT_TYPE) {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ errorCode: "BXNIM0415E" }));
        return;
      }
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ access_token: `token-${requests.length}`, token_type: "Bearer", expires_in: lifetime, expiration: Math.floor(Date.now() / 1000) + lifetime }));
    });
  });
  return { server, requests };
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "stowage-ibm-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("config", () => {
  it("rejects unknown keys listing the valid ones, and bad endpoint types", async () => {
    const unknown = await rejection(createIbmCosObjectStore().init({ region: "us-geo", endpoint: "x" }));
    expect(unknown.reason).toBe(Reason.InvalidConfig);
    for (const key of IBM_COS_CONFIG_KEYS) expect(unknown.metadata.valid_keys).toContain(key.name);
    const type = await rejection(createIbmCosObjectStore().init({ region: "us-geo", endpointType: "secret" }));
    expect(type.reason).toBe(Reason.InvalidConfig);
    const none = await rejection(createIbmCosObjectStore().init({}));
    expect(none.reason).toBe(Reason.InvalidConfig);
  });
});

describe("IAM token manager (stub IAM)", () => {
  const iam = stubIam(100);
  let endpoint: string;
  beforeAll(async () => {
    endpoint = `${await listen(iam.server)}/identity/token`;
  });
  afterAll(() => new Promise<void>((resolve) => iam.server.close(() => resolve())));

  it("exchanges the API key and refreshes at 80% of the lifetime", async () => {
    let now = 1_000_000;
    const tokens = new IamTokenManager({ apiKey: "good-key", endpoint, now: () => now });
    expect(await tokens.token()).toBe("token-1");
    expect(iam.requests[0]?.get("grant_type")).toBe(IAM_APIKEY_GRANT_TYPE);
    now += 79_000;
    expect(await tokens.token()).toBe("token-1");
    now += 2_000;
    expect(await tokens.token()).toBe("token-2");
  });

  it("fails a wrong API key with UNAUTHENTICATED", async () => {
    const error = await rejection(new IamTokenManager({ apiKey: "bad", endpoint }).token());
    expect(error.code).toBe(Code.Unauthenticated);
  });
});

describe("IAM bearer tokens on S3 requests (stub IAM + stub COS)", () => {
  const iam = stubIam(1);
  const seen: { method: string; url: string; auth: string; instance: string }[] = [];
  const cos = createServer((req, res) => {
    void readBody(req).then(() => {
      seen.push({ method: req.method ?? "", url: (req.url ?? "").split("?")[0] ?? "", auth: req.headers.authorization ?? "", instance: String(req.headers["ibm-service-instance-id"] ?? "") });
      if (req.method === "HEAD") res.writeHead(200, { "content-length": "5", etag: '"abc"', "content-type": "text/plain" }).end();
      else res.writeHead(200, { etag: '"abc"' }).end();
    });
  });
  let iamUrl: string;
  let cosUrl: string;
  beforeAll(async () => {
    iamUrl = `${await listen(iam.server)}/identity/token`;
    cosUrl = await listen(cos);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => iam.server.close(() => resolve()));
    await new Promise<void>((resolve) => cos.close(() => resolve()));
  });

  it("sends Authorization: Bearer with a refreshed token, and refuses signed URLs", async () => {
    const store = createIbmCosObjectStore();
    await store.init({ s3Url: cosUrl, s3ForcePathStyle: "true", apiKey: "good-key", iamEndpoint: iamUrl, serviceInstanceId: "crn:v1:instance" });
    await store.putObject({ bucket: "b", key: "k", body: body("hello") });
    expect(seen.at(-1)).toMatchObject({ method: "PUT", url: "/b/k", auth: "Bearer token-1", instance: "crn:v1:instance" });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const head = await store.headObject({ bucket: "b", key: "k" });
    expect(head?.size).toBe(5);
    expect(seen.at(-1)?.auth).toBe("Bearer token-2");
    const signed = await rejection(store.createSignedUrl({ bucket: "b", key: "k", ttlSeconds: 60 }));
    expect(signed.code).toBe(Code.FailedPrecondition);
    store.close();
  });

  it("fails init when the API key is refused", async () => {
    const error = await rejection(createIbmCosObjectStore().init({ s3Url: cosUrl, apiKey: "bad", iamEndpoint: iamUrl }));
    expect(error.code).toBe(Code.Unauthenticated);
  });
});

describe("HMAC keys against MinIO (site region us-geo, like an IBM COS cross-region bucket)", () => {
  let minio: MinioServer;
  let oob: Client;
  beforeAll(async () => {
    minio = await startMinio({ region: "us-geo" });
    const url = new URL(minio.endpoint);
    oob = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey });
    await oob.makeBucket("cos", minio.region);
  }, 60_000);
  afterAll(async () => {
    await minio.stop();
  });

  it("round-trips objects and signed URLs with IBM JSON service credentials (cos_hmac_keys)", async () => {
    const file = join(tmp, "cos_credentials");
    await writeFile(
      file,
      JSON.stringify({ apikey: "unused", resource_instance_id: "crn:x", cos_hmac_keys: { access_key_id: minio.accessKey, secret_access_key: minio.secretKey } }),
    );
    const store = createIbmCosObjectStore();
    await store.init({ region: "us-geo", s3Url: minio.endpoint, s3ForcePathStyle: "true", credentialsFile: file });
    await store.putObject({ bucket: "cos", key: "a/b.txt", body: body("ibm"), contentType: "text/plain", metadata: { m: "1" } });
    const stat = await oob.statObject("cos", "a/b.txt");
    expect(stat.metaData).toMatchObject({ "content-type": "text/plain", m: "1" });
    const url = await store.createSignedUrl({ bucket: "cos", key: "a/b.txt", ttlSeconds: 60 });
    expect(await (await fetch(url.url)).text()).toBe("ibm");
    store.close();
  });

  it("works with an AWS-style INI credentials file, as Velero's IBM guide configures it", async () => {
    const file = join(tmp, "cloud");
    await writeFile(file, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
    const store = createIbmCosObjectStore();
    await store.init({ region: "us-geo", s3Url: minio.endpoint, s3ForcePathStyle: "true", credentialsFile: file, checksumAlgorithm: "" });
    await store.putObject({ bucket: "cos", key: "ini", body: body("x") });
    expect((await store.headObject({ bucket: "cos", key: "ini" }))?.size).toBe(1);
    store.close();
  });
});
