import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { request } from "node:https";
import path from "node:path";
import {
  freePort,
  httpProbe,
  makeTempDir,
  spawnServer,
  startWithPortRetry,
  waitUntilHealthy,
  type CommonServerOptions,
  type RunningServer,
} from "./process.js";
import { makeSelfSignedCertificate } from "./certificate.js";
import { requireExecutable, toolsDir } from "./tools.js";

/** A certificate and its private key, PEM, for {@link MinioOptions.tls}. */
export interface MinioTlsOptions {
  /** The server certificate (PEM). It must name 127.0.0.1 (subjectAltName IP:127.0.0.1). */
  readonly cert: string;
  /** Its private key (PEM). */
  readonly key: string;
}

/** Options for {@link startMinio}. */
export interface MinioOptions extends CommonServerOptions {
  /** Root user (the S3 access key id). At least 3 characters. Default `"minioadmin"`. */
  readonly accessKey?: string;
  /** Root password (the S3 secret key). At least 8 characters. Default `"minioadmin"`. */
  readonly secretKey?: string;
  /** The server's region (`MINIO_SITE_REGION`). Default `"us-east-1"`. */
  readonly region?: string;
  /**
   * Folder to store objects in. Default: a new temporary folder, removed by `stop()`. A folder passed
   * here is kept.
   */
  readonly dataDir?: string;
  /** Also start the web console (on its own loopback port). Default false. */
  readonly console?: boolean;
  /** Path of the `minio` executable. Default `<toolsDir()>/bin/minio`. */
  readonly binary?: string;
  /**
   * A static KMS key (`MINIO_KMS_SECRET_KEY`), which enables SSE-S3 and SSE-KMS: `true` for a new
   * random key named `stowage-test-key`, or `<name>:<base64 of 32 bytes>`. SSE-KMS requests must name
   * this key ({@link MinioServer.kmsKeyId}). Default: none (encrypted puts fail).
   */
  readonly kmsKey?: boolean | string;
  /**
   * Serve HTTPS (MinIO accepts SSE-C only over TLS): `true` for a new self-signed certificate for
   * 127.0.0.1, made with `openssl`, or a certificate of your own. Clients trust
   * {@link MinioServer.caCert}. Default false: plain HTTP.
   */
  readonly tls?: boolean | MinioTlsOptions;
}

/** A running MinIO server, from {@link startMinio}. */
export interface MinioServer extends RunningServer {
  /**
   * The S3 endpoint, `http://127.0.0.1:<port>` (`https://` with {@link MinioOptions.tls}). Use
   * path-style addressing (`forcePathStyle: true`).
   */
  readonly endpoint: string;
  /** The web console's URL, when {@link MinioOptions.console} was set. */
  readonly consoleEndpoint: string | undefined;
  /** The S3 access key id (the root user). */
  readonly accessKey: string;
  /** The S3 secret key (the root password). */
  readonly secretKey: string;
  /** The region to sign requests for. */
  readonly region: string;
  /** The folder the server stores objects in. */
  readonly dataDir: string;
  /** The certificate (PEM) to trust for an `https://` endpoint; `undefined` over plain HTTP. */
  readonly caCert: string | undefined;
  /** The name of the static KMS key, to use as the SSE-KMS key id; `undefined` without a KMS key. */
  readonly kmsKeyId: string | undefined;
  /**
   * Starts the server again on the same port and data (after {@link RunningServer.kill}, or killing
   * it first if it still runs) and waits until it is healthy, as a store that comes back after a
   * crash. Incomplete multipart uploads survive, like objects.
   */
  readonly restart: () => Promise<void>;
}

const DEFAULT_KMS_KEY_NAME = "stowage-test-key";

/** `MINIO_KMS_SECRET_KEY` for {@link MinioOptions.kmsKey}, and the key's name. */
function kmsSecret(option: boolean | string | undefined): { env: Record<string, string>; name: string | undefined } {
  if (option === undefined || option === false) return { env: {}, name: undefined };
  const value = option === true ? `${DEFAULT_KMS_KEY_NAME}:${randomBytes(32).toString("base64")}` : option;
  const match = /^([^:]+):([A-Za-z0-9+/]{43}=)$/.exec(value);
  if (match === null) throw new Error(`kmsKey must be "<name>:<base64 of 32 bytes>", got ${JSON.stringify(value.replace(/:.*/, ":…"))}`);
  return { env: { MINIO_KMS_SECRET_KEY: value }, name: match[1] };
}

/** Writes `public.crt` and `private.key` into `certsDir`: the given pair, or a new self-signed one. */
async function writeCertificate(certsDir: string, tls: true | MinioTlsOptions): Promise<string> {
  const certFile = path.join(certsDir, "public.crt");
  const keyFile = path.join(certsDir, "private.key");
  if (tls !== true) {
    await writeFile(certFile, tls.cert);
    await writeFile(keyFile, tls.key, { mode: 0o600 });
    return tls.cert;
  }
  return (await makeSelfSignedCertificate(certsDir, { certFile: "public.crt", keyFile: "private.key" })).certPem;
}

/** A health probe over HTTPS that trusts `ca`. */
function httpsProbe(url: string, ca: string): (signal: AbortSignal) => Promise<boolean> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const req = request(url, { ca, signal }, (response) => {
        response.resume();
        resolve(response.statusCode === 200);
      });
      req.on("error", reject);
      req.end();
    });
}

/**
 * Starts a single-drive MinIO server on 127.0.0.1 at a free port, with its data in a temporary folder,
 * and waits until `/minio/health/live` and `/minio/health/ready` answer 200.
 *
 * @param options - See {@link MinioOptions}.
 * @returns The running server; call `stop()` when done.
 * @throws Error naming `bash scripts/install-test-servers minio` when the binary is missing, or with
 *   the server's output when it does not start.
 */
export async function startMinio(options: MinioOptions = {}): Promise<MinioServer> {
  const binary = options.binary ?? path.join(toolsDir(), "bin", "minio");
  await requireExecutable(binary, "MinIO server", "minio");
  const accessKey = options.accessKey ?? "minioadmin";
  const secretKey = options.secretKey ?? "minioadmin";
  const region = options.region ?? "us-east-1";
  const withConsole = options.console ?? false;
  const kms = kmsSecret(options.kmsKey);
  const tls = options.tls ?? false;

  return startWithPortRetry(async () => {
    const tempRoot = await makeTempDir("minio");
    const dataDir = options.dataDir ?? path.join(tempRoot, "data");
    const certsDir = path.join(tempRoot, "certs");
    await mkdir(dataDir, { recursive: true });
    await mkdir(certsDir, { recursive: true });
    const caCert = tls === false ? undefined : await writeCertificate(certsDir, tls);
    const port = await freePort();
    const consolePort = await freePort();
    const scheme = caCert === undefined ? "http" : "https";
    const endpoint = `${scheme}://127.0.0.1:${port}`;
    const spawnMinio = () => spawnServer({
      name: "minio",
      command: binary,
      args: [
        "server",
        "--address",
        `127.0.0.1:${port}`,
        "--console-address",
        `127.0.0.1:${consolePort}`,
        // Keeps MinIO away from ~/.minio.
        "--certs-dir",
        certsDir,
        dataDir,
      ],
      env: {
        MINIO_ROOT_USER: accessKey,
        MINIO_ROOT_PASSWORD: secretKey,
        MINIO_SITE_REGION: region,
        MINIO_BROWSER: withConsole ? "on" : "off",
        MINIO_UPDATE: "off",
        // The same relaxed drive checks on developer machines as under CI=true.
        MINIO_CI_CD: "1",
        // MinIO creates ~/.minio even with --certs-dir; keep it in the temp dir.
        HOME: tempRoot,
        ...kms.env,
        ...options.env,
      },
      cwd: tempRoot,
      stopGraceMs: options.stopGraceMs,
      tempDirs: [tempRoot],
    });
    const probe = (url: string) => (caCert === undefined ? httpProbe(url, [200]) : httpsProbe(url, caCert));
    const live = probe(`${endpoint}/minio/health/live`);
    const ready = probe(`${endpoint}/minio/health/ready`);
    const healthy = (server: ReturnType<typeof spawnMinio>) =>
      waitUntilHealthy({
        name: "minio",
        server,
        probe: async (signal) => (await live(signal)) && (await ready(signal)),
        startTimeoutMs: options.startTimeoutMs,
      });
    let server = spawnMinio();
    await healthy(server);
    return {
      get pid() {
        return server.pid;
      },
      output: () => server.output(),
      stop: () => server.stop(),
      pause: () => {
        server.pause();
      },
      resume: () => {
        server.resume();
      },
      kill: () => server.kill(),
      restart: async () => {
        await server.kill();
        server = spawnMinio();
        await healthy(server);
      },
      endpoint,
      consoleEndpoint: withConsole ? `${scheme}://127.0.0.1:${consolePort}` : undefined,
      accessKey,
      secretKey,
      region,
      dataDir,
      caCert,
      kmsKeyId: kms.name,
    };
  });
}
