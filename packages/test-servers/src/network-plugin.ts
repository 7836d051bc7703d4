import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

/** The certificate files a network-mode plugin serves with. */
export interface NetworkPluginTls {
  /** Its server certificate. */
  readonly certFile: string;
  /** Its private key. */
  readonly keyFile: string;
  /** The CA its clients' certificates must come from. */
  readonly clientCaFile: string;
}

/** Options of {@link startNetworkPlugin}. */
export interface NetworkPluginOptions {
  /** The plugin's JavaScript entry point (run with this Node) or, with `executable`, the program itself. */
  readonly script: string;
  /** Run `script` as a program rather than with Node. */
  readonly executable?: boolean;
  /** Its certificates. */
  readonly tls: NetworkPluginTls;
  /** `HOST:PORT` to listen on (default `127.0.0.1:0`, any free port). */
  readonly listen?: string;
  /** Further flags (`--allow FILE`, `--drain-ms N`, `--tls-refresh-ms N`, …). */
  readonly args?: readonly string[];
  /** Added to the environment (which loses any magic cookie). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long to wait for its listening line (default 20 000 ms). */
  readonly startTimeoutMs?: number;
}

/** A plugin executable running in network mode (docs/protocol.md, network mode). */
export interface NetworkPlugin {
  /** `HOST:PORT` of its mTLS port. */
  readonly address: string;
  /** `HOST:PORT` of its plaintext health port. */
  readonly health: string;
  /** Its process ID. */
  readonly pid: number;
  /** Its stderr so far (its log lines). */
  readonly output: () => string;
  /** Its exit status, once it exits. */
  readonly exited: Promise<number | null>;
  /** Sends SIGTERM (it drains, then exits 0) and waits for the exit. */
  readonly terminate: () => Promise<number | null>;
  /** Kills it at once (SIGKILL), as a crash would, and waits for the exit. */
  readonly kill: () => Promise<void>;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/**
 * Starts a Stowage plugin executable as a network service (`--listen` with mTLS and a plaintext
 * health port on loopback) and waits for the line saying where it listens. Killed when the test
 * process exits, if still running.
 *
 * @throws Error when it exits or stays silent before listening, quoting its stderr.
 */
export async function startNetworkPlugin(options: NetworkPluginOptions): Promise<NetworkPlugin> {
  const flags = [
    "--listen",
    options.listen ?? "127.0.0.1:0",
    "--health-listen",
    "127.0.0.1:0",
    "--tls-cert",
    options.tls.certFile,
    "--tls-key",
    options.tls.keyFile,
    "--tls-client-ca",
    options.tls.clientCaFile,
    ...(options.args ?? []),
  ];
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => key !== "STOWAGE_PLUGIN" && key !== "VELERO_PLUGIN"));
  const child = options.executable === true ? spawn(options.script, flags, { env: { ...env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] }) : spawn(process.execPath, [options.script, ...flags], { env: { ...env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  let stderr = "";
  let stdout = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr = (stderr + text).slice(-64 * 1024);
  });
  const exited = once(child, "exit").then(([code]) => {
    live.delete(child);
    return code as number | null;
  });
  const line = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the plugin ${options.script} printed no listening line within ${String(options.startTimeoutMs ?? 20_000)} ms; stderr:\n${stderr}`));
    }, options.startTimeoutMs ?? 20_000);
    child.stdout?.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
      const newline = stdout.indexOf("\n");
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, newline));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the plugin ${options.script} exited with status ${String(code)} before listening; stderr:\n${stderr}`));
    });
  }).catch(async (error: unknown) => {
    child.kill("SIGKILL");
    await exited;
    throw error;
  });
  const parsed = JSON.parse(line) as { listening: string; health: string };
  return {
    address: parsed.listening,
    health: parsed.health,
    pid: child.pid ?? -1,
    output: () => stderr,
    exited,
    async terminate() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}
