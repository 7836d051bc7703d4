import { mkdir } from "node:fs/promises";
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
import { requireExecutable, toolsDir } from "./tools.js";

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
}

/** A running MinIO server, from {@link startMinio}. */
export interface MinioServer extends RunningServer {
  /** The S3 endpoint, `http://127.0.0.1:<port>`. Use path-style addressing (`forcePathStyle: true`). */
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

  return startWithPortRetry(async () => {
    const tempRoot = await makeTempDir("minio");
    const dataDir = options.dataDir ?? path.join(tempRoot, "data");
    const certsDir = path.join(tempRoot, "certs");
    await mkdir(dataDir, { recursive: true });
    await mkdir(certsDir, { recursive: true });
    const port = await freePort();
    const consolePort = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const server = spawnServer({
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
        ...options.env,
      },
      cwd: tempRoot,
      stopGraceMs: options.stopGraceMs,
      tempDirs: [tempRoot],
    });
    const live = httpProbe(`${endpoint}/minio/health/live`, [200]);
    const ready = httpProbe(`${endpoint}/minio/health/ready`, [200]);
    await waitUntilHealthy({
      name: "minio",
      server,
      probe: async (signal) => (await live(signal)) && (await ready(signal)),
      startTimeoutMs: options.startTimeoutMs,
    });
    return {
      get pid() {
        return server.pid;
      },
      output: server.output,
      stop: server.stop,
      endpoint,
      consoleEndpoint: withConsole ? `http://127.0.0.1:${consolePort}` : undefined,
      accessKey,
      secretKey,
      region,
      dataDir,
    };
  });
}
