/**
 * The conformance kit against the built `stowage-plugin-ibm-cos` executable, through the real host,
 * with MinIO (site region us-geo) standing in for IBM COS and HMAC keys in IBM's JSON credentials
 * format. Run `pnpm run build` first; skipped when `dist/main.js` is missing.
 */
import { registerConformanceSuites } from "@stowage/conformance/vitest";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { Client } from "minio";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe } from "vitest";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
let minio: MinioServer | undefined;
let dir: string | undefined;

describe("conformance", () => {
  afterAll(async () => {
    await minio?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  registerConformanceSuites({
    plugin: { command: process.execPath, args: [MAIN] },
    kind: "object-store",
    // MinIO (not the plugin) refuses keys with empty segments (a//b), trailing slashes and
    // segments over 255 bytes, and cannot hold both "a" and "a/b".
    knownFailing: ["OS-KEYS-PATH-SEGMENTS", "OS-KEY-TOO-LONG", "OS-LIST-PREFIX"],
    config: async () => {
      minio = await startMinio({ region: "us-geo" });
      const url = new URL(minio.endpoint);
      const oob = new Client({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey });
      await oob.makeBucket("conformance", minio.region);
      // Object Lock (OS-LOCK-*): a bucket of its own, created with Object Lock, without default retention.
      await oob.makeBucket("conformance-locked", minio.region, { ObjectLocking: true });
      dir = await mkdtemp(join(tmpdir(), "stowage-ibm-conformance-"));
      const file = join(dir, "cos_credentials");
      await writeFile(file, JSON.stringify({ cos_hmac_keys: { access_key_id: minio.accessKey, secret_access_key: minio.secretKey } }));
      return {
        largeObjectMiB: 24,
        objectStore: {
          plugin: "stowage.io/ibm-cos",
          config: { region: "us-geo", s3Url: minio.endpoint, s3ForcePathStyle: "true", credentialsFile: file, partSize: "5MiB" },
          bucket: "conformance",
          lockBucket: "conformance-locked",
        },
      };
    },
  });
});
