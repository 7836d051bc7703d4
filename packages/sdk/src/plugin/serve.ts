/**
 * `serve()`: turns the current process into a plugin executable that speaks HashiCorp go-plugin's
 * process protocol (docs/protocol.md) and the Stowage contract (docs/contract.md), or, with
 * `--listen`, into a network service that hosts reach over mutual TLS (docs/protocol.md "Network
 * mode").
 */
import { isLogLevel, type LogLevel } from "../logging.js";
import { networkServeAdapter, serveAdapterFor } from "../protocols/registry.js";
import type { PluginDefinition } from "./definition.js";
import { networkSettings, wantsNetwork, type NetworkServeOptions, type NetworkSettings } from "./network-options.js";
import { runNetworkServer } from "./network-runtime.js";
import { runPluginProcess } from "./process-runtime.js";

export type { NetworkServeOptions } from "./network-options.js";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The plugins this executable serves. */
  readonly plugins: readonly PluginDefinition[];
  /** Log level; default from `--log-level` in argv, else `info`. */
  readonly logLevel?: LogLevel | undefined;
  /** Offer the bulk data channel (default true; never offered in network mode). */
  readonly dataChannel?: boolean | undefined;
  /**
   * Serve over the network instead of go-plugin's process protocol: TCP with mutual TLS, for a
   * service many hosts share (docs/protocol.md "Network mode"). Setting it, or passing `--listen`,
   * selects network mode; each field wins over its flag (`--listen`, `--tls-cert`, `--tls-key`,
   * `--tls-client-ca`, `--tls-refresh-ms`, `--health-listen`, `--allow`, `--drain-ms`,
   * `--session-idle-ms`, `--max-sessions`).
   */
  readonly network?: NetworkServeOptions | undefined;
  /** Arguments to parse (default `process.argv.slice(2)`). */
  readonly argv?: readonly string[] | undefined;
  /** Environment (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/**
 * Reads `--log-level` from server-style arguments, accepting `--flag=value` and `--flag value`
 * and ignoring every other flag (a backup server may pass all of its own server flags to plugins).
 */
export function logLevelFromArgs(argv: readonly string[]): LogLevel | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    let value: string | undefined;
    if (arg.startsWith("--log-level=")) value = arg.slice("--log-level=".length);
    else if (arg === "--log-level") value = argv[i + 1];
    if (value !== undefined) {
      const v = value.toLowerCase() === "warning" ? "warn" : value.toLowerCase();
      return isLogLevel(v) ? v : undefined;
    }
  }
  return undefined;
}

const NOT_A_PROGRAM = `This binary is a Stowage storage plugin. It is not meant to be executed directly:
a Stowage host (or a tool such as \`stowage plugins\`) starts it and talks to it over gRPC.
To use it, put it in the host's plugin directory or pass its path to the host.
`;

/**
 * Serves the given plugins and never returns normally: the process exits when the host calls
 * Shutdown (status 0), on SIGTERM, or when its parent process disappears.
 *
 * Without the magic cookie in the environment it explains itself on stderr and exits with status 1.
 *
 * In network mode (`--listen HOST:PORT` in argv, or {@link ServeOptions.network}) no cookie is
 * needed: it serves Stowage's protocol over TCP with mutual TLS (`--tls-cert`, `--tls-key` and
 * `--tls-client-ca` are required), prints `{"listening":"HOST:PORT"}` on stdout once bound, keeps
 * one set of plugin instances per caller session, and on SIGTERM drains (health NOT_SERVING, no
 * new calls, in-flight calls get `--drain-ms`) and exits 0. A bad setting stops it with status 1.
 *
 * @example
 * ```ts
 * await serve({ plugins: [defineObjectStore({ name: "example.com/memory", create: () => new MemoryObjectStore() })] });
 * ```
 */
export async function serve(options: ServeOptions): Promise<void> {
  const env = options.env ?? process.env;
  const argv = options.argv ?? process.argv.slice(2);
  const logLevel = options.logLevel ?? logLevelFromArgs(argv) ?? "info";
  if (wantsNetwork(argv, options.network)) {
    let settings: NetworkSettings;
    try {
      settings = networkSettings(argv, options.network);
    } catch (error) {
      process.stderr.write(`stowage plugin: ${(error as Error).message}\n`);
      process.exit(1);
    }
    await runNetworkServer(networkServeAdapter(), { plugins: options.plugins, logLevel, settings });
    return;
  }
  // The magic cookie in the environment says which protocol the starting process speaks.
  const protocol = serveAdapterFor(env);
  if (protocol === undefined) {
    process.stderr.write(NOT_A_PROGRAM);
    process.exit(1);
  }
  await runPluginProcess(protocol, { plugins: options.plugins, logLevel, env, dataChannel: options.dataChannel ?? true });
}
