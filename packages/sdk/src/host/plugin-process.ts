/**
 * One launch of a plugin executable: spawn with the go-plugin environment, read and check the
 * handshake, connect over gRPC, drain stdio, forward stderr, ask which plugins it serves, and stop
 * it (Shutdown RPC, short wait, SIGKILL).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { EmptySchema as ProtoEmptySchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import { EmptySchema as ControllerEmptySchema, GRPCController } from "../gen/plugin/grpc_controller_pb.js";
import { GRPCStdio, StdioData_Channel, type StdioData } from "../gen/plugin/grpc_stdio_pb.js";
import type { Logger } from "../logging.js";
import { ENV } from "../protocol/constants.js";
import { parseHandshake } from "../protocol/handshake.js";
import { methodCodec } from "../wire/rpc.js";
import { commandLabel, commandName, type PluginCommand } from "./command-line.js";
import { StderrForwarder } from "./log-forward.js";
import type { ExecutableInfo, ExecutableListing, HostProtocolAdapter, LaunchedProcess } from "./protocol-adapter.js";
import { RpcChannel } from "./rpc-channel.js";

/** Launch settings. */
export interface LaunchOptions {
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
  /** Whether the host moves bodies over data channels (then an advertised one is checked at launch). */
  readonly dataChannel: boolean;
}

/** How a plugin process ended. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
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
export class PluginProcess implements LaunchedProcess {
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
  #unresponsive: string | undefined;

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

  /** The executable's name, for messages. */
  get name(): string {
    return commandName(this.command);
  }

  /** The name its log lines are tagged with. */
  get label(): string {
    return commandLabel(this.command);
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

  /** Why the host declared the process unresponsive (and killed it), if it did. */
  get unresponsive(): string | undefined {
    return this.#unresponsive;
  }

  /** Declares the process unresponsive and kills it: its in-flight calls fail with {@link unresponsiveError}. */
  killUnresponsive(detail: string): void {
    this.#unresponsive ??= detail;
    this.kill();
  }

  /** The error in-flight calls fail with when the host killed this process for not answering. */
  unresponsiveError(cause?: unknown): StowageError {
    return new StowageError(
      Code.Unavailable,
      `plugin process ${commandLabel(this.command)} (pid ${String(this.pid)}) stopped answering and the host killed it during the call: ${this.#unresponsive ?? "it did not answer"}; the next call starts it again`,
      { reason: Reason.PluginUnresponsive, metadata: { command: this.command.command }, cause },
    );
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
  static async launch(command: PluginCommand, adapter: HostProtocolAdapter, options: LaunchOptions): Promise<PluginProcess> {
    installExitHook();
    const logger = options.logger.child({ plugin: commandLabel(command) });
    const socketDir = await mkdtemp(join(tmpdir(), "stowage-"));
    const appVersion = adapter.appVersion;
    const child = spawn(command.command, [...(command.args ?? [])], {
      env: {
        ...withoutKeys(process.env, adapter.withheldEnv),
        ...command.env,
        [adapter.cookie.key]: adapter.cookie.value,
        [ENV.protocolVersions]: String(appVersion),
        [ENV.unixSocketDir]: socketDir,
        [ENV.minPort]: "10000",
        [ENV.maxPort]: "25000",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    live.add(child);
    const stderr = new StderrForwarder(logger);
    // Held back until the plugin has started: a start-up failure quotes these lines in its error.
    stderr.hold();
    const stderrClosed = child.stderr === null ? Promise.resolve() : once(child.stderr, "close").then(() => undefined, () => undefined);
    if (child.stderr !== null) stderr.attach(child.stderr);
    const exited = new Promise<ExitInfo>((resolve) => {
      child.once("exit", (code, signal) => {
        live.delete(child);
        resolve({ code, signal });
      });
    });
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const fail = async (message: string | ((tail: string) => string)): Promise<never> => {
      child.kill("SIGKILL");
      await Promise.race([exited, sleep(1000)]);
      // The last lines may still be on their way.
      await Promise.race([stderrClosed, sleep(500)]);
      await rm(socketDir, { recursive: true, force: true });
      stderr.discard();
      const tail = stderr.tail();
      const text = typeof message === "string" ? message : message(tail);
      throw new StowageError(Code.FailedPrecondition, `plugin ${commandName(command)}: ${text}${tail === "" ? "" : `\nIts stderr said:\n${tail}`}`, {
        metadata: { command: command.command },
      });
    };

    let line: string;
    try {
      line = await readFirstLine(child, exited, spawnError, options.handshakeTimeoutMs);
    } catch (error) {
      if (error instanceof EarlyExit) return fail((tail) => error.describe(tail, adapter));
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
    adapter.connected?.(client, logger);
    let info: ExecutableListing;
    try {
      info = await adapter.describe(channel, options.handshakeTimeoutMs, logger);
    } catch (error) {
      client.close();
      const converted = StowageError.from(error);
      const hint = converted.code === Code.Unimplemented ? adapter.notServedHint : converted.rawMessage;
      return fail(`${adapter.describeMethod} failed: ${hint}`);
    }
    if (info.problems.length > 0) {
      client.close();
      return fail(`its ${adapter.describeMethod} answer breaks the contract, so the host refuses it:\n- ${info.problems.join("\n- ")}`);
    }
    if (info.dataChannelAddress !== "" && options.dataChannel) {
      const problem = await checkDataChannel(info.dataChannelAddress, Math.min(options.handshakeTimeoutMs, 5000));
      if (problem !== undefined) {
        logger.warn(
          { dataChannelAddress: info.dataChannelAddress },
          `plugin ${commandName(command)} advertises a data channel that cannot be used (${problem}); its object bodies will travel in gRPC messages instead`,
        );
        info = { ...info, dataChannelAddress: "" };
      }
    }
    stderr.release();
    logger.debug({ pid: child.pid, plugins: info.plugins.map((p) => `${p.kind}:${p.name}`), runtime: info.runtime }, "plugin started");
    const processHandle = new PluginProcess({ command, child, channel, info: executableInfo(info), exited, stderr });
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
        finish(new EarlyExit(exit, buffered));
      });
    });
  });
}

/**
 * What go-plugin (and the Stowage SDK) print on stderr before exiting with status 1 when the
 * magic cookie they expect is missing from the environment.
 */
const COOKIE_REFUSAL = /not meant to be executed directly/i;

/** A plugin that exited before its handshake. */
class EarlyExit extends Error {
  readonly exit: ExitInfo;
  readonly stdout: string;

  constructor(exit: ExitInfo, stdout: string) {
    super(`${describeExit(exit)} before completing the handshake`);
    this.exit = exit;
    this.stdout = stdout;
  }

  /**
   * The message, with a hint about the magic cookie only where the evidence supports it: status 1
   * with go-plugin's refusal on stderr (it expects another cookie), or status 1 in silence (it may).
   * A plugin that said something else understood the cookie and failed for its own reasons.
   */
  describe(stderrTail: string, adapter: HostProtocolAdapter): string {
    let hint = "";
    if (this.exit.code === 1 && COOKIE_REFUSAL.test(stderrTail)) {
      hint = ` — it lacks the magic cookie it expects (it was given ${adapter.cookie.key}), so it is not a ${adapter.title} plugin${adapter.cookieRefusalHint}`;
    } else if (this.exit.code === 1 && stderrTail === "" && this.stdout === "") {
      hint = ` without saying why; a go-plugin binary does this when it lacks the magic cookie it expects, so it may not be a ${adapter.title} plugin`;
    }
    return `${this.message}${hint}${this.stdout === "" ? "" : `; stdout had ${JSON.stringify(this.stdout.slice(0, 200))}`}`;
  }
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

/**
 * Checks an advertised data-channel address (contract 2.6.1): `unix:` and an absolute path of a
 * Unix socket that accepts a connection. Returns what is wrong, or undefined when it is usable. The
 * probe connection sends no token and is closed at once; the plugin drops it (clause 2.6.6).
 */
export async function checkDataChannel(address: string, timeoutMs: number): Promise<string | undefined> {
  if (!address.startsWith("unix:")) return `the address ${JSON.stringify(address)} does not start with "unix:"`;
  const path = address.slice("unix:".length);
  if (!isAbsolute(path)) return `the path ${JSON.stringify(path)} is not absolute`;
  const info = await stat(path).catch((error: unknown) => error as NodeJS.ErrnoException);
  if (info instanceof Error) return `${path}: ${info.code === "ENOENT" ? "no such file" : info.message}`;
  if (!info.isSocket()) return `${path} is not a Unix socket`;
  const socket = connect({ path });
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => {
        resolve(`connecting to ${path} took longer than ${String(timeoutMs)} ms`);
      }, timeoutMs);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      socket.once("error", (error) => {
        clearTimeout(timer);
        resolve(`connecting to ${path} failed: ${error.message}`);
      });
    });
  } finally {
    socket.destroy();
  }
}

/** The listing without its (empty) problem list. */
function executableInfo(listing: ExecutableListing): ExecutableInfo {
  return { contractVersion: listing.contractVersion, runtime: listing.runtime, plugins: listing.plugins, dataChannelAddress: listing.dataChannelAddress };
}

/** The host's environment without `keys` (another protocol's cookie). */
function withoutKeys(env: NodeJS.ProcessEnv, keys: readonly string[]): NodeJS.ProcessEnv {
  const copy = { ...env };
  // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- copying an environment map
  for (const key of keys) delete copy[key];
  return copy;
}
