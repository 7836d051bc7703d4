/**
 * `serve()`: turns the current process into a plugin executable that speaks HashiCorp go-plugin's
 * process protocol (docs/protocol.md) and the Stowage contract (docs/contract.md).
 */
import { mkdtemp, rm, rmdir } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall } from "@grpc/grpc-js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { GRPCController } from "../gen/plugin/grpc_controller_pb.js";
import { GRPCStdio } from "../gen/plugin/grpc_stdio_pb.js";
import { BlockStoreService } from "../gen/stowage/v1/block_store_pb.js";
import { ObjectStoreService } from "../gen/stowage/v1/object_store_pb.js";
import { GetPluginInfoResponseSchema, PluginInfoService, type GetPluginInfoRequest, type GetPluginInfoResponse } from "../gen/stowage/v1/plugin_info_pb.js";
import { createHclogLogger, isLogLevel, type Logger, type LogLevel } from "../logging.js";
import { APP_PROTOCOL_VERSION, CONTRACT_VERSION, CORE_PROTOCOL_VERSION, ENV, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "../protocol/constants.js";
import { formatHandshake } from "../protocol/handshake.js";
import { descriptorToWire } from "../wire/convert.js";
import { serviceDefinition } from "../wire/rpc.js";
import { blockStoreService } from "./block-store-service.js";
import { callScope } from "./call-context.js";
import { DataChannelServer } from "./data-channel-server.js";
import type { PluginDefinition } from "./definition.js";
import { controllerService, healthService, StdioForwarder } from "./go-plugin-services.js";
import type { ServiceDeps } from "./handler.js";
import { objectStoreService } from "./object-store-service.js";
import { PluginRegistry } from "./registry.js";
// Velero interop hook (docs/velero.md).
import { VELERO_COOKIE_KEY, VELERO_COOKIE_VALUE } from "../velero/constants.js";
import { serveVelero } from "../velero/server.js";

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
 * and ignoring every other flag (Velero passes all of its own server flags to plugins).
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
  // --- Velero interop hook (docs/velero.md): started by Velero, serve Velero's protocol instead. ---
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE && env[VELERO_COOKIE_KEY] === VELERO_COOKIE_VALUE) {
    const logLevel = options.logLevel ?? logLevelFromArgs(options.argv ?? process.argv.slice(2)) ?? "info";
    await serveVelero({ plugins: options.plugins, logLevel, env, captureStdout, watchParent });
    return;
  }
  // --- end of the Velero hook ---
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(NOT_A_PROGRAM);
    process.exit(1);
  }
  const level = options.logLevel ?? logLevelFromArgs(options.argv ?? process.argv.slice(2)) ?? "info";
  const logger = createHclogLogger({ level });
  const versions = (env[ENV.protocolVersions] ?? "").split(",").map((v) => v.trim());
  if (env[ENV.protocolVersions] !== undefined && !versions.includes(String(APP_PROTOCOL_VERSION))) {
    logger.warn({ offered: env[ENV.protocolVersions] }, `host does not offer protocol version ${String(APP_PROTOCOL_VERSION)}; answering it anyway so the host can report the mismatch`);
  }
  let registry: PluginRegistry;
  try {
    registry = new PluginRegistry(options.plugins, logger);
  } catch (error) {
    process.stderr.write(`stowage plugin: ${(error as Error).message}\n`);
    process.exit(1);
  }
  // Ignore SIGINT from the start, so that one arriving around the handshake cannot kill the plugin.
  process.on("SIGINT", () => {
    logger.trace("ignoring SIGINT; the host stops plugins with Shutdown");
  });
  const running = await startServer(registry, logger, env, options.dataChannel ?? true);
  writeSync(1, `${formatHandshake({ core: CORE_PROTOCOL_VERSION, app: APP_PROTOCOL_VERSION, network: "unix", address: running.socketPath })}\n`);
  captureStdout(running.stdio);
  process.on("SIGTERM", () => {
    void running.stop().then(() => process.exit(0));
  });
  process.on("uncaughtException", (error) => {
    logger.error({ error: error.stack ?? error.message }, "uncaught exception; the plugin keeps serving");
  });
  process.on("unhandledRejection", (reason) => {
    logger.error({ error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) }, "unhandled rejection; the plugin keeps serving");
  });
  watchParent(() => {
    logger.warn("the host process is gone; exiting");
    void running.stop().then(() => process.exit(0));
  });
}

/** A started plugin server. */
interface RunningServer {
  readonly socketPath: string;
  readonly stdio: StdioForwarder;
  stop(): Promise<void>;
}

async function startServer(registry: PluginRegistry, logger: Logger, env: NodeJS.ProcessEnv, offerDataChannel: boolean): Promise<RunningServer> {
  const providedDir = env[ENV.unixSocketDir];
  const dir = providedDir !== undefined && providedDir !== "" ? providedDir : await mkdtemp(join(tmpdir(), "stowage-plugin-"));
  const socketPath = join(dir, `plugin-${String(process.pid)}.sock`);
  const shutdownController = new AbortController();
  const deps: ServiceDeps = { logger, scope: (call) => callScope(call, shutdownController.signal) };
  const dataChannel = offerDataChannel ? await DataChannelServer.listen(join(dir, `data-${String(process.pid)}.sock`), logger) : undefined;
  const stdio = new StdioForwarder();
  const server = new Server({
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": -1,
  });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shutdownController.abort();
      stdio.close();
      // Let in-flight replies (the Shutdown reply among them) go out, then force the rest closed.
      await Promise.race([new Promise<void>((resolve) => server.tryShutdown(() => resolve())), sleep(500)]);
      server.forceShutdown();
      // Bounded: a plugin that hangs in close() must not keep the process from exiting.
      await Promise.race([Promise.allSettled([dataChannel?.close(), registry.close()]), sleep(1000)]);
      await rm(socketPath, { force: true });
      if (providedDir === undefined || providedDir === "") await rm(dir, { recursive: true, force: true });
      else await rmdir(dir).catch(() => undefined);
    })();
    return stopping;
  };
  server.addService(serviceDefinition(Health), healthService());
  server.addService(
    serviceDefinition(GRPCController),
    controllerService(() => {
      logger.debug("shutdown requested by the host");
      void stop().then(() => process.exit(0));
    }),
  );
  server.addService(serviceDefinition(GRPCStdio), stdio.service());
  server.addService(serviceDefinition(PluginInfoService), {
    getPluginInfo(_call: ServerUnaryCall<GetPluginInfoRequest, GetPluginInfoResponse>, callback: sendUnaryData<GetPluginInfoResponse>) {
      callback(
        null,
        create(GetPluginInfoResponseSchema, {
          contractVersion: CONTRACT_VERSION,
          plugins: registry.descriptors().map(descriptorToWire),
          runtime: `stowage-sdk-ts node/${process.versions.node}`,
          dataChannelAddress: dataChannel?.address ?? "",
        }),
      );
    },
  });
  server.addService(serviceDefinition(ObjectStoreService), objectStoreService(registry, dataChannel, deps));
  server.addService(serviceDefinition(BlockStoreService), blockStoreService(registry, deps));
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error) => {
      if (error === null) resolve();
      else reject(error);
    });
  });
  return { socketPath, stdio, stop };
}

/** After the handshake, stdout belongs to the protocol: route later writes to GRPCStdio. */
function captureStdout(stdio: StdioForwarder): void {
  const write = (chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
    const data = typeof chunk === "string" ? Buffer.from(chunk, typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8") : (chunk as Uint8Array);
    stdio.write("stdout", data);
    const cb = typeof encoding === "function" ? encoding : callback;
    if (typeof cb === "function") (cb as () => void)();
    return true;
  };
  process.stdout.write = write;
}

/** Calls `onOrphaned` when the parent process exits (the plugin is re-parented). */
function watchParent(onOrphaned: () => void): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onOrphaned();
    }
  }, 1000);
  timer.unref();
}
