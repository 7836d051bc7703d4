/**
 * The AWS flavour of `stowage demo`: `stowage-plugin-aws` in its own process, in front of a MinIO
 * server the demo starts itself (`@stowage/test-servers`) and stops at the end.
 *
 * Both packages are development dependencies of the CLI, loaded only when this demo runs: MinIO and
 * `@stowage/test-servers` exist only in a Stowage source checkout, so an installed `stowage` needs
 * neither (nor Azurite, which `@stowage/test-servers` depends on) for any other command.
 *
 * @packageDocumentation
 */
import { createHash, createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, StowageError, type LogLevel, type PluginConfig } from "@stowage/sdk";
import { nodePluginCommand, type PluginCommand } from "@stowage/sdk/host";
import type { MinioServer } from "@stowage/test-servers";

/** Name of the AWS plugins. */
export const AWS_PLUGIN = "stowage.io/aws";
/** Label of the AWS plugin in logs. */
const AWS_LABEL = "stowage-plugin-aws";

/** Why `--provider aws` cannot run where `specifier` is not installed (outside a source checkout). */
function checkoutOnly(specifier: string, cause: unknown): StowageError {
  return new StowageError(
    Code.FailedPrecondition,
    `stowage demo --provider aws needs ${specifier}, which only a Stowage source checkout has: run it there (bash scripts/stowage demo --provider aws), or run the local demo (stowage demo)`,
    { cause },
  );
}

/** Whether `error` says that a module or package could not be found. */
function isModuleNotFound(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "ERR_PACKAGE_PATH_NOT_EXPORTED" || code === "MODULE_NOT_FOUND";
}

/** `@stowage/test-servers`, imported on first use; a clear error where it is not installed. */
async function testServers(): Promise<typeof import("@stowage/test-servers")> {
  try {
    return await import("@stowage/test-servers");
  } catch (error) {
    throw isModuleNotFound(error) ? checkoutOnly("@stowage/test-servers (which starts MinIO)", error) : error;
  }
}

/** The path of `@stowage/plugin-aws`'s `stowage-plugin-aws` executable, through module resolution. */
export function awsPluginPath(): string {
  let manifestPath: string;
  try {
    manifestPath = fileURLToPath(import.meta.resolve("@stowage/plugin-aws/package.json"));
  } catch (error) {
    throw isModuleNotFound(error) ? checkoutOnly("@stowage/plugin-aws", error) : error;
  }
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { bin?: unknown };
  const bin = manifest.bin;
  const rel = typeof bin === "string" ? bin : typeof bin === "object" && bin !== null ? (bin as Record<string, unknown>)[AWS_LABEL] : undefined;
  if (typeof rel !== "string") throw new StowageError(Code.Internal, `@stowage/plugin-aws declares no ${AWS_LABEL} executable`);
  return join(dirname(manifestPath), rel);
}

/** The command that launches `stowage-plugin-aws` in its own Node process. */
export function awsPluginCommand(logLevel: LogLevel): PluginCommand {
  return nodePluginCommand(awsPluginPath(), { args: ["--log-level", logLevel], label: AWS_LABEL });
}

/** A MinIO server started for the demo, with the bucket made and the plugin's config ready. */
export interface DemoMinio {
  /** The running server; `stop()` ends it and removes its data. */
  readonly server: MinioServer;
  /** The ObjectStore config of `stowage.io/aws` for this server. */
  readonly config: PluginConfig;
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

function sha256Hex(data: string): string {
  return createHash("sha256").update(data).digest("hex");
}

/**
 * Creates `bucket` with one SigV4-signed `PUT /<bucket>` (path style). The plugin contract has no
 * bucket creation, and this keeps the CLI free of an S3 client of its own.
 */
async function createBucket(server: MinioServer, bucket: string, signal: AbortSignal): Promise<void> {
  const url = new URL(`/${bucket}`, server.endpoint);
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
  const day = amzDate.slice(0, 8);
  const payload = sha256Hex("");
  const signedHeaders = "host;x-amz-content-sha256;x-amz-date";
  const canonical = ["PUT", url.pathname, "", `host:${url.host}`, `x-amz-content-sha256:${payload}`, `x-amz-date:${amzDate}`, "", signedHeaders, payload].join("\n");
  const scope = `${day}/${server.region}/s3/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonical)].join("\n");
  const key = hmac(hmac(hmac(hmac(`AWS4${server.secretKey}`, day), server.region), "s3"), "aws4_request");
  const signature = hmac(key, toSign).toString("hex");
  const response = await fetch(url, {
    method: "PUT",
    signal,
    headers: {
      "x-amz-date": amzDate,
      "x-amz-content-sha256": payload,
      authorization: `AWS4-HMAC-SHA256 Credential=${server.accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    },
  });
  const text = await response.text();
  if (!response.ok) throw new StowageError(Code.Unavailable, `MinIO refused to create bucket ${bucket}: ${response.status} ${text.slice(0, 300)}`);
}

/**
 * Starts a MinIO server on a loopback port with its data in a temporary folder, creates `bucket`,
 * and writes a shared credentials file into `dir` for the plugin.
 *
 * @throws Error naming `bash scripts/install-test-servers minio` when MinIO is not installed.
 */
export async function startDemoMinio(dir: string, bucket: string, signal: AbortSignal): Promise<DemoMinio> {
  const { startMinio } = await testServers();
  // When MinIO is missing, startMinio's error names `bash scripts/install-test-servers minio`.
  const server = await startMinio();
  try {
    await createBucket(server, bucket, signal);
    const credentialsFile = join(dir, "aws-credentials");
    await writeFile(credentialsFile, `[default]\naws_access_key_id=${server.accessKey}\naws_secret_access_key=${server.secretKey}\n`, { mode: 0o600 });
    return {
      server,
      config: { bucket, s3Url: server.endpoint, region: server.region, s3ForcePathStyle: "true", credentialsFile },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
