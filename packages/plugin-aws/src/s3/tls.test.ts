import { Code, StowageError } from "@stowage/sdk";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3ObjectStore } from "./s3-object-store.js";

// An HTTPS stub S3 endpoint with a self-signed certificate for 127.0.0.1 (made with openssl).
describe("TLS settings (self-signed HTTPS stub)", () => {
  let dir: string;
  let server: Server;
  let endpoint: string;
  let pem: string;
  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = "test";
    process.env.AWS_SECRET_ACCESS_KEY = "testtest";
    dir = mkdtempSync(join(tmpdir(), "stowage-aws-tls-"));
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    pem = readFileSync(join(dir, "cert.pem"), "utf8");
    server = createServer({ key: readFileSync(join(dir, "key.pem")), cert: pem }, (req, res) => {
      req.resume();
      res.writeHead(200, { "content-length": "3", etag: '"e"', "content-type": "text/plain" }).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    endpoint = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const base = () => ({ s3Url: endpoint, region: "us-east-1", s3ForcePathStyle: "true" });

  it("refuses an untrusted certificate by default", async () => {
    const store = new S3ObjectStore();
    await store.init(base());
    const error = await store.headObject({ bucket: "b", key: "k" }).catch((e: unknown) => e as StowageError);
    expect(error).toBeInstanceOf(StowageError);
    expect((error as StowageError).code).toBe(Code.FailedPrecondition);
    expect((error as StowageError).message).toContain("caCert");
    store.close();
  }, 30_000);

  it("trusts caCert given as PEM text or as a file", async () => {
    for (const caCert of [pem, join(dir, "cert.pem")]) {
      const store = new S3ObjectStore();
      await store.init({ ...base(), caCert });
      expect((await store.headObject({ bucket: "b", key: "k" }))?.size).toBe(3);
      store.close();
    }
  });

  it("skips verification with insecureSkipTLSVerify", async () => {
    const store = new S3ObjectStore();
    await store.init({ ...base(), insecureSkipTLSVerify: "true" });
    expect((await store.headObject({ bucket: "b", key: "k" }))?.size).toBe(3);
    store.close();
  });
});
