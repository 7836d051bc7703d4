/**
 * Entra ID (useAAD) against Azurite over HTTPS with a self-signed certificate and `--oauth basic`:
 * bearer-token data calls, `caCert` trust, and user delegation SAS URLs.
 */
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { Code, StowageError } from "@stowage/sdk";
import { makeSelfSignedCertificate } from "@stowage/test-servers";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:https";
import { join } from "node:path";
import { BlobServiceClient } from "@azure/storage-blob";
import { RestError } from "@azure/core-rest-pipeline";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { bytes, chunks, startAzuriteFixture, type AzuriteFixture } from "../../test/support/blob-fixture.js";
import { BlobObjectStore } from "./blob-object-store.js";
import { buffer } from "node:stream/consumers";
import { sha256Hex } from "@stowage/sdk/testing";

const MiB = 1024 * 1024;
const CONTAINER = "entra";
const TENANT = "00000000-0000-0000-0000-00000000a11d";

/**
 * A token credential whose tokens Azurite's `--oauth basic` accepts: an unsigned JWT with the
 * storage audience, an Entra ID issuer and a valid lifetime (Azurite does not check signatures).
 */
class FakeEntraCredential implements TokenCredential {
  readonly scopes: string[] = [];
  getToken(scopes: string | string[]): Promise<AccessToken> {
    this.scopes.push(...(Array.isArray(scopes) ? scopes : [scopes]));
    return Promise.resolve({ token: fakeJwt("https://storage.azure.com"), expiresOnTimestamp: Date.now() + 3600_000 });
  }
}

/** GET with only the given CA trusted (the global fetch cannot take a CA per call). */
function httpsGet(url: string, ca: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca }, (res) => {
      buffer(res).then((body) => {
        resolve({ status: res.statusCode ?? 0, body });
      }, reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Sends a request with exactly `headers` and `body`, with only the given CA trusted. */
function httpsSend(url: string, ca: string, method: string, headers: Record<string, string>, body?: Uint8Array): Promise<{ status: number; etag: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method, headers: { ...headers, ...(body === undefined ? {} : { "content-length": String(body.length) }) } }, (res) => {
      buffer(res).then((data) => {
        resolve({ status: res.statusCode ?? 0, etag: typeof res.headers.etag === "string" ? res.headers.etag : "", body: data });
      }, reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A token request the fake Entra ID endpoint received. */
interface TokenRequest {
  readonly tenant: string;
  readonly form: URLSearchParams;
}

/**
 * A minimal Entra ID authority over HTTPS (its own self-signed certificate): the OpenID metadata
 * MSAL reads and a v2.0 token endpoint. It accepts the client secret `s3cr3t` or any client
 * assertion equal to `federated-token`, and issues tokens Azurite's `--oauth basic` accepts.
 */
async function startFakeAuthority(dir: string): Promise<{ url: string; caPem: string; requests: TokenRequest[]; close: () => Promise<void> }> {
  const cert = await makeSelfSignedCertificate(dir);
  const requests: TokenRequest[] = [];
  let base = "";
  const server: Server = createServer({ cert: cert.certPem, key: await readFile(cert.keyPath, "utf8") }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = new URL(req.url ?? "/", base).pathname;
      const tenant = path.split("/")[1] ?? "";
      const json = (status: number, body: object): void => {
        res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      };
      if (path.endsWith("/.well-known/openid-configuration")) {
        json(200, {
          token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
          authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
          issuer: `${base}/${tenant}/v2.0`,
          jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
          token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt"],
        });
        return;
      }
      if (path.endsWith("/oauth2/v2.0/token") && req.method === "POST") {
        const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
        requests.push({ tenant, form });
        if (form.get("client_secret") !== "s3cr3t" && form.get("client_assertion") !== "federated-token") {
          json(401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." });
          return;
        }
        json(200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: fakeJwt("https://storage.azure.com") });
        return;
      }
      json(404, { error: "not_found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  base = `https://127.0.0.1:${String(typeof address === "object" && address !== null ? address.port : 0)}`;
  return {
    url: `${base}/`,
    caPem: cert.certPem,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** An unsigned JWT as Azurite's `--oauth basic` checks it (issuer prefix, audience, lifetime). */
function fakeJwt(audience: string): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: object): string => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ aud: audience, iss: `https://sts.windows.net/${TENANT}/`, tid: TENANT, oid: "fake-object-id", nbf: now - 60, iat: now - 60, exp: now + 3600 })}.`;
}

let azurite: AzuriteFixture;
let credential: FakeEntraCredential;
let store: BlobObjectStore;
let config: Record<string, string>;

beforeAll(async () => {
  azurite = await startAzuriteFixture([CONTAINER], { https: true, oauth: "basic" });
  credential = new FakeEntraCredential();
  config = {
    storageAccount: azurite.server.accountName,
    storageAccountURI: azurite.server.blobEndpoint,
    useAAD: "true",
    caCert: azurite.server.caCertPath ?? "",
    blockSizeInBytes: String(MiB),
  };
  store = new BlobObjectStore({ configure: { tokenCredential: credential } });
  await store.init(config);
}, 60_000);

afterAll(async () => {
  await azurite.stop();
});

describe("Entra ID over HTTPS", () => {
  it("uses the endpoint over HTTPS with bearer tokens for the storage audience", async () => {
    expect(azurite.server.blobEndpoint.startsWith("https://")).toBe(true);
    const data = bytes(3 * MiB + 5);
    await store.putObject({ bucket: CONTAINER, key: "aad/blob", body: chunks(data), size: data.length, metadata: { "backup-name": "aad" } });
    expect(sha256Hex(await buffer((await store.getObject({ bucket: CONTAINER, key: "aad/blob" })).body))).toBe(sha256Hex(data));
    expect((await store.headObject({ bucket: CONTAINER, key: "aad/blob" }))?.metadata).toEqual({ "backup-name": "aad" });
    const keys: string[] = [];
    for await (const page of store.listObjects({ bucket: CONTAINER, prefix: "aad/" })) keys.push(...page.objects.map((o) => o.key));
    expect(keys).toEqual(["aad/blob"]);
    expect(credential.scopes).toContain("https://storage.azure.com/.default");
  });

  it("signs GET URLs as user delegation SAS that a plain HTTPS client can use", async () => {
    await store.putObject({ bucket: CONTAINER, key: "aad/signed", body: chunks(Buffer.from("delegated")) });
    const signed = await store.createSignedUrl({ bucket: CONTAINER, key: "aad/signed", ttlSeconds: 120 });
    const params = new URL(signed.url).searchParams;
    // skoid/sktid/skt… mark a user delegation SAS; a service SAS has none of them.
    expect(params.get("skoid")).not.toBeNull();
    expect(params.get("sktid")).toBe(TENANT);
    expect(params.get("spr")).toBe("https");
    const got = await httpsGet(signed.url, azurite.server.caCertPem ?? "");
    expect(`${String(got.status)} ${got.status === 200 ? "" : got.body.toString()}`).toBe("200 ");
    expect(got.body.toString()).toBe("delegated");
  });

  it("signs direct transfers (contract 5.8) with user delegation SAS", async () => {
    const ca = azurite.server.caCertPem ?? "";
    const data = bytes(MiB + MiB / 2);
    const sha256 = createHash("sha256").update(data).digest();
    const plan = await store.directTransfer.beginPut({ bucket: CONTAINER, key: "aad/direct", size: data.length, sha256, metadata: { via: "direct" } });
    if ("declined" in plan) throw new Error(plan.declined);
    const parts = [];
    for (const [index, offset] of [0, MiB].entries()) {
      const part = data.subarray(offset, Math.min(offset + MiB, data.length));
      const signed = await store.directTransfer.signPart({
        bucket: CONTAINER,
        key: "aad/direct",
        uploadId: plan.uploadId,
        partNumber: index + 1,
        offset,
        size: part.length,
        checksum: createHash("md5").update(part).digest(),
      });
      const params = new URL(signed.request.url).searchParams;
      expect([params.get("sktid"), params.get("sp"), params.get("spr")]).toEqual([TENANT, "w", "https"]);
      const sent = await httpsSend(signed.request.url, ca, signed.request.method, signed.request.headers, part);
      expect(sent.status).toBe(201);
      parts.push({ partNumber: index + 1, size: part.length, etag: sent.etag, checksum: createHash("md5").update(part).digest() });
    }
    const put = await store.directTransfer.completePut({ bucket: CONTAINER, key: "aad/direct", uploadId: plan.uploadId, parts, size: data.length, sha256 });
    expect(put.size).toBe(data.length);
    const read = await store.directTransfer.planGet({ bucket: CONTAINER, key: "aad/direct", range: { offset: 10, length: 20 } });
    if ("declined" in read) throw new Error(read.declined);
    expect(read.object.metadata).toEqual({ via: "direct" });
    const request = read.request!;
    expect(new URL(request.url).searchParams.get("skoid")).not.toBeNull();
    const got = await httpsSend(request.url, ca, "GET", { ...request.headers, range: "bytes=10-29" });
    expect(got.status).toBe(206);
    expect(got.body.equals(data.subarray(10, 30))).toBe(true);
  });

  it("declines direct transfers when the identity may not get a user delegation key", async () => {
    const fresh = new BlobObjectStore({ configure: { tokenCredential: credential } });
    await fresh.init(config);
    const spy = vi.spyOn(BlobServiceClient.prototype, "getUserDelegationKey").mockRejectedValue(new RestError("This request is not authorized", { statusCode: 403, code: "AuthorizationPermissionMismatch" }));
    try {
      const put = await fresh.directTransfer.beginPut({ bucket: CONTAINER, key: "aad/declined", size: 1 });
      expect("declined" in put && put.declined).toContain("Storage Blob Delegator");
      const get = await fresh.directTransfer.planGet({ bucket: CONTAINER, key: "aad/direct" });
      expect("declined" in get && get.declined).toContain("user delegation key");
    } finally {
      spy.mockRestore();
      fresh.close();
    }
  });

  it("reuses one user delegation key for URLs within its validity", async () => {
    const fresh = new BlobObjectStore({ configure: { tokenCredential: credential } });
    await fresh.init(config);
    const spy = vi.spyOn(BlobServiceClient.prototype, "getUserDelegationKey");
    try {
      const urls = [];
      for (const ttl of [60, 600, 1800]) urls.push((await fresh.createSignedUrl({ bucket: CONTAINER, key: "aad/signed", ttlSeconds: ttl })).url);
      expect(spy).toHaveBeenCalledTimes(1);
      // A URL that outlives the cached key needs a new one.
      urls.push((await fresh.createSignedUrl({ bucket: CONTAINER, key: "aad/signed", ttlSeconds: 2 * 24 * 3600 })).url);
      expect(spy).toHaveBeenCalledTimes(2);
      for (const url of urls) expect((await httpsGet(url, azurite.server.caCertPem ?? "")).body.toString()).toBe("delegated");
    } finally {
      spy.mockRestore();
    }
  });

  it("without caCert the self-signed certificate is refused with a hint to set caCert", async () => {
    const untrusted = Object.fromEntries(Object.entries(config).filter(([key]) => key !== "caCert"));
    const other = new BlobObjectStore({ configure: { tokenCredential: credential, env: {} } });
    await other.init({ ...untrusted, maxRetries: "0" });
    try {
      await other.headObject({ bucket: CONTAINER, key: "aad/blob" });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.FailedPrecondition);
      expect((error as StowageError).message).toContain("caCert");
    }
  });

  it("a token Azurite refuses surfaces as an authentication error", async () => {
    const expired: TokenCredential = {
      getToken: () => Promise.resolve({ token: fakeJwt("https://example.com"), expiresOnTimestamp: Date.now() + 3600_000 }),
    };
    const other = new BlobObjectStore({ configure: { tokenCredential: expired } });
    await other.init(config);
    try {
      await other.headObject({ bucket: CONTAINER, key: "aad/blob" });
      expect.unreachable();
    } catch (error) {
      expect([Code.Unauthenticated, Code.PermissionDenied]).toContain((error as StowageError).code);
    }
  });
});

describe("Entra ID credentials from the credentials file, against a fake authority over HTTPS", () => {
  let authority: Awaited<ReturnType<typeof startFakeAuthority>>;
  let bundle: string;

  beforeAll(async () => {
    authority = await startFakeAuthority(azurite.dir);
    // caCert trusts both self-signed certificates: Azurite's and the authority's.
    bundle = join(azurite.dir, "bundle.pem");
    await writeFile(bundle, `${azurite.server.caCertPem ?? ""}\n${authority.caPem}`);
  });

  afterAll(async () => {
    await authority.close();
  });

  it("a service principal (AZURE_CLIENT_SECRET) gets a storage token and works end to end", async () => {
    const file = await azurite.credentialsFile({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: "client-1", AZURE_CLIENT_SECRET: "s3cr3t" });
    const sp = new BlobObjectStore({ configure: { env: {} } });
    await sp.init({ ...config, caCert: bundle, credentialsFile: file, activeDirectoryAuthorityURI: authority.url });
    await sp.putObject({ bucket: CONTAINER, key: "sp/blob", body: chunks(Buffer.from("service principal")) });
    expect((await buffer((await sp.getObject({ bucket: CONTAINER, key: "sp/blob" })).body)).toString()).toBe("service principal");
    const signed = await sp.createSignedUrl({ bucket: CONTAINER, key: "sp/blob", ttlSeconds: 60 });
    expect((await httpsGet(signed.url, azurite.server.caCertPem ?? "")).body.toString()).toBe("service principal");
    const last = authority.requests.at(-1);
    expect(last?.tenant).toBe(TENANT);
    expect(last?.form.get("client_id")).toBe("client-1");
    expect(last?.form.get("scope")).toContain("https://storage.azure.com/.default");
  });

  it("workload identity (AZURE_FEDERATED_TOKEN_FILE) exchanges the federated token", async () => {
    const tokenFile = join(azurite.dir, "federated-token");
    await writeFile(tokenFile, "federated-token");
    const file = await azurite.credentialsFile({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: "client-wi" });
    const wi = new BlobObjectStore({ configure: { env: { AZURE_FEDERATED_TOKEN_FILE: tokenFile } } });
    await wi.init({ ...config, caCert: bundle, credentialsFile: file, activeDirectoryAuthorityURI: authority.url });
    expect(await wi.headObject({ bucket: CONTAINER, key: "sp/blob" })).toBeDefined();
    const last = authority.requests.at(-1);
    expect(last?.form.get("client_id")).toBe("client-wi");
    expect(last?.form.get("client_assertion")).toBe("federated-token");
  });

  it("a wrong client secret fails the call with UNAUTHENTICATED", async () => {
    const file = await azurite.credentialsFile({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: "client-1", AZURE_CLIENT_SECRET: "wrong" });
    const bad = new BlobObjectStore({ configure: { env: {} } });
    await bad.init({ ...config, caCert: bundle, credentialsFile: file, activeDirectoryAuthorityURI: authority.url, maxRetries: "0" });
    try {
      await bad.headObject({ bucket: CONTAINER, key: "sp/blob" });
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).code).toBe(Code.Unauthenticated);
    }
  });
});
