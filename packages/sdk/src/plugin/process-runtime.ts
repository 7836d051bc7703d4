/**
 * The life of a plugin process under go-plugin's protocol, shared by every protocol adapter
 * (`serve()` picks one by the magic cookie): version check, the named plugins, a private socket,
 * go-plugin's health/controller/stdio services, the handshake line, stdout capture, signals,
 * orphan detection, and a bounded graceful stop. Each protocol only registers its own services.
 */
import { writeSync } from "node:fs";
import { mkdtemp, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { GRPCController } from "../gen/plugin/grpc_controller_pb.js";
import { GRPCStdio } from "../gen/plugin/grpc_stdio_pb.js";
import { createHclogLogger, SecretRedactor, type LogLevel } from "../logging.js";
import { CORE_PROTOCOL_VERSION, ENV } from "../protocol/constants.js";
import { formatHandshake } from "../protocol/handshake.js";
import { serviceDefinition } from "../wire/rpc.js";
import type { PluginDefinition } from "./definition.js";
import { controllerService, healthService, StdioForwarder } from "./go-plugin-services.js";
import type { ServeProtocolAdapter } from "./protocol-adapter.js";
import { PluginRegistry } from "./registry.js";

/** Options of {@link runPluginProcess}. */
export interface RunOptions {
  readonly plugins: readonly PluginDefinition[];
  readonly logLevel: LogLevel;
  readonly env: NodeJS.ProcessEnv;
  /** Offer a bulk data channel where the protocol has one. */
  readonly dataChannel: boolean;
}

/** Serves `protocol` until Shutdown, SIGTERM or the parent's disappearance; then exits 0. */
export async function runPluginProcess(protocol: ServeProtocolAdapter, options: RunOptions): Promise<void> {
  const { env } = options;
  // Secret configuration values (registered by the registry at each Init) never reach a log line.
  const secrets = new SecretRedactor();
  const logger = createHclogLogger({ level: options.logLevel, secrets });
  const offered = env[ENV.protocolVersions];
  if (offered !== undefined && !offered.split(",").map((v) => v.trim()).includes(String(protocol.appVersion))) {
    logger.warn({ offered }, `${protocol.peer} does not offer protocol version ${String(protocol.appVersion)}; answering it anyway so it can report the mismatch`);
  }
  let registry: PluginRegistry;
  try {
    registry = new PluginRegistry(options.plugins, logger, secrets);
  } catch (error) {
    process.stderr.write(`stowage plugin: ${(error as Error).message}\n`);
    process.exit(1);
  }
  // Ignore SIGINT from the start, so that one arriving around the handshake cannot kill the plugin.
  process.on("SIGINT", () => {
    logger.trace(`ignoring SIGINT; ${protocol.peer} stops plugins with Shutdown`);
  });

  const providedDir = env[ENV.unixSocketDir];
  const socketDir = providedDir !== undefined && providedDir !== "" ? providedDir : await mkdtemp(join(tmpdir(), "stowage-plugin-"));
  const socketPath = join(socketDir, `plugin-${String(process.pid)}.sock`);
  const shutdown = new AbortController();
  const stdio = new StdioForwarder();
  const server = new Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024, "grpc.max_send_message_length": -1 });
  const closeProtocol = await protocol.register(server, { registry, logger, shutdown: shutdown.signal, socketDir, dataChannel: options.dataChannel });
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      shutdown.abort();
      stdio.close();
      // Let in-flight replies (the Shutdown reply among them) go out, then force the rest closed.
      await Promise.race([new Promise<void>((resolve) => server.tryShutdown(() => resolve())), sleep(500)]);
      server.forceShutdown();
      // Bounded: a plugin that hangs in close() must not keep the process from exiting.
      await Promise.race([Promise.allSettled([closeProtocol?.(), registry.close()]), sleep(1000)]);
      await rm(socketPath, { force: true });
      if (providedDir === undefined || providedDir === "") await rm(socketDir, { recursive: true, force: true });
      else await rmdir(socketDir).catch(() => undefined);
    })();
    return stopping;
  };
  const exit = (): void => {
    void stop().then(() => process.exit(0));
  };

  server.addService(serviceDefinition(Health), healthService());
  server.addService(
    serviceDefinition(GRPCController),
    controllerService(() => {
      logger.debug(`shutdown requested by ${protocol.peer}`);
      exit();
    }),
  );
  server.addService(serviceDefinition(GRPCStdio), stdio.service());
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error) => {
      if (error === null) resolve();
      else reject(error);
    });
  });

  // The handshake: six fields like Go plugins print, the certificate field empty.
  writeSync(1, `${formatHandshake({ core: CORE_PROTOCOL_VERSION, app: protocol.appVersion, network: "unix", address: socketPath })}\n`);
  captureStdout(stdio);
  process.on("SIGTERM", exit);
  process.on("uncaughtException", (error) => {
    logger.error({ error: error.stack ?? error.message }, "uncaught exception; the plugin keeps serving");
  });
  process.on("unhandledRejection", (reason) => {
    logger.error({ error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) }, "unhandled rejection; the plugin keeps serving");
  });
  watchParent(() => {
    logger.warn(`${protocol.peer} is gone; exiting`);
    exit();
  });
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
