/**
 * go-plugin's own services, as every plugin must serve them: health ("plugin" SERVING), the
 * controller's Shutdown, and stdio (anything written to stdout/stderr after the handshake). Network
 * mode serves only the health service (with its drain state).
 */
import { create } from "@bufbuild/protobuf";
import { status as Status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { HealthCheckResponse_ServingStatus, HealthCheckResponseSchema, type HealthCheckRequest, type HealthCheckResponse } from "../gen/grpc/health/v1/health_pb.js";
import { EmptySchema, type Empty } from "../gen/plugin/grpc_controller_pb.js";
import { StdioData_Channel, StdioDataSchema, type StdioData } from "../gen/plugin/grpc_stdio_pb.js";
import { HEALTH_SERVICE_NAME } from "../protocol/constants.js";

/**
 * Whether the process serves: SERVING from the start, NOT_SERVING for good once {@link stop} is
 * called (network mode: the drain has begun). Open Watch streams hear the change.
 */
export class ServingState {
  #serving = true;
  readonly #listeners = new Set<() => void>();

  /** Whether the process still takes calls. */
  get serving(): boolean {
    return this.#serving;
  }

  /** Turns to NOT_SERVING and tells every watcher. */
  stop(): void {
    if (!this.#serving) return;
    this.#serving = false;
    for (const listener of this.#listeners) listener();
  }

  /** Calls `listener` on the change; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/**
 * grpc.health.v1.Health: "plugin" and "" are SERVING (NOT_SERVING once `state` stops), anything
 * else SERVICE_UNKNOWN (NOT_FOUND).
 */
export function healthService(state: ServingState = new ServingState()): UntypedServiceImplementation {
  const status = (service: string): HealthCheckResponse_ServingStatus | undefined =>
    service === HEALTH_SERVICE_NAME || service === ""
      ? state.serving
        ? HealthCheckResponse_ServingStatus.SERVING
        : HealthCheckResponse_ServingStatus.NOT_SERVING
      : undefined;
  return {
    check(call: ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>, callback: sendUnaryData<HealthCheckResponse>) {
      const s = status(call.request.service);
      if (s === undefined) {
        callback({ code: Status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        return;
      }
      callback(null, create(HealthCheckResponseSchema, { status: s }));
    },
    watch(call: ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) {
      const send = (): void => {
        call.write(create(HealthCheckResponseSchema, { status: status(call.request.service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN }));
      };
      send();
      const unsubscribe = state.onChange(send);
      call.on("cancelled", unsubscribe);
      call.on("close", unsubscribe);
    },
  };
}

/** plugin.GRPCController: Shutdown replies, then runs `shutdown`. */
export function controllerService(shutdown: () => void): UntypedServiceImplementation {
  return {
    shutdown(_call: ServerUnaryCall<Empty, Empty>, callback: sendUnaryData<Empty>) {
      callback(null, create(EmptySchema));
      setImmediate(shutdown);
    },
  };
}

/**
 * Fans stdout/stderr output out to plugin.GRPCStdio streams. Output written while no stream is
 * open is dropped after a bounded backlog, so a host that never reads cannot make the plugin grow.
 */
export class StdioForwarder {
  readonly #streams = new Set<ServerWritableStream<unknown, StdioData>>();
  readonly #backlog: StdioData[] = [];
  #backlogBytes = 0;
  static readonly maxBacklogBytes = 256 * 1024;

  /** Forwards bytes written to a channel. */
  write(channel: "stdout" | "stderr", data: Uint8Array): void {
    const message = create(StdioDataSchema, { channel: channel === "stdout" ? StdioData_Channel.STDOUT : StdioData_Channel.STDERR, data });
    if (this.#streams.size === 0) {
      if (this.#backlogBytes + data.byteLength <= StdioForwarder.maxBacklogBytes) {
        this.#backlog.push(message);
        this.#backlogBytes += data.byteLength;
      }
      return;
    }
    for (const stream of this.#streams) stream.write(message);
  }

  /** The plugin.GRPCStdio implementation. */
  service(): UntypedServiceImplementation {
    return {
      streamStdio: (call: ServerWritableStream<unknown, StdioData>) => {
        this.#streams.add(call);
        for (const message of this.#backlog.splice(0)) call.write(message);
        this.#backlogBytes = 0;
        const drop = (): void => {
          this.#streams.delete(call);
        };
        call.on("cancelled", drop);
        call.on("close", drop);
        call.on("error", drop);
      },
    };
  }

  /** Ends every open stream. */
  close(): void {
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
  }
}
