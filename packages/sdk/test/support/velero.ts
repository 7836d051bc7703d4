/** Helpers of the Velero interop tests: launch an executable as Velero does and call it with grpc-js. */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { methodCodec } from "../../src/wire/rpc.js";

type Method<I extends DescMessage, O extends DescMessage> = DescMethod & { input: I; output: O };

/** A plugin process started the way Velero starts one. */
export interface VeleroLaunch {
  readonly child: ChildProcess;
  readonly handshake: string;
  readonly client: Client;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `command args` with Velero's environment and reads the handshake line. */
export async function launchLikeVelero(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<VeleroLaunch> {
  const socketDir = await mkdtemp(join(tmpdir(), "vt-"));
  const child = spawn(command, [...args], {
    env: { ...process.env, VELERO_PLUGIN: "hello", PLUGIN_PROTOCOL_VERSIONS: "2", PLUGIN_MIN_PORT: "10000", PLUGIN_MAX_PORT: "25000", PLUGIN_UNIX_SOCKET_DIR: socketDir, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  child.stderr?.on("data", (c: Buffer) => (err += c.toString("utf8")));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const handshake = await new Promise<string>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`no handshake; stderr: ${err}`)), 20_000);
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString("utf8");
      const nl = out.indexOf("\n");
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    void exited.then(() => reject(new Error(`exited before the handshake; stderr: ${err}`)));
  });
  const address = handshake.split("|")[3] ?? "";
  const client = new Client(`unix:${address}`, credentials.createInsecure(), { "grpc.max_receive_message_length": -1 });
  return { child, handshake, client, stderr: () => err, exited };
}

/** A unary call; rejects with the grpc-js ServiceError. */
export function unary<I extends DescMessage, O extends DescMessage>(client: Client, method: Method<I, O>, request: MessageInitShape<I>): Promise<MessageShape<O>> {
  const codec = methodCodec(method);
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(codec.path, codec.serializeRequest, codec.deserializeResponse, create(method.input, request), new Metadata(), {}, (error, res) => {
      if (error !== null || res === undefined) reject(error ?? new Error("no response"));
      else resolve(res);
    });
  });
}

/** A client-streaming call with the given messages. */
export function clientStream<I extends DescMessage, O extends DescMessage>(client: Client, method: Method<I, O>, messages: readonly MessageInitShape<I>[]): Promise<MessageShape<O>> {
  const codec = methodCodec(method);
  return new Promise((resolve, reject) => {
    const call = client.makeClientStreamRequest(codec.path, codec.serializeRequest, codec.deserializeResponse, new Metadata(), {}, (error, res) => {
      if (error !== null || res === undefined) reject(error ?? new Error("no response"));
      else resolve(res);
    });
    for (const m of messages) call.write(create(method.input, m));
    call.end();
  });
}

/** A server-streaming call, collected. */
export async function serverStream<I extends DescMessage, O extends DescMessage>(client: Client, method: Method<I, O>, request: MessageInitShape<I>): Promise<MessageShape<O>[]> {
  const codec = methodCodec(method);
  const call = client.makeServerStreamRequest(codec.path, codec.serializeRequest, codec.deserializeResponse, create(method.input, request), new Metadata(), {});
  const out: MessageShape<O>[] = [];
  for await (const m of call) out.push(m as MessageShape<O>);
  return out;
}

/** Whether `e` is a grpc-js ServiceError. */
export function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number";
}
