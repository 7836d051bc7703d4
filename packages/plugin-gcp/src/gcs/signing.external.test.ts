/**
 * URL signing without a private key, as with GKE Workload Identity: credentials from a metadata
 * server (a local stub reached through GCE_METADATA_HOST) and signatures from the IAM Credentials
 * signBlob API (a local stub at the configured signingEndpoint that signs with a test RSA key).
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { createSign, generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GcsObjectStore } from "./gcs-object-store.js";
import { bytes, chunks, oobMetadata, startGcsFixture, verifyV4, type GcsFixture } from "../../test/support/gcs.js";
import { buffer } from "node:stream/consumers";

const WI_EMAIL = "velero@wi-project.iam.gserviceaccount.com";
const TOKEN = "metadata-access-token";

interface SignBlobCall {
  readonly email: string;
  readonly authorization: string | undefined;
  readonly payload: string;
}

/** The metadata server and the IAM Credentials API, in one loopback HTTP server. */
class GoogleStub {
  readonly calls: SignBlobCall[] = [];
  readonly tokenRequests: string[] = [];
  readonly keys = generateKeyPairSync("rsa", { modulusLength: 2048 });
  #server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      void this.#handle(req, res);
    });
    await new Promise<void>((resolve) => this.#server?.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${String((this.#server.address() as AddressInfo).port)}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const part of req) parts.push(part as Buffer);
    const body = Buffer.concat(parts).toString();
    const url = new URL(req.url ?? "/", this.url);
    if (url.pathname.startsWith("/computeMetadata/v1/")) {
      if (req.headers["metadata-flavor"] !== "Google") {
        res.writeHead(403).end("missing Metadata-Flavor header");
        return;
      }
      const path = url.pathname.slice("/computeMetadata/v1/".length);
      res.setHeader("Metadata-Flavor", "Google");
      if (path === "instance/service-accounts/default/token") {
        this.tokenRequests.push(path);
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ access_token: TOKEN, expires_in: 3599, token_type: "Bearer" }));
      } else if (path === "instance/service-accounts/default/email") {
        res.writeHead(200, { "content-type": "application/text" }).end(WI_EMAIL);
      } else if (path === "project/project-id") {
        res.writeHead(200, { "content-type": "application/text" }).end("wi-project");
      } else if (path === "universe/universe-domain") {
        res.writeHead(200, { "content-type": "application/text" }).end("googleapis.com");
      } else {
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      }
      return;
    }
    const match = /^\/v1\/projects\/-\/serviceAccounts\/([^/]+):signBlob$/.exec(url.pathname);
    if (req.method === "POST" && match !== null) {
      const email = decodeURIComponent(match[1] ?? "");
      const payload = (JSON.parse(body) as { payload?: string }).payload ?? "";
      this.calls.push({ email, authorization: req.headers.authorization, payload });
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ error: { code: 401, message: "Request had invalid authentication credentials.", status: "UNAUTHENTICATED" } }));
        return;
      }
      if (email.startsWith("denied@")) {
        res
          .writeHead(403, { "content-type": "application/json" })
          .end(JSON.stringify({ error: { code: 403, message: "Permission 'iam.serviceAccounts.signBlob' denied on resource (or it may not exist).", status: "PERMISSION_DENIED" } }));
        return;
      }
      const signedBlob = createSign("RSA-SHA256").update(Buffer.from(payload, "base64")).sign(this.keys.privateKey, "base64");
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keyId: "0123456789abcdef", signedBlob }));
      return;
    }
    res.writeHead(404).end();
  }
}

async function expectStowageError(promise: Promise<unknown>): Promise<StowageError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected a StowageError");
}

describe("signed URLs through the IAM signBlob API with metadata-server credentials", () => {
  let fx: GcsFixture;
  let stub: GoogleStub;
  const saved: Record<string, string | undefined> = {};

  beforeAll(async () => {
    fx = await startGcsFixture();
    await fx.createBucket("wi");
    stub = new GoogleStub();
    await stub.start();
    for (const name of ["GCE_METADATA_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "METADATA_SERVER_DETECTION", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG"]) saved[name] = process.env[name];
    // No gcloud configuration or ADC file of this machine takes part; the project comes from the
    // environment (otherwise google-auth-library asks a gcloud executable first).
    process.env.CLOUDSDK_CONFIG = fx.dir;
    process.env.GOOGLE_CLOUD_PROJECT = "wi-project";
    process.env.GCE_METADATA_HOST = new URL(stub.url).host;
    delete process.env.GOOGLE_APPLICATION_CREDENTIALS;
    process.env.METADATA_SERVER_DETECTION = "assume-present";
  }, 60_000);

  afterAll(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) Reflect.deleteProperty(process.env, name);
      else process.env[name] = value;
    }
    await stub.stop();
    await fx.stop();
  });

  it("signs as the metadata server's account through the configured signBlob endpoint; the URL verifies and works", async () => {
    const store = new GcsObjectStore();
    await store.init({ storeEndpoint: fx.server.endpoint, signingEndpoint: stub.url });
    // Data calls work with the metadata server's token.
    await store.putObject({ bucket: "wi", key: "obj", body: chunks(bytes(64)) });
    expect(await oobMetadata(fx.server.endpoint, "wi", "obj")).toBeDefined();
    expect(stub.tokenRequests.length).toBeGreaterThan(0);

    const signed = await store.createSignedUrl({ bucket: "wi", key: "obj", ttlSeconds: 300 });
    const call = stub.calls.at(-1);
    expect(call?.email).toBe(WI_EMAIL);
    expect(call?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(Buffer.from(call?.payload ?? "", "base64").toString().startsWith("GOOG4-RSA-SHA256\n")).toBe(true);
    const url = new URL(signed.url);
    expect(url.searchParams.get("X-Goog-Credential")?.startsWith(`${WI_EMAIL}/`)).toBe(true);
    expect(verifyV4(signed.url, "GET", stub.keys.publicKey)).toBe(true);
    const response = await fetch(signed.url);
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes(64))).toBe(true);
    const got = await store.getObject({ bucket: "wi", key: "obj" });
    expect((await buffer(got.body)).equals(bytes(64))).toBe(true);
  });

  it("signs as serviceAccount when it is set", async () => {
    const store = new GcsObjectStore();
    await store.init({ storeEndpoint: fx.server.endpoint, signingEndpoint: stub.url, serviceAccount: "signer@other.iam.gserviceaccount.com" });
    const signed = await store.createSignedUrl({ bucket: "wi", key: "obj", method: "PUT", ttlSeconds: 60 });
    expect(stub.calls.at(-1)?.email).toBe("signer@other.iam.gserviceaccount.com");
    expect(new URL(signed.url).searchParams.get("X-Goog-Credential")?.startsWith("signer@other.iam.gserviceaccount.com/")).toBe(true);
    expect(verifyV4(signed.url, "PUT", stub.keys.publicKey)).toBe(true);
  });

  it("reports a refused signBlob as PERMISSION_DENIED naming the permission to grant", async () => {
    const store = new GcsObjectStore();
    await store.init({ storeEndpoint: fx.server.endpoint, signingEndpoint: stub.url, serviceAccount: "denied@other.iam.gserviceaccount.com" });
    const error = await expectStowageError(store.createSignedUrl({ bucket: "wi", key: "obj", ttlSeconds: 60 }));
    expect([error.code, error.reason]).toEqual([Code.PermissionDenied, Reason.AccessDenied]);
    expect(error.message).toContain("iam.serviceAccounts.signBlob");
    expect(error.message).toContain("denied@other.iam.gserviceaccount.com");
  });

  it("plans direct transfers with URLs signed through signBlob, and declines them when signBlob refuses", async () => {
    const store = new GcsObjectStore();
    await store.init({ storeEndpoint: fx.server.endpoint, signingEndpoint: stub.url });
    await store.putObject({ bucket: "wi", key: "direct", body: chunks(bytes(64)) });
    const plan = await store.directTransfer.planGet({ bucket: "wi", key: "direct" });
    if ("declined" in plan || plan.request === undefined) throw new Error("the read was not planned");
    expect(verifyV4(plan.request.url, "GET", stub.keys.publicKey)).toBe(true);
    const response = await fetch(plan.request.url, { headers: { range: "bytes=0-63" } });
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes(64))).toBe(true);

    const denied = new GcsObjectStore();
    await denied.init({ storeEndpoint: fx.server.endpoint, signingEndpoint: stub.url, serviceAccount: "denied@other.iam.gserviceaccount.com" });
    const refusals = [await denied.directTransfer.planGet({ bucket: "wi", key: "direct" }), await denied.directTransfer.beginPut({ bucket: "wi", key: "direct-put", size: 10 })];
    for (const answer of refusals) expect("declined" in answer && answer.declined).toContain("iam.serviceAccounts.signBlob");
  });

  it("reports an unreachable signBlob endpoint as UNAVAILABLE", async () => {
    const store = new GcsObjectStore();
    await store.init({ storeEndpoint: fx.server.endpoint, signingEndpoint: "http://127.0.0.1:9", serviceAccount: WI_EMAIL });
    const error = await expectStowageError(store.createSignedUrl({ bucket: "wi", key: "obj", ttlSeconds: 60 }));
    expect([error.code, error.reason]).toEqual([Code.Unavailable, Reason.BackendUnavailable]);
  }, 60_000);
});
