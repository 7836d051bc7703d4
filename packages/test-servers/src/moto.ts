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

/** Options for {@link startMoto}. */
export interface MotoOptions extends CommonServerOptions {
  /** The region clients should use. Default `"us-east-1"`. */
  readonly region?: string;
  /**
   * Seed EC2 with moto's default AMIs (each brings a snapshot, so `DescribeSnapshots` is not empty).
   * Default false.
   */
  readonly loadDefaultAmis?: boolean;
  /** Path of the `moto_server` executable. Default `<toolsDir()>/moto-venv/bin/moto_server`. */
  readonly binary?: string;
}

/** A running moto server, from {@link startMoto}. */
export interface MotoServer extends RunningServer {
  /**
   * The endpoint, `http://127.0.0.1:<port>`, for every AWS service moto has (S3, EC2, EBS direct
   * APIs, ...): moto tells them apart by the SigV4 credential scope. Use `forcePathStyle: true` for S3.
   */
  readonly endpoint: string;
  /** The region clients should use. */
  readonly region: string;
  /** A dummy access key id (moto accepts any). */
  readonly accessKeyId: string;
  /** A dummy secret key (moto accepts any). */
  readonly secretAccessKey: string;
  /** Forgets every resource (`POST /moto-api/reset`). */
  readonly reset: () => Promise<void>;
}

/**
 * Starts moto's server (`moto_server`, from the venv that `scripts/install-test-servers moto` makes)
 * on 127.0.0.1 at a free port, and waits until `/moto-api/data.json` answers 200.
 *
 * @param options - See {@link MotoOptions}.
 * @returns The running server; call `stop()` when done.
 * @throws Error naming `bash scripts/install-test-servers moto` when moto is missing, or with the
 *   server's output when it does not start.
 */
export async function startMoto(options: MotoOptions = {}): Promise<MotoServer> {
  const binary = options.binary ?? path.join(toolsDir(), "moto-venv", "bin", "moto_server");
  await requireExecutable(binary, "moto server", "moto");
  const region = options.region ?? "us-east-1";

  return startWithPortRetry(async () => {
    const tempRoot = await makeTempDir("moto");
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const server = spawnServer({
      name: "moto",
      command: binary,
      args: ["-H", "127.0.0.1", "-p", String(port)],
      env: {
        MOTO_EC2_LOAD_DEFAULT_AMIS: options.loadDefaultAmis === true ? "true" : "false",
        AWS_DEFAULT_REGION: region,
        PYTHONUNBUFFERED: "1",
        ...options.env,
      },
      cwd: tempRoot,
      stopGraceMs: options.stopGraceMs,
      tempDirs: [tempRoot],
    });
    await waitUntilHealthy({
      name: "moto",
      server,
      probe: httpProbe(`${endpoint}/moto-api/data.json`, [200]),
      startTimeoutMs: options.startTimeoutMs,
    });
    return {
      get pid() {
        return server.pid;
      },
      output: server.output,
      stop: server.stop,
      pause: server.pause,
      resume: server.resume,
      kill: server.kill,
      endpoint,
      region,
      accessKeyId: "test",
      secretAccessKey: "test",
      reset: async () => {
        const response = await fetch(`${endpoint}/moto-api/reset`, { method: "POST" });
        await response.body?.cancel();
        if (!response.ok) throw new Error(`moto reset failed: HTTP ${response.status}`);
      },
    };
  });
}
