/**
 * `serve()`: turns the current process into a plugin executable that speaks HashiCorp go-plugin's
 * process protocol (docs/protocol.md) and the Stowage contract (docs/contract.md).
 */
import { isLogLevel, type LogLevel } from "../logging.js";
import { serveAdapterFor } from "../protocols/registry.js";
import type { PluginDefinition } from "./definition.js";
import { runPluginProcess } from "./process-runtime.js";

/** Options of {@link serve}. */
export interface ServeOptions {
  /** The plugins this executable serves. */
  readonly plugins: readonly PluginDefinition[];
  /** Log level; default from `--log-level` in argv, else `info`. */
  readonly logLevel?: LogLevel | undefined;
  /** Offer the bulk data channel (default true). */
  readonly dataChannel?: boolean | undefined;
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
 * @example
 * ```ts
 * await serve({ plugins: [defineObjectStore({ name: "example.com/memory", create: () => new MemoryObjectStore() })] });
 * ```
 */
export async function serve(options: ServeOptions): Promise<void> {
  const env = options.env ?? process.env;
  const logLevel = options.logLevel ?? logLevelFromArgs(options.argv ?? process.argv.slice(2)) ?? "info";
  // The magic cookie in the environment says which protocol the starting process speaks.
  const protocol = serveAdapterFor(env);
  if (protocol === undefined) {
    process.stderr.write(NOT_A_PROGRAM);
    process.exit(1);
  }
  await runPluginProcess(protocol, { plugins: options.plugins, logLevel, env, dataChannel: options.dataChannel ?? true });
}
