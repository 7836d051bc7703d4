/**
 * Test helpers: a MinIO server per test file and an independent S3 client (the `minio` npm
 * package) to check the store out of band.
 */
import { startMinio, type MinioOptions, type MinioServer } from "@stowage/test-servers";
import { Client } from "minio";
import { randomBytes } from "node:crypto";
import { Agent } from "node:https";

/** A started MinIO with an out-of-band client. */
export interface MinioFixture {
  readonly server: MinioServer;
  readonly oob: Client;
  /** Config keys for the AWS plugin pointing at this server. */
  readonly config: Record<string, string>;
}

/**
 * Starts MinIO and returns the out-of-band client and plugin config. With `tls`, both trust the
 * server's self-signed certificate (the plugin through `caCert`).
 */
export async function startMinioFixture(options: MinioOptions = {}): Promise<MinioFixture> {
  const server = await startMinio(options);
  const url = new URL(server.endpoint);
  const ca = server.caCert;
  const oob = new Client({
    endPoint: url.hostname,
    port: Number(url.port),
    useSSL: ca !== undefined,
    ...(ca === undefined ? {} : { transportAgent: new Agent({ ca, keepAlive: true }) }),
    accessKey: server.accessKey,
    secretKey: server.secretKey,
    region: server.region,
  });
  process.env.AWS_ACCESS_KEY_ID = server.accessKey;
  process.env.AWS_SECRET_ACCESS_KEY = server.secretKey;
  return { server, oob, config: { s3Url: server.endpoint, region: server.region, s3ForcePathStyle: "true", ...(ca === undefined ? {} : { caCert: ca }) } };
}

/** Random bytes. */
export function bytes(size: number): Buffer {
  return randomBytes(size);
}

/** Yields `data` in chunks of `chunk` bytes. */
export async function* chunks(data: Buffer, chunk = 1024 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
}

/**
 * The incomplete multipart uploads in a bucket, or of one key. After a restart MinIO lists an
 * upload only when asked for its object's exact key. An upload aborted while the client lists its
 * parts makes the listing start again.
 */
export async function incompleteUploads(oob: Client, bucket: string, key = ""): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const keys: string[] = [];
    try {
      for await (const item of oob.listIncompleteUploads(bucket, key, true) as AsyncIterable<{ key: string }>) keys.push(item.key);
      return keys;
    } catch (error) {
      if ((error as { code?: unknown }).code !== "NoSuchUpload" || attempt >= 5) throw error;
    }
  }
}

/** Whether an object exists, asked out of band. */
export async function exists(oob: Client, bucket: string, key: string): Promise<boolean> {
  try {
    await oob.statObject(bucket, key);
    return true;
  } catch {
    return false;
  }
}
