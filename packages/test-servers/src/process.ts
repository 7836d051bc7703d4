import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** What every started server has in common. */
export interface RunningServer {
  /** The server's process id (the process that `stop()` signals). */
  readonly pid: number;
  /** The last part (at most {@link OUTPUT_TAIL_CHARS} characters) of the server's stdout and stderr. */
  readonly output: () => string;
  /**
   * Stops the server: SIGTERM, then SIGKILL after a grace period; resolves once the process has
   * exited and its temporary files are gone. Safe to call more than once, also while paused.
   */
  readonly stop: () => Promise<void>;
  /**
   * Freezes the server (SIGSTOP): it keeps its sockets, so clients still connect (the kernel
   * completes handshakes into the listen backlog) and send until the buffers fill, but nothing is
   * answered. For fault tests of a stalled store. A no-op once the process has exited.
   */
  readonly pause: () => void;
  /** Lets a paused server run again (SIGCONT). A no-op once the process has exited. */
  readonly resume: () => void;
  /**
   * Kills the server at once (SIGKILL), as a crash would, and resolves once it has exited. Its data
   * and temporary files are kept (a server that can restart does so on the same data); `stop()`
   * still removes them.
   */
  readonly kill: () => Promise<void>;
}

/** Options that every `start*` function accepts. */
export interface CommonServerOptions {
  /** How long to wait for the server to become healthy before giving up. Default 30 000 ms. */
  readonly startTimeoutMs?: number;
  /** How long `stop()` waits after SIGTERM before it sends SIGKILL. Default 5 000 ms. */
  readonly stopGraceMs?: number;
  /** Extra environment variables for the server process. */
  readonly env?: Readonly<Record<string, string>>;
}

/** How many characters of server output are kept for error messages. */
export const OUTPUT_TAIL_CHARS = 16_384;

const DEFAULT_START_TIMEOUT_MS = 30_000;
const DEFAULT_STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 4;

// Everything still alive is killed when the test process exits, however it exits normally.
const liveChildren = new Set<ChildProcess>();
const liveTempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of liveChildren) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    for (const dir of liveTempDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** A bounded tail of a process's combined output. */
class OutputTail {
  #text = "";
  push(chunk: Buffer | string): void {
    this.#text += chunk.toString();
    if (this.#text.length > OUTPUT_TAIL_CHARS) this.#text = this.#text.slice(-OUTPUT_TAIL_CHARS);
  }
  toString(): string {
    return this.#text;
  }
}

/** A server process spawned by {@link spawnServer}. @internal */
export interface ServerProcess extends RunningServer {
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether the process has exited. */
  readonly hasExited: () => boolean;
  /** Registers a listener for output chunks (for log-line parsing). */
  readonly onOutput: (listener: (text: string) => void) => void;
}

/** @internal */
export interface SpawnOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  readonly stopGraceMs?: number | undefined;
  /** Temporary folders removed after the process exits. */
  readonly tempDirs?: readonly string[] | undefined;
}

// setpriv --pdeathsig makes the kernel kill the server if the test process dies without running
// its exit hooks (SIGKILL, crash). setpriv execs the server, so the pid stays the same.
const SETPRIV = "/usr/bin/setpriv";
const useSetpriv = process.platform === "linux" && existsSync(SETPRIV);

/**
 * Spawns a server process with piped output, registered for cleanup at exit.
 * @internal
 */
export function spawnServer(options: SpawnOptions): ServerProcess {
  installExitHook();
  const tail = new OutputTail();
  const listeners: ((text: string) => void)[] = [];
  const [command, args] = useSetpriv
    ? [SETPRIV, ["--pdeathsig", "KILL", "--", options.command, ...options.args]]
    : [options.command, [...options.args]];
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tempDirs = options.tempDirs ?? [];
  for (const dir of tempDirs) liveTempDirs.add(dir);
  liveChildren.add(child);
  let exitedFlag = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("exit", (code, signal) => {
      exitedFlag = true;
      liveChildren.delete(child);
      resolve({ code, signal });
    });
    child.once("error", (error) => {
      tail.push(`\n[spawn error] ${error.message}\n`);
      exitedFlag = true;
      liveChildren.delete(child);
      resolve({ code: null, signal: null });
    });
  });
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString();
    tail.push(text);
    for (const listener of listeners) listener(text);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);

  const signal = (name: NodeJS.Signals): void => {
    if (exitedFlag) return;
    try {
      child.kill(name);
    } catch {
      // Already gone.
    }
  };
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exitedFlag) {
        child.kill("SIGTERM");
        // A paused server only acts on SIGTERM once it runs again.
        signal("SIGCONT");
        const grace = options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS;
        const timer = sleep(grace, "timeout" as const);
        if ((await Promise.race([exited, timer])) === "timeout" && !exitedFlag) child.kill("SIGKILL");
        await exited;
      }
      for (const dir of tempDirs) {
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
        liveTempDirs.delete(dir);
      }
    })();
    return stopping;
  };

  return {
    child,
    get pid() {
      return child.pid ?? -1;
    },
    exited,
    hasExited: () => exitedFlag,
    output: () => tail.toString(),
    onOutput: (listener) => {
      listeners.push(listener);
    },
    stop,
    pause: () => {
      signal("SIGSTOP");
    },
    resume: () => {
      signal("SIGCONT");
    },
    kill: async () => {
      signal("SIGKILL");
      await exited;
    },
  };
}

const TEMP_PREFIX = "stowage-server-";
const OWNER_FILE = ".owner-pid";
let sweptStaleTempDirs = false;

/**
 * Creates a temporary folder under the OS temp dir, marked with this process's pid. The first call in
 * a process also removes folders left behind by test processes that died without cleaning up (killed
 * with SIGKILL, say: the servers themselves die with them, see `spawnServer`).
 * @internal
 */
export async function makeTempDir(name: string): Promise<string> {
  if (!sweptStaleTempDirs) {
    sweptStaleTempDirs = true;
    await sweepStaleTempDirs();
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `${TEMP_PREFIX}${name}-`));
  await writeFile(path.join(dir, OWNER_FILE), String(process.pid));
  return dir;
}

async function sweepStaleTempDirs(): Promise<void> {
  const entries = await readdir(os.tmpdir()).catch(() => []);
  for (const entry of entries) {
    if (!entry.startsWith(TEMP_PREFIX)) continue;
    const dir = path.join(os.tmpdir(), entry);
    const owner = Number(await readFile(path.join(dir, OWNER_FILE), "utf8").catch(() => "NaN"));
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Asks the OS for a free TCP port on 127.0.0.1. Another process may take it before the server binds
 * it; {@link startWithPortRetry} handles that.
 * @internal
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => {
        if (port > 0) resolve(port);
        else reject(new Error("could not get a free port"));
      });
    });
  });
}

/** Thrown by a start attempt that failed because its port was taken. @internal */
export class PortInUseError extends Error {}

const ADDRESS_IN_USE = /address already in use|EADDRINUSE|port is already allocated|bind: address/i;

/**
 * Runs `attempt` with fresh free ports until it does not fail with {@link PortInUseError}.
 * @internal
 */
export async function startWithPortRetry<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof PortInUseError) || i >= PORT_ATTEMPTS) throw error;
    }
  }
}

/** @internal */
export interface WaitOptions {
  readonly name: string;
  readonly server: ServerProcess;
  /** Resolves true when the server is healthy; called repeatedly. */
  readonly probe: (signal: AbortSignal) => Promise<boolean>;
  readonly startTimeoutMs?: number | undefined;
}

/**
 * Polls `probe` until it returns true. On a timeout or an early exit the server is stopped and an
 * error with the server's output is thrown ({@link PortInUseError} when the output says the port
 * was taken).
 * @internal
 */
export async function waitUntilHealthy(options: WaitOptions): Promise<void> {
  const { name, server } = options;
  const timeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  let lastProblem = "";
  for (;;) {
    if (server.hasExited()) {
      const { code, signal } = await server.exited;
      await server.stop();
      const output = server.output();
      const message = `${name} exited during startup (code ${code ?? "none"}, signal ${signal ?? "none"})`;
      if (ADDRESS_IN_USE.test(output)) throw new PortInUseError(`${message}: port in use`);
      throw new Error(withOutput(message, output));
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(
        withOutput(`${name} did not become healthy within ${timeoutMs} ms (last probe: ${lastProblem || "not ready"})`, server.output()),
      );
    }
    try {
      if (await options.probe(AbortSignal.timeout(2_000))) return;
      lastProblem = "not ready";
    } catch (error) {
      lastProblem = error instanceof Error ? describeError(error) : String(error);
    }
    await Promise.race([sleep(100), server.exited]);
  }
}

function describeError(error: Error): string {
  const cause: unknown = error.cause;
  return cause instanceof Error ? `${error.message}: ${cause.message}` : error.message;
}

/**
 * Appends a server's output tail to an error message.
 * @internal
 */
export function withOutput(message: string, output: string): string {
  const trimmed = output.trim();
  return trimmed === "" ? `${message}; the server printed nothing` : `${message}. Server output (tail):\n${trimmed}`;
}

/**
 * A probe that is healthy when `GET url` answers with one of `statuses` (any status when omitted).
 * @internal
 */
export function httpProbe(url: string, statuses?: readonly number[]): (signal: AbortSignal) => Promise<boolean> {
  return async (signal) => {
    const response = await fetch(url, { signal });
    await response.body?.cancel();
    return statuses === undefined || statuses.includes(response.status);
  };
}
