/**
 * Launching a plugin executable outside the host, as go-plugin would, to check the process
 * protocol itself: the handshake line, standard output staying quiet, health, SIGINT, Shutdown
 * and the cookie check. Uses only the public handshake parser, grpc-js and the kit's own generated
 * messages (`src/gen`, from the same `.proto` files as the SDK's but not the SDK's code).
 *
 * @packageDocumentation
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { Client, credentials, Metadata, type ServiceError, type status, type StatusObject } from "@grpc/grpc-js";
import { APP_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "@stowage/sdk";
import { parseHandshake, type Handshake, type PluginCommand } from "@stowage/sdk/host";
import { HealthCheckRequestSchema, HealthCheckResponseSchema } from "../gen/grpc/health/v1/health_pb.js";

/** How a process ended. */
export interface Exit {
  /** Exit status, or null when killed by a signal. */
  readonly code: number | null;
  /** The signal, or null. */
  readonly signal: NodeJS.Signals | null;
}

/** Health status values of `grpc.health.v1.HealthCheckResponse.ServingStatus`. */
export const SERVING_STATUS = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"] as const;

/** Environment variable carrying Velero's magic cookie (go-plugin handshake of Velero). */
export const VELERO_COOKIE_KEY = "VELERO_PLUGIN";
/** Value of Velero's magic cookie. */
export const VELERO_COOKIE_VALUE = "hello";
/** The application protocol version Velero negotiates. */
export const VELERO_APP_PROTOCOL_VERSION = 2;

/** Which protocol a command speaks: `velero` when the command says so, else Stowage's. */
export function protocolOf(command: PluginCommand): "stowage" | "velero" {
  return command.protocol === "velero" ? "velero" : "stowage";
}

/** The application protocol version a command's protocol uses. */
export function appVersionOf(command: PluginCommand): number {
  return protocolOf(command) === "velero" ? VELERO_APP_PROTOCOL_VERSION : APP_PROTOCOL_VERSION;
}

function environment(command: PluginCommand, withCookie: boolean, socketDir: string): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries({ ...process.env, ...command.env }).filter(([key]) => key !== MAGIC_COOKIE_KEY && key !== VELERO_COOKIE_KEY));
  const env: NodeJS.ProcessEnv = { ...base, PLUGIN_PROTOCOL_VERSIONS: String(appVersionOf(command)), PLUGIN_UNIX_SOCKET_DIR: socketDir };
  // Without the cookie: neither Stowage's nor Velero's (an executable may serve both).
  if (!withCookie) return env;
  // With the cookie of the protocol the command speaks, exactly as that protocol's host sets it.
  return protocolOf(command) === "velero" ? { ...env, [VELERO_COOKIE_KEY]: VELERO_COOKIE_VALUE } : { ...env, [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE };
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once("exit", (code, signal) => {
      resolve({ code, signal });
    });
  });
}

/** What a run without the cookie produced. */
export interface CookielessRun {
  /** How it ended, or undefined when it was still running after the time limit (it is then killed). */
  readonly exit: Exit | undefined;
  /** Everything written to standard output. */
  readonly stdout: string;
  /** Everything written to standard error. */
  readonly stderr: string;
}

/** Starts the executable without the magic cookie and waits up to `timeoutMs` for it to exit. */
export async function runWithoutCookie(command: PluginCommand, timeoutMs: number): Promise<CookielessRun> {
  const socketDir = await mkdtemp(join(tmpdir(), "stowage-conf-"));
  try {
    const child = spawn(command.command, [...(command.args ?? [])], { env: environment(command, false, socketDir), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    child.stderr?.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      exitOf(child),
      spawnError,
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => {
          resolve(undefined);
        }, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (outcome instanceof Error) throw outcome;
    if (outcome === undefined) {
      child.kill("SIGKILL");
      await exitOf(child);
    } else {
      // Let the pipes drain.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { exit: outcome, stdout, stderr };
  } finally {
    await rm(socketDir, { recursive: true, force: true });
  }
}

/** Deadline and cancellation of a raw call. */
export interface RawCallOptions {
  /** Deadline, in milliseconds from now. */
  readonly timeoutMs: number;
  /** Cancels the call. */
  readonly signal?: AbortSignal | undefined;
}

/** How a stream ended: its gRPC status code and details. */
export interface StreamEnd {
  /** The status code. */
  readonly code: status;
  /** The status details. */
  readonly details: string;
}

/** An open `plugin.GRPCStdio/StreamStdio` stream. */
export interface StdioStream {
  /** Resolves when the stream ends, for whatever reason. */
  readonly ended: Promise<StreamEnd>;
  /** Messages received so far. */
  readonly received: number;
  /** Cancels the stream, as a host does when it closes the connection. */
  cancel(): void;
}

/**
 * A plugin process started by the kit itself, with the cookie of its protocol (Stowage's, or
 * Velero's `VELERO_PLUGIN=hello` with protocol version 2 for `protocol: "velero"`), connected over gRPC.
 */
export class RawPlugin {
  /** The parsed handshake. */
  readonly handshake: Handshake;
  /** The raw first line. */
  readonly line: string;
  /** The process. */
  readonly child: ChildProcess;
  /** Resolves when the process exits. */
  readonly exited: Promise<Exit>;
  readonly #client: Client;
  readonly #socketDir: string;
  readonly #extraStdout: Buffer[];
  readonly #stderr: { text: string };

  private constructor(fields: {
    handshake: Handshake;
    line: string;
    child: ChildProcess;
    exited: Promise<Exit>;
    client: Client;
    socketDir: string;
    extraStdout: Buffer[];
    stderr: { text: string };
  }) {
    this.handshake = fields.handshake;
    this.line = fields.line;
    this.child = fields.child;
    this.exited = fields.exited;
    this.#client = fields.client;
    this.#socketDir = fields.socketDir;
    this.#extraStdout = fields.extraStdout;
    this.#stderr = fields.stderr;
  }

  /**
   * Starts the executable with its protocol's cookie and a private socket directory, reads and
   * parses the first line of standard output (requiring that protocol's application version) and connects. Throws when no valid handshake arrives within
   * `timeoutMs` (the process is killed).
   */
  static async launch(command: PluginCommand, timeoutMs: number): Promise<RawPlugin> {
    const socketDir = await mkdtemp(join(tmpdir(), "stowage-conf-"));
    const child = spawn(command.command, [...(command.args ?? [])], { env: environment(command, true, socketDir), stdio: ["ignore", "pipe", "pipe"] });
    const exited = exitOf(child);
    const stderr = { text: "" };
    child.stderr?.setEncoding("utf8").on("data", (text: string) => {
      stderr.text = (stderr.text + text).slice(-8192);
    });
    const extraStdout: Buffer[] = [];
    let line: string;
    try {
      line = await new Promise<string>((resolve, reject) => {
        let buffered = Buffer.alloc(0);
        const timer = setTimeout(() => {
          reject(new Error(`no handshake line within ${String(timeoutMs)} ms`));
        }, timeoutMs);
        const onData = (chunk: Buffer): void => {
          buffered = Buffer.concat([buffered, chunk]);
          const newline = buffered.indexOf(0x0a);
          if (newline >= 0) {
            clearTimeout(timer);
            child.stdout?.off("data", onData);
            const rest = buffered.subarray(newline + 1);
            if (rest.length > 0) extraStdout.push(rest);
            child.stdout?.on("data", (more: Buffer) => extraStdout.push(more));
            resolve(buffered.subarray(0, newline).toString("utf8"));
          }
        };
        child.stdout?.on("data", onData);
        child.once("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
        void exited.then((exit) => {
          setTimeout(() => {
            clearTimeout(timer);
            reject(new Error(`exited (${exit.signal ?? `status ${String(exit.code)}`}) before writing a handshake line`));
          }, 50);
        });
      });
    } catch (error) {
      child.kill("SIGKILL");
      await rm(socketDir, { recursive: true, force: true });
      throw new Error(`${(error as Error).message}${stderr.text === "" ? "" : `; stderr: ${stderr.text.trim().slice(-500)}`}`, { cause: error });
    }
    let handshake: Handshake;
    try {
      handshake = parseHandshake(line, { appVersions: [appVersionOf(command)] });
    } catch (error) {
      child.kill("SIGKILL");
      await rm(socketDir, { recursive: true, force: true });
      throw error;
    }
    const target = handshake.network === "unix" ? `unix:${handshake.address}` : handshake.address;
    const client = new Client(target, credentials.createInsecure(), { "grpc.default_authority": "localhost", "grpc.enable_retries": 0 });
    return new RawPlugin({ handshake, line, child, exited, client, socketDir, extraStdout, stderr });
  }

  /** Bytes written to standard output after the handshake line. */
  get extraStdout(): Buffer {
    return Buffer.concat(this.#extraStdout);
  }

  /** The last standard error output. */
  get stderrTail(): string {
    return this.#stderr.text;
  }

  /** Whether the process has exited. */
  get hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /**
   * A unary call: `request` encoded by `input`, the response decoded by `output`; rejects with
   * grpc-js's `ServiceError` (a response that does not decode is one with status INTERNAL).
   * `signal` cancels the call.
   */
  unaryCall<I extends DescMessage, O extends DescMessage>(path: string, input: I, request: MessageShape<I>, output: O, options: RawCallOptions): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      const call = this.#client.makeUnaryRequest(
        path,
        serializer(input),
        deserializer(output),
        request,
        new Metadata(),
        { deadline: Date.now() + options.timeoutMs },
        (error: ServiceError | null, response?: MessageShape<O>) => {
          options.signal?.removeEventListener("abort", cancel);
          if (error !== null) reject(error);
          else resolve(response ?? create(output));
        },
      );
      const cancel = (): void => {
        call.cancel();
      };
      if (options.signal?.aborted === true) cancel();
      else options.signal?.addEventListener("abort", cancel, { once: true });
    });
  }

  /** A server-streaming call: the responses decoded by `output`, in order; the iteration throws the call's error. */
  async *serverStreamCall<I extends DescMessage, O extends DescMessage>(path: string, input: I, request: MessageShape<I>, output: O, options: RawCallOptions): AsyncGenerator<MessageShape<O>> {
    const call = this.#client.makeServerStreamRequest(path, serializer(input), deserializer(output), request, new Metadata(), { deadline: Date.now() + options.timeoutMs });
    const cancel = (): void => {
      call.cancel();
    };
    if (options.signal?.aborted === true) cancel();
    else options.signal?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const message of call as AsyncIterable<MessageShape<O>>) yield message;
    } finally {
      options.signal?.removeEventListener("abort", cancel);
      call.cancel();
    }
  }

  /** A client-streaming call: writes the messages in order (encoded by `input`), half-closes and resolves with the response decoded by `output`. */
  clientStreamCall<I extends DescMessage, O extends DescMessage>(path: string, input: I, messages: readonly MessageShape<I>[], output: O, options: RawCallOptions): Promise<MessageShape<O>> {
    return new Promise((resolve, reject) => {
      const call = this.#client.makeClientStreamRequest(
        path,
        serializer(input),
        deserializer(output),
        new Metadata(),
        { deadline: Date.now() + options.timeoutMs },
        (error: ServiceError | null, response?: MessageShape<O>) => {
          options.signal?.removeEventListener("abort", cancel);
          if (error !== null) reject(error);
          else resolve(response ?? create(output));
        },
      );
      const cancel = (): void => {
        call.cancel();
      };
      if (options.signal?.aborted === true) cancel();
      else options.signal?.addEventListener("abort", cancel, { once: true });
      // grpc-js buffers what the transport has not taken yet; the kit's bodies are small.
      for (const message of messages) call.write(message);
      call.end();
    });
  }

  /** Calls `grpc.health.v1.Health/Check` for `service` and returns the status name. */
  async health(service: string, timeoutMs = 5000): Promise<string> {
    const response = await this.unaryCall("/grpc.health.v1.Health/Check", HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service }), HealthCheckResponseSchema, { timeoutMs });
    const status: number = response.status;
    return SERVING_STATUS[status] ?? `status ${String(status)}`;
  }

  /**
   * Opens `plugin.GRPCStdio/StreamStdio`, as a go-plugin host does right after connecting, and
   * keeps it open until {@link StdioStream.cancel}.
   */
  openStdio(): StdioStream {
    const call = this.#client.makeServerStreamRequest(
      "/plugin.GRPCStdio/StreamStdio",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0), // google.protobuf.Empty
      new Metadata(),
      {},
    );
    let received = 0;
    call.on("data", () => {
      received += 1;
    });
    // grpc-js reports a non-OK end as an error too; the status event carries every end.
    call.on("error", () => undefined);
    const ended = new Promise<StreamEnd>((resolve) => {
      call.on("status", (end: StatusObject) => {
        resolve({ code: end.code, details: end.details });
      });
    });
    return {
      ended,
      get received() {
        return received;
      },
      cancel: () => {
        call.cancel();
      },
    };
  }

  /** Calls `plugin.GRPCController/Shutdown`. */
  async shutdown(timeoutMs = 5000): Promise<void> {
    await this.unaryCall("/plugin.GRPCController/Shutdown", EmptySchema, create(EmptySchema), EmptySchema, { timeoutMs });
  }

  /** Sends a signal to the process. */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Closes the connection, kills the process if it still runs, removes the socket directory. */
  async dispose(): Promise<void> {
    this.#client.close();
    if (!this.hasExited) {
      this.child.kill("SIGKILL");
      await this.exited;
    }
    await rm(this.#socketDir, { recursive: true, force: true });
  }
}

/** grpc-js's serializer for messages of `schema`. */
function serializer<D extends DescMessage>(schema: D): (message: MessageShape<D>) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

/** grpc-js's deserializer for messages of `schema`. */
function deserializer<D extends DescMessage>(schema: D): (bytes: Buffer) => MessageShape<D> {
  return (bytes) => fromBinary(schema, bytes);
}

/** Process IDs whose parent is `pid` (Linux: read from /proc; elsewhere empty). */
export async function childPids(pid: number): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir("/proc");
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // Fields after the command name, which is in parentheses and may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // The process exited meanwhile.
    }
  }
  return children;
}

/** Whether a process with this ID exists (zombies count as gone on Linux). */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = await readFile(`/proc/${String(pid)}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
  } catch {
    return true;
  }
}
