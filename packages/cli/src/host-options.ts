/**
 * The global options (`--plugin-dir`, `--plugin`, `--no-embedded`, `--log-level`, `--json`,
 * `--metrics-port`) and the plugin host they configure: which executables it launches, where its
 * logs go, where its metrics are served, and how it is always closed again — also on Ctrl-C — so
 * no plugin process outlives the command.
 *
 * @packageDocumentation
 */
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { isSea } from "node:sea";
import { fileURLToPath } from "node:url";
import { Code, StowageError, createHclogLogger, type LogLevel, type Logger } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type PluginCommand } from "@stowage/sdk/host";
import type { Command } from "commander";
import { describeError, exitCodeOf, interruptError, markUsage, usageError } from "./exit.js";
import type { MetricsEndpoint } from "./metrics-endpoint.js";
import { parseInteger, parseLogLevel } from "./parse.js";
import { cliSecrets } from "./secrets.js";

/** The global options as commander parses them. */
export interface RawGlobalOptions {
  readonly pluginDir?: string | undefined;
  readonly plugin?: readonly string[] | undefined;
  readonly embedded?: boolean | undefined;
  readonly logLevel?: string | undefined;
  readonly json?: boolean | undefined;
  readonly metricsPort?: string | undefined;
}

/** The global options, checked. */
export interface GlobalOptions {
  /** Directory searched for plugin executables. */
  readonly pluginDir: string | undefined;
  /** Extra plugin executables, absolute. */
  readonly plugins: readonly string[];
  /** Whether the embedded local plugin is launched. */
  readonly embedded: boolean;
  /** Level of the host's (and the embedded plugin's) logs on stderr. */
  readonly logLevel: LogLevel;
  /** Print one JSON document on stdout instead of text. */
  readonly json: boolean;
  /** Serve the host's metrics for Prometheus on `127.0.0.1:<port>/metrics` while the command runs (0: a free port). */
  readonly metricsPort: number | undefined;
}

/** Label of the embedded local plugin in logs. */
export const EMBEDDED_LABEL = "stowage-plugin-local";

/** Reads the global options of the command being run (they may appear before or after it). */
export function globalOptions(command: Command): GlobalOptions {
  const raw = command.optsWithGlobals<RawGlobalOptions>();
  return {
    pluginDir: raw.pluginDir === undefined ? undefined : resolve(raw.pluginDir),
    plugins: (raw.plugin ?? []).map((p) => resolve(p)),
    embedded: raw.embedded ?? true,
    logLevel: parseLogLevel(raw.logLevel ?? "warn"),
    json: raw.json ?? false,
    metricsPort: raw.metricsPort === undefined ? undefined : parseInteger(raw.metricsPort, "--metrics-port", 0, 65535),
  };
}

/**
 * The first argument with which the single-executable `stowage` starts itself as the embedded local
 * plugin (it has no plugin-local script to hand to Node).
 */
export const EMBEDDED_PLUGIN_ARG = "__serve-embedded-plugin-local";

/** Whether this process is the single-executable `stowage` started as the embedded local plugin. */
export function isEmbeddedPluginLaunch(argv: readonly string[] = process.argv): boolean {
  return isSea() && argv[2] === EMBEDDED_PLUGIN_ARG;
}

/**
 * The path of `@stowage/plugin-local`'s executable (its `stowage-plugin-local` bin), found through
 * module resolution so it works from the workspace and from an installed package alike. In the
 * single-executable `stowage`, the executable itself (it serves the plugin when started with
 * {@link EMBEDDED_PLUGIN_ARG}).
 */
export function embeddedPluginPath(): string {
  if (isSea()) return process.execPath;
  const manifestPath = fileURLToPath(import.meta.resolve("@stowage/plugin-local/package.json"));
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { bin?: unknown };
  const bin = manifest.bin;
  const rel = typeof bin === "string" ? bin : typeof bin === "object" && bin !== null ? (bin as Record<string, unknown>)[EMBEDDED_LABEL] : undefined;
  if (typeof rel !== "string") throw new StowageError(Code.Internal, "@stowage/plugin-local declares no stowage-plugin-local executable");
  return join(dirname(manifestPath), rel);
}

/** The command that launches the embedded local plugin in its own process. */
export function embeddedPluginCommand(logLevel: LogLevel): PluginCommand {
  if (isSea()) return { command: process.execPath, args: [EMBEDDED_PLUGIN_ARG, "--log-level", logLevel], label: EMBEDDED_LABEL };
  return nodePluginCommand(embeddedPluginPath(), { args: ["--log-level", logLevel], label: EMBEDDED_LABEL });
}

async function checkPaths(options: GlobalOptions): Promise<void> {
  if (options.pluginDir !== undefined) {
    const info = await stat(options.pluginDir).catch(() => undefined);
    if (info?.isDirectory() !== true) throw usageError(`--plugin-dir ${options.pluginDir} is not a directory`);
  }
  for (const path of options.plugins) {
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() !== true) throw usageError(`--plugin ${path} is not a file`);
  }
}

/** The host's logger: hclog-shaped JSON lines on stderr at the chosen level, secret `--config` values redacted. */
export function hostLogger(options: GlobalOptions): Logger {
  return createHclogLogger({ level: options.logLevel, module: "stowage", secrets: cliSecrets });
}

/** Creates (but does not start) the plugin host the global options describe. */
export async function createHost(options: GlobalOptions): Promise<PluginHost> {
  await checkPaths(options);
  const plugins: PluginCommand[] = options.plugins.map((command) => ({ command }));
  if (options.embedded) plugins.push(embeddedPluginCommand(options.logLevel));
  if (options.pluginDir === undefined && plugins.length === 0) {
    throw usageError("no plugins to launch: --no-embedded needs --plugin-dir or --plugin");
  }
  return new PluginHost({ pluginDir: options.pluginDir, plugins, logger: hostLogger(options) });
}

/**
 * Starts `host`. A failure to start is a configuration error (exit status 2); the message gains
 * a hint when the embedded plugin clashes with a discovered one.
 */
export async function startHost(host: PluginHost, options: GlobalOptions): Promise<void> {
  try {
    await host.start();
  } catch (error) {
    let message = describeError(error);
    if (options.embedded) {
      const embedded = `the embedded local plugin (${EMBEDDED_LABEL})`;
      message = message.replaceAll(embeddedPluginPath(), embedded).replaceAll(process.execPath, embedded);
      if (message.includes("is served by both")) message += "\n(add --no-embedded to leave out the embedded local plugin)";
    }
    throw markUsage(new StowageError(Code.FailedPrecondition, `the plugins could not be started: ${message}`, { cause: error }));
  }
}

/** A signal that fires on SIGINT, SIGTERM or SIGHUP, until disposed. */
export interface Interrupts {
  /** Fires with an interrupt error (exit status 128 + the signal's number). */
  readonly signal: AbortSignal;
  /** Removes the signal handlers. */
  dispose(): void;
}

const INTERRUPTS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Catches SIGINT, SIGTERM and SIGHUP: the first one aborts the returned signal so the command can
 * stop its calls and close the host; a second one exits at once (plugin processes are killed on
 * exit).
 */
export function catchInterrupts(): Interrupts {
  const abort = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (abort.signal.aborted) process.exit(exitCodeOf(abort.signal.reason));
    abort.abort(interruptError(signal));
  };
  for (const name of INTERRUPTS) process.on(name, onSignal);
  return {
    signal: abort.signal,
    dispose(): void {
      for (const name of INTERRUPTS) process.off(name, onSignal);
    },
  };
}

/**
 * Runs `fn` with a started host and closes the host afterwards, whatever happens. The signal
 * fires on SIGINT, SIGTERM or SIGHUP; `fn` passes it to its calls, and the command then ends with
 * status 128 + the signal's number (130 for Ctrl-C).
 */
export async function withHost<T>(options: GlobalOptions, fn: (host: PluginHost, signal: AbortSignal) => Promise<T>): Promise<T> {
  const host = await createHost(options);
  const metrics = await serveHostMetrics(options);
  const interrupts = catchInterrupts();
  const { signal } = interrupts;
  try {
    await startHost(host, options);
    signal.throwIfAborted();
    return await fn(host, signal);
  } catch (error) {
    if (signal.aborted) throw signal.reason as Error;
    throw error;
  } finally {
    try {
      await host.close();
    } finally {
      await metrics?.close();
      interrupts.dispose();
    }
  }
}

/**
 * With `--metrics-port`, installs the global OpenTelemetry meter provider with the Prometheus
 * exporter and serves it on loopback (before the host starts, so its first calls count), and
 * prints `metrics: <url>` on stderr. The OpenTelemetry SDK is loaded only then.
 */
export async function serveHostMetrics(options: GlobalOptions): Promise<MetricsEndpoint | undefined> {
  if (options.metricsPort === undefined) return undefined;
  const { serveMetrics } = await import("./metrics-endpoint.js");
  let endpoint: MetricsEndpoint;
  try {
    endpoint = await serveMetrics(options.metricsPort);
  } catch (error) {
    throw markUsage(new StowageError(Code.FailedPrecondition, `--metrics-port ${String(options.metricsPort)}: ${describeError(error)}`, { cause: error }));
  }
  process.stderr.write(`metrics: ${endpoint.url}\n`);
  return endpoint;
}
