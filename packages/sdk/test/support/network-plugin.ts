/**
 * A fixture plugin executable run in network mode (`--listen`), and gRPC clients for it: mTLS
 * clients that send a `stowage-session` of their choosing, and a plaintext client for the health port.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { connect } from "node:tls";
import { Client, credentials, InterceptingCall, Metadata, type Interceptor } from "@grpc/grpc-js";
import { RpcChannel } from "../../src/host/rpc-channel.js";
import { eventually } from "../../src/testing.js";
import { alive } from "./host.js";

/** A running network-mode plugin process. */
export interface NetworkPlugin {
  /** `HOST:PORT` of the mTLS port, from its listening line. */
  readonly address: string;
  /** `HOST:PORT` of the plaintext health port, when one was asked for. */
  readonly health: string | undefined;
  /** The process. */
  readonly child: ChildProcess;
  /** Its log lines so far (stderr, parsed). */
  readonly logs: Record<string, unknown>[];
  /** Its exit status, once it exits. */
  readonly exited: Promise<number | null>;
  /** Kills it (if still running) and waits for it to be gone. */
  stop(): Promise<void>;
}

/** What a process that must refuse to start printed, and its status. */
export interface RefusedStart {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
}

function run(fixture: string, args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  // No magic cookie in the environment: network mode needs none.
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== "STOWAGE_PLUGIN" && k !== "VELERO_PLUGIN"));
  return spawn(process.execPath, [fixture, ...args], { env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
}

/** Starts `fixture` with `args` and waits for its listening line. */
export async function startNetworkPlugin(fixture: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<NetworkPlugin> {
  const child = run(fixture, args, env);
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  let stdout = "";
  let pendingErr = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => {
    stderr += text;
    pendingErr += text;
    const lines = pendingErr.split("\n");
    pendingErr = lines.pop() ?? "";
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ "@message": line });
      }
    }
  });
  child.stdout?.setEncoding("utf8").on("data", (text: string) => {
    stdout += text;
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const line = await eventually(
    () => {
      if (gone) throw new Error(`the plugin exited before listening; stderr:\n${stderr}`);
      const first = stdout.split("\n");
      return first.length > 1 ? (first[0] ?? "") : undefined;
    },
    { what: "the listening line", timeoutMs: 20_000 },
  );
  const parsed = JSON.parse(line) as { listening: string; health?: string };
  return {
    address: parsed.listening,
    health: parsed.health,
    child,
    logs,
    exited,
    async stop() {
      if (child.pid !== undefined && alive(child.pid) && child.exitCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/** Runs `fixture` with `args`, which must make it refuse to start; returns what it said. */
export async function refusedStart(fixture: string, args: readonly string[]): Promise<RefusedStart> {
  const child = run(fixture, args, {});
  let stderr = "";
  let stdout = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  child.stdout?.setEncoding("utf8").on("data", (text: string) => (stdout += text));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stderr, stdout };
}

/** The PEM texts a client presents and trusts. */
export interface ClientTls {
  /** The CA the client trusts for the server's certificate. */
  readonly ca: string;
  /** The client's certificate, if it presents one. */
  readonly cert?: string | undefined;
  /** Its private key. */
  readonly key?: string | undefined;
}

/** An mTLS gRPC client of a network-mode plugin. */
export interface NetworkClient {
  readonly channel: RpcChannel;
  readonly client: Client;
  close(): void;
}

/** Adds `stowage-session: <session>` to every call. */
function sessionInterceptor(session: string): Interceptor {
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata: Metadata, listener, next) {
        metadata.set("stowage-session", session);
        next(metadata, listener);
      },
    });
}

/** A client on its own connection, sending `session` (none when undefined) with every call. */
export function networkClient(address: string, tls: ClientTls, session: string | undefined): NetworkClient {
  const creds =
    tls.cert === undefined || tls.key === undefined
      ? credentials.createSsl(Buffer.from(tls.ca))
      : credentials.createSsl(Buffer.from(tls.ca), Buffer.from(tls.key), Buffer.from(tls.cert));
  const client = new Client(address, creds, {
    "grpc.use_local_subchannel_pool": 1,
    // The server's certificate also names localhost; TLS names no IP address as the server's name.
    "grpc.ssl_target_name_override": "localhost",
    ...(session === undefined ? {} : { interceptors: [sessionInterceptor(session)] }),
  });
  return { client, channel: new RpcChannel(client), close: () => client.close() };
}

/** A plaintext client (the health port). */
export function plaintextChannel(address: string): NetworkClient {
  const client = new Client(address, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  return { client, channel: new RpcChannel(client), close: () => client.close() };
}

/** The serial number of the certificate the server presents to a new TLS connection (ALPN h2). */
export async function serverSerial(address: string, tls: ClientTls): Promise<string> {
  const at = address.lastIndexOf(":");
  const socket = connect({
    host: address.slice(0, at),
    port: Number(address.slice(at + 1)),
    ca: tls.ca,
    ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
    ALPNProtocols: ["h2"],
    servername: "localhost",
  });
  try {
    await once(socket, "secureConnect");
    return socket.getPeerCertificate().serialNumber;
  } finally {
    socket.destroy();
  }
}

/** A random session value, as a host makes one per connection. */
export function newSession(): string {
  return `test-${crypto.randomUUID().replaceAll("-", "")}`;
}
