/**
 * One launch of a plugin executable: spawn with the go-plugin environment, read and check the
 * handshake, connect over gRPC, drain stdio, forward stderr, ask which plugins it serves, and stop
 * it (Shutdown RPC, short wait, SIGKILL).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { EmptySchema as ProtoEmptySchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import { EmptySchema as ControllerEmptySchema, GRPCController } from "../gen/plugin/grpc_controller_pb.js";
import { GRPCStdio, StdioData_Channel, type StdioData } from "../gen/plugin/grpc_stdio_pb.js";
import { PluginInfoService, GetPluginInfoRequestSchema } from "../gen/stowage/v1/plugin_info_pb.js";
import type { Logger } from "../logging.js";
import { APP_PROTOCOL_VERSION, ENV, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "../protocol/constants.js";
import { parseHandshake } from "../protocol/handshake.js";
import type { PluginDescriptor } from "../types.js";
import { descriptorFromWire, kindFromWire } from "../wire/convert.js";
import { methodCodec } from "../wire/rpc.js";
import { StderrForwarder } from "./log-forward.js";
import { RpcChannel } from "./rpc-channel.js";
// Velero interop hook (docs/velero.md).
import { VELERO_APP_PROTOCOL_VERSION, VELERO_COOKIE_KEY, VELERO_COOKIE_VALUE } from "../velero/constants.js";
import { drainBroker, listVeleroPlugins } from "../velero/host.js";

/** How to start a plugin executable. */
export interface PluginCommand {
  /** Path of the executable. */
  readonly command: string;
  /** Extra arguments. */
  readonly args?: readonly string[] | undefined;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>> | undefined;
  /** Name used in logs (default: the executable's file name, or the script's for `node script`). */
  readonly label?: string | undefined;
  /**
   * The protocol the executable speaks: `stowage` (default) or `velero` for an unmodified Velero
   * plugin binary (started with `VELERO_PLUGIN=hello`, protocol version 2, asked with
   * `generated.PluginLister`; see docs/velero.md).
   */
  readonly protocol?: "stowage" | "velero" | undefined;
}

/** The name a command is logged under. */
export function commandLabel(command: PluginCommand): string {
  if (command.label !== undefined) return command.label;
  const exe = basename(command.command);
  const script = command.args?.find((arg) => !arg.startsWith("-"));
  return /^node(\.exe)?$/.test(exe) && script !== undefined ? basename(script) : exe;
}

/** Launch settings. */
export interface LaunchOptions {
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
}

/** How a plugin process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** What GetPluginInfo reported. */
export interface ExecutableInfo {
  readonly contractVersion: string;
  readonly runtime: string;
  readonly plugins: readonly PluginDescriptor[];
  readonly dataChannelAddress: string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills every plugin child still running when the host process exits, so none is orphaned. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of live) child.kill("SIGKILL");
  });
}

function describeExit(exit: ExitInfo): string {
  return exit.signal !== null ? `was killed by ${exit.signal}` : `exited with status ${String(exit.code)}`;
}

/** A running plugin process and its gRPC connection. */
export class PluginProcess {
  readonly command: PluginCommand;
  readonly pid: number;
  readonly channel: RpcChannel;
  readonly info: ExecutableInfo;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  readonly #child: ChildProcess;
  readonly #stderr: StderrForwarder;
  #exit: ExitInfo | undefined;
  #stopping = false;

  private constructor(fields: {
    command: PluginCommand;
    child: ChildProcess;
    channel: RpcChannel;
    info: ExecutableInfo;
    exited: Promise<ExitInfo>;
    stderr: StderrForwarder;
  }) {
    this.command = fields.command;
    this.#child = fields.child;
    this.pid = fields.child.pid ?? -1;
    this.channel = fields.channel;
    this.info = fields.info;
    this.exited = fields.exited;
    this.#stderr = fields.stderr;
    void this.exited.then((exit) => {
      this.#exit = exit;
    });

  }

  /** Whether the process has exited. */
  get hasExited(): boolean {
    return this.#exit !== undefined;
  }

  /** Whether {@link stop} was called. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** The plugin's last stderr lines. */
  stderrTail(): string {
    return this.#stderr.tail();
  }

  /** The error in-flight calls fail with when this process dies. */
  crashError(exit: ExitInfo, cause?: unknown): StowageError {
    const tail = this.stderrTail();
    return new StowageError(
      Code.Unavailable,
      `plugin process ${commandLabel(this.command)} (pid ${String(this.pid)}) ${describeExit(exit)} during the call; the next call restarts it${tail === "" ? "" : `. Its last stderr lines:\n${tail}`}`,
      { reason: Reason.PluginCrashed, metadata: { command: this.command.command, exit_code: String(exit.code), signal: exit.signal ?? "" }, cause },
    );
  }

  /**
   * Launches `command`, completes the handshake and asks which plugins it serves. Every failure is
   * a StowageError that names the executable, says what went wrong and quotes its stderr tail; the
   * process is killed before the error is thrown.
   */
  static async launch(command: PluginCommand, options: LaunchOptions): Promise<PluginProcess> {
    installExitHook();
    const logger = options.logger.child({ plugin: commandLabel(command) });
    const socketDir = await mkdtemp(join(tmpdir(), "stowage-"));
    const velero = command.protocol === "velero"; // Velero interop hook
    const appVersion = velero ? VELERO_APP_PROTOCOL_VERSION : APP_PROTOCOL_VERSION;
    const child = spawn(command.command, [...(command.args ?? [])], {
      env: {
        ...(velero ? withoutKey(process.env, MAGIC_COOKIE_KEY) : process.env),
        ...command.env,
        ...(velero ? { [VELERO_COOKIE_KEY]: VELERO_COOKIE_VALUE } : { [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE }),
        [ENV.protocolVersions]: String(appVersion),
        [ENV.unixSocketDir]: socketDir,
        [ENV.minPort]: "10000",
        [ENV.maxPort]: "25000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(child);
    const stderr = new StderrForwarder(logger);
    if (child.stderr !== null) stderr.attach(child.stderr);
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once("exit", (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
    });
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const fail = async (message: string): Promise<never> => {
      child.kill("SIGKILL");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
      await rm(socketDir, { recursive: true, force: true });
      const tail = stderr.tail();
      throw new StowageError(Code.FailedPrecondition, `plugin ${command.command}: ${message}${tail === "" ? "" : `\nIts stderr said:\n${tail}`}`, {
        metadata: { command: command.command },
      });
    };

    let line: string;
    try {
      line = await readFirstLine(child, exited, spawnError, options.handshakeTimeoutMs);
    } catch (error) {
      return fail((error as Error).message);
    }
    let handshake;
    try {
      handshake = parseHandshake(line, { appVersions: [appVersion] });
    } catch (error) {
      return fail((error as StowageError).rawMessage);
    }
    child.stdout?.on("data", (chunk: Buffer) => {
      logger.debug({ bytes: chunk.length }, "ignoring output on stdout after the handshake");
    });
    const target = handshake.network === "unix" ? `unix:${handshake.address}` : handshake.address;
    const client = new Client(target, credentials.createInsecure(), {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      "grpc.default_authority": "localhost",
      "grpc.enable_retries": 0,
    });
    const channel = new RpcChannel(client);
    drainStdio(client, logger);
    if (velero) drainBroker(client, logger); // Velero interop hook
    let info: ExecutableInfo;
    try {
      info = velero ? await fetchVeleroInfo(channel, options.handshakeTimeoutMs, logger) : await fetchInfo(channel, options.handshakeTimeoutMs);
    } catch (error) {
      client.close();
      const converted = StowageError.from(error);
      const hint =
        converted.code === Code.Unimplemented
          ? velero
            ? "it does not serve generated.PluginLister, so it is not a Velero plugin"
            : "it does not serve stowage.v1.PluginInfoService, so it is not a Stowage plugin"
          : converted.rawMessage;
      return fail(`${velero ? "ListPlugins" : "GetPluginInfo"} failed: ${hint}`);
    }
    logger.debug({ pid: child.pid, plugins: info.plugins.map((p) => `${p.kind}:${p.name}`), runtime: info.runtime }, "plugin started");
    const processHandle = new PluginProcess({ command, child, channel, info, exited, stderr });
    void exited.then(async (exit) => {
      client.close();
      await rm(socketDir, { recursive: true, force: true });
      if (!processHandle.#stopping) logger.warn({ pid: child.pid, code: exit.code, signal: exit.signal }, `plugin process ${describeExit(exit)}`);
      else logger.debug({ pid: child.pid, code: exit.code, signal: exit.signal }, "plugin process exited");
    });
    return processHandle;
  }

  /**
   * Stops the process: Shutdown RPC, up to `graceMs` for it to exit, then SIGKILL. Resolves when it
   * has exited.
   */
  async stop(graceMs: number): Promise<ExitInfo> {
    this.#stopping = true;
    if (this.#exit !== undefined) return this.#exit;
    const codec = methodCodec(GRPCController.method.shutdown);
    await Promise.race([
      new Promise<void>((resolve) => {
        this.channel.client.makeUnaryRequest(
          codec.path,
          codec.serializeRequest,
          codec.deserializeResponse,
          create(ControllerEmptySchema),
          new Metadata(),
          { deadline: Date.now() + graceMs },
          () => {
            resolve();
          },
        );
      }),
      this.exited,
    ]);
    const killer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    const exit = await this.exited;
    clearTimeout(killer);
    return exit;
  }

  /** Kills the process at once (SIGKILL). */
  kill(): void {
    this.#stopping = true;
    this.#child.kill("SIGKILL");
  }
}

async function readFirstLine(child: ChildProcess, exited: Promise<ExitInfo>, spawnError: Promise<Error>, timeoutMs: number): Promise<string> {
  const stdout = child.stdout;
  if (stdout === null) throw new Error("has no stdout");
  return new Promise<string>((resolve, reject) => {
    let buffered = "";
    let settled = false;
    const finish = (error: Error | undefined, line?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stdout.off("data", onData);
      if (error !== undefined) reject(error);
      else resolve(line ?? "");
    };
    const onData = (chunk: Buffer): void => {
      buffered += chunk.toString("utf8");
      const newline = buffered.indexOf("\n");
      if (newline >= 0) finish(undefined, buffered.slice(0, newline));
      else if (buffered.length > 4096) finish(new Error(`printed ${String(buffered.length)} bytes on stdout without a handshake line: ${JSON.stringify(buffered.slice(0, 200))}`));
    };
    stdout.on("data", onData);
    const timer = setTimeout(() => {
      finish(new Error(`printed no handshake line within ${String(timeoutMs)} ms; it may be hung, or not a Stowage plugin`));
    }, timeoutMs);
    void spawnError.then((error) => {
      finish(new Error(`could not be started: ${error.message}. Check that the file exists and is executable`));
    });
    void exited.then((exit) => {
      // Let a final stdout chunk arrive before declaring the early exit.
      setImmediate(() => {
        const hint =
          exit.code === 1
            ? " — a plugin does this when it lacks the magic cookie it expects: the file is probably not a Stowage plugin (Velero's plugins expect VELERO_PLUGIN)"
            : "";
        finish(new Error(`${describeExit(exit)} before completing the handshake${hint}${buffered === "" ? "" : `; stdout had ${JSON.stringify(buffered.slice(0, 200))}`}`));
      });
    });
  });
}

function drainStdio(client: Client, logger: Logger): void {
  const codec = methodCodec(GRPCStdio.method.streamStdio);
  const stream = client.makeServerStreamRequest(codec.path, codec.serializeRequest, codec.deserializeResponse, create(ProtoEmptySchema), new Metadata(), {});
  stream.on("data", (data: StdioData) => {
    const text = Buffer.from(data.data).toString("utf8").trimEnd();
    if (text === "") return;
    if (data.channel === StdioData_Channel.STDERR) logger.info({ channel: "stderr" }, text);
    else logger.debug({ channel: "stdout" }, text);
  });
  stream.on("error", () => {
    // The stream ends with an error when the plugin stops; nothing to report.
  });
}

async function fetchInfo(channel: RpcChannel, timeoutMs: number): Promise<ExecutableInfo> {
  const res = await channel.unary(PluginInfoService.method.getPluginInfo, create(GetPluginInfoRequestSchema), { timeoutMs });
  const plugins: PluginDescriptor[] = [];
  for (const d of res.plugins) {
    const kind = kindFromWire(d.kind);
    if (kind !== undefined) plugins.push(descriptorFromWire(d, kind));
  }
  if (!/^1\.\d+$/.test(res.contractVersion)) {
    throw new StowageError(Code.FailedPrecondition, `the plugin implements contract ${JSON.stringify(res.contractVersion)}; this host speaks 1.x`);
  }
  return { contractVersion: res.contractVersion, runtime: res.runtime, plugins, dataChannelAddress: res.dataChannelAddress };
}

/** Velero interop hook: what `generated.PluginLister/ListPlugins` reported, as ExecutableInfo. */
async function fetchVeleroInfo(channel: RpcChannel, timeoutMs: number, logger: Logger): Promise<ExecutableInfo> {
  const listing = await listVeleroPlugins(channel, timeoutMs);
  if (listing.ignored.length > 0) logger.debug({ ignored: listing.ignored }, "ignoring Velero plugin kinds Stowage does not map");
  return { contractVersion: `velero/${String(VELERO_APP_PROTOCOL_VERSION)}`, runtime: "velero-plugin (go-plugin)", plugins: listing.plugins, dataChannelAddress: "" };
}

/** Velero interop hook: the host's environment without our cookie (a Velero plugin gets Velero's only). */
function withoutKey(env: NodeJS.ProcessEnv, key: string): NodeJS.ProcessEnv {
  const copy = { ...env };
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- copying an environment map
  delete copy[key];
  return copy;
}
