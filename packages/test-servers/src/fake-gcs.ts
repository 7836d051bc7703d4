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

/** Options for {@link startFakeGcs}. */
export interface FakeGcsOptions extends CommonServerOptions {
  /** fake-gcs-server's `-log-level`. Default `"warn"`. */
  readonly logLevel?: "debug" | "info" | "warn" | "error";
  /** Path of the `fake-gcs-server` executable. Default `<toolsDir()>/bin/fake-gcs-server`. */
  readonly binary?: string;
}

/** A running fake-gcs-server, from {@link startFakeGcs}. */
export interface FakeGcsServer extends RunningServer {
  /**
   * The server's base URL, `http://127.0.0.1:<port>`: the JSON API is under `/storage/v1`, uploads
   * under `/upload/storage/v1`. Pass it as `apiEndpoint` (or `STORAGE_EMULATOR_HOST`) to
   * `@google-cloud/storage`; the client then sends no credentials.
   */
  readonly endpoint: string;
  /** Deletes every bucket and object (`POST /_internal/delete_all`). */
  readonly reset: () => Promise<void>;
}

/**
 * Starts fake-gcs-server over plain HTTP on 127.0.0.1 at a free port with the in-memory backend, and
 * waits until `/_internal/healthcheck` answers 200. Its external URL (used in resumable-upload
 * `Location` headers) and public host (signed and public URLs) are that same address.
 *
 * @param options - See {@link FakeGcsOptions}.
 * @returns The running server; call `stop()` when done.
 * @throws Error naming `bash scripts/install-test-servers fake-gcs` when the binary is missing, or
 *   with the server's output when it does not start.
 */
export async function startFakeGcs(options: FakeGcsOptions = {}): Promise<FakeGcsServer> {
  const binary = options.binary ?? path.join(toolsDir(), "bin", "fake-gcs-server");
  await requireExecutable(binary, "fake-gcs-server", "fake-gcs");

  return startWithPortRetry(async () => {
    const tempRoot = await makeTempDir("fake-gcs");
    const port = await freePort();
    const endpoint = `http://127.0.0.1:${port}`;
    const server = spawnServer({
      name: "fake-gcs-server",
      command: binary,
      args: [
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        String(port),
        "-backend",
        "memory",
        "-external-url",
        endpoint,
        "-public-host",
        `127.0.0.1:${port}`,
        "-log-level",
        options.logLevel ?? "warn",
      ],
      env: options.env,
      cwd: tempRoot,
      stopGraceMs: options.stopGraceMs,
      tempDirs: [tempRoot],
    });
    await waitUntilHealthy({
      name: "fake-gcs-server",
      server,
      probe: httpProbe(`${endpoint}/_internal/healthcheck`, [200]),
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
      reset: async () => {
        const response = await fetch(`${endpoint}/_internal/delete_all`, { method: "POST" });
        await response.body?.cancel();
        if (!response.ok) throw new Error(`fake-gcs-server reset failed: HTTP ${response.status}`);
      },
    };
  });
}
