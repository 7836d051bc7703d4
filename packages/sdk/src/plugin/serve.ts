/**
 * `serve()`: turns the current process into a plugin executable that speaks HashiCorp go-plugin's
 * process protocol (docs/protocol.md) and the Stowage contract (docs/contract.md).
 */
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import { BlockStoreService } from "../gen/stowage/v1/block_store_pb.js";
import { ObjectStoreService } from "../gen/stowage/v1/object_store_pb.js";
import { GetPluginInfoResponseSchema, PluginInfoService, type GetPluginInfoRequest, type GetPluginInfoResponse } from "../gen/stowage/v1/plugin_info_pb.js";
import { isLogLevel, type LogLevel } from "../logging.js";
import { APP_PROTOCOL_VERSION, CONTRACT_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "../protocol/constants.js";
import { VELERO_COOKIE_KEY, VELERO_COOKIE_VALUE } from "../velero/constants.js";
import { serveVelero } from "../velero/server.js";
import { descriptorToWire } from "../wire/convert.js";
import { serviceDefinition } from "../wire/rpc.js";
import { blockStoreService } from "./block-store-service.js";
import { callScope } from "./call-context.js";
import { DataChannelServer } from "./data-channel-server.js";
import type { PluginDefinition } from "./definition.js";
import type { ServiceDeps } from "./handler.js";
import { objectStoreService } from "./object-store-service.js";
import { runPluginProcess, type ProcessProtocol } from "./process-runtime.js";

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
  const logLevel = options.logLevel ?? logLevelFromArgs(options.argv ?? process.argv.slice(2)) ?? "info";
  // Started by Velero: serve Velero's protocol instead (docs/velero.md).
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE && env[VELERO_COOKIE_KEY] === VELERO_COOKIE_VALUE) {
    await serveVelero({ plugins: options.plugins, logLevel, env });
    return;
  }
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(NOT_A_PROGRAM);
    process.exit(1);
  }
  await runPluginProcess(stowageProtocol(options.dataChannel ?? true), { plugins: options.plugins, logLevel, env });
}

/** Stowage's own services: PluginInfo, ObjectStore and BlockStore, plus the data channel. */
function stowageProtocol(offerDataChannel: boolean): ProcessProtocol {
  return {
    appVersion: APP_PROTOCOL_VERSION,
    peer: "the host",
    async register(server, { registry, logger, shutdown, socketDir }) {
      const deps: ServiceDeps = { logger, scope: (call) => callScope(call, shutdown) };
      const dataChannel = offerDataChannel ? await DataChannelServer.listen(join(socketDir, `data-${String(process.pid)}.sock`), logger) : undefined;
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
      return dataChannel === undefined ? undefined : () => dataChannel.close();
    },
  };
}
