/**
 * What a protocol must provide to `serve()`. The process around it (the handshake line, the
 * private socket, go-plugin's health/controller/stdio services, signals, orphan detection, the
 * bounded graceful stop) is the same for every protocol (`process-runtime.ts`); a
 * {@link ServeProtocolAdapter} says which magic cookie selects it and registers its services on
 * the gRPC server for the given plugin implementations.
 *
 * The adapters live in `src/protocols/` and are reached only through `src/protocols/registry.ts`
 * (docs/architecture.md).
 */
import type { Server, ServerUnaryCall, UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "../logging.js";
import type { PluginDescriptor } from "../types.js";
import type { PluginRegistry } from "./registry.js";

/** What a service's lookup of its registry sees of a grpc-js server call: its metadata and its TLS peer. */
export type ServiceCall = Pick<ServerUnaryCall<unknown, unknown>, "metadata" | "getAuthContext">;

/**
 * Finds the registry that serves a call: the process's only one, or in network mode the one of the
 * caller's session. It throws the call's error (a missing session, a refused identity), so the
 * services call it inside their handlers.
 */
export type RegistryLookup = (call: ServiceCall) => PluginRegistry;

/** What a protocol's services get to work with in network mode (`serve()` with `--listen`). */
export interface NetworkContext {
  /** Every plugin the executable serves. */
  readonly descriptors: readonly PluginDescriptor[];
  /** The registry of the caller's session. */
  readonly registryFor: RegistryLookup;
  /** The plugins the caller may use (what GetPluginInfo lists). */
  readonly pluginsFor: (call: ServiceCall) => readonly PluginDescriptor[];
  /** Binds every handler of a service that carries sessions to the caller's session; wrap the services with it. */
  readonly bindSessions: (implementation: UntypedServiceImplementation) => UntypedServiceImplementation;
  /** The process's logger (secrets redacted). */
  readonly logger: Logger;
  /** Fires when the in-flight calls are to be cancelled (the drain time is over). */
  readonly shutdown: AbortSignal;
}

/** What a protocol's services get to work with. */
export interface ProcessContext {
  /** The plugins this executable serves. */
  readonly registry: PluginRegistry;
  /** The process's logger (secrets redacted). */
  readonly logger: Logger;
  /** Fires when the process starts shutting down. */
  readonly shutdown: AbortSignal;
  /** The private directory holding the plugin's sockets. */
  readonly socketDir: string;
  /** Whether `serve()` was asked to offer a bulk data channel (protocols without one ignore it). */
  readonly dataChannel: boolean;
}

/** One application protocol served over go-plugin's process protocol. */
export interface ServeProtocolAdapter {
  /** Its name (the one hosts put in `PluginCommand.protocol`). */
  readonly name: string;
  /** The magic cookie that selects this protocol: the environment variable and its value. */
  readonly cookie: { readonly key: string; readonly value: string };
  /** Application protocol version written in the handshake. */
  readonly appVersion: number;
  /** Who started the process, for log lines ("the host"). */
  readonly peer: string;
  /** Adds the protocol's services; may return a closer run (bounded) at shutdown. */
  register(server: Server, context: ProcessContext): Promise<(() => Promise<void>) | undefined>;
  /**
   * Adds the protocol's services for network mode (mTLS on TCP, docs/protocol.md "Network mode"):
   * no data channel, sessions per caller. Absent when the protocol is not served over the network.
   */
  registerNetwork?(server: Server, context: NetworkContext): void;
}
