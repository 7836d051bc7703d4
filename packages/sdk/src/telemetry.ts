/**
 * OpenTelemetry names shared by the host and the plugin side: the instrumentation scope, the
 * attributes (OpenTelemetry's stable RPC conventions plus `stowage.*`), and the propagation of the
 * trace context in gRPC metadata. Only `@opentelemetry/api` is used: without an SDK installed by
 * the application every call below is a no-op.
 */
import { context, metrics, propagation, trace, type Context, type Meter, type MeterProvider, type TextMapGetter, type TextMapSetter } from "@opentelemetry/api";
import { status, type Metadata } from "@grpc/grpc-js";
import type { StowageError } from "./errors.js";

/** The instrumentation scope of every span and instrument Stowage creates. */
export const INSTRUMENTATION_SCOPE = "@stowage/sdk";

/** Attribute names (docs/observability.md lists every span and metric with them). */
export const Attr = {
  /** OpenTelemetry RPC conventions: the RPC system, always `grpc`. */
  rpcSystem: "rpc.system.name",
  /** The fully-qualified method, `stowage.v1.ObjectStoreService/PutObject`. */
  rpcMethod: "rpc.method",
  /** The gRPC status code name, `OK`, `NOT_FOUND`, … */
  rpcStatus: "rpc.response.status_code",
  /** The error's type: its Stowage reason when it has one, else the status code name. */
  errorType: "error.type",
  /** The plugin the call is for. */
  plugin: "stowage.plugin",
  /** The host API operation: `put`, `get`, `head`, `list`, `delete`, … */
  operation: "stowage.operation",
  /** The Stowage error reason. */
  reason: "stowage.error.reason",
  /** The object key, only when the application opts in (`telemetry.recordKeys`). */
  key: "stowage.object.key",
  /** The bucket. */
  bucket: "stowage.bucket",
  /** Bytes moved by a put or a get. */
  bytes: "stowage.bytes",
  /** The attempt number of a retried call, from 1. */
  attempt: "stowage.attempt",
} as const;

/**
 * Instruments created from the global meter provider, once per provider: an application may
 * install its provider after the SDK was loaded (the API hands out no-op meters until then), or
 * replace it, and the instruments follow.
 */
export function instrumentsOf<T>(create: (meter: Meter) => T): () => T {
  const made = new WeakMap<MeterProvider, T>();
  return () => {
    const provider = metrics.getMeterProvider();
    let found = made.get(provider);
    if (found === undefined) {
      found = create(provider.getMeter(INSTRUMENTATION_SCOPE));
      made.set(provider, found);
    }
    return found;
  };
}

/** The tracer of the SDK. */
export function tracer(): ReturnType<typeof trace.getTracer> {
  return trace.getTracer(INSTRUMENTATION_SCOPE);
}

const setter: TextMapSetter<Metadata> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const getter: TextMapGetter<Metadata> = {
  get(carrier, key) {
    const values = carrier.get(key);
    const first = values[0];
    return first === undefined ? undefined : typeof first === "string" ? first : first.toString("utf8");
  },
  keys(carrier) {
    return Object.keys(carrier.getMap());
  },
};

/** Writes the trace context of `ctx` (`traceparent`, `tracestate`) into gRPC metadata. */
export function injectTraceContext(metadata: Metadata, ctx: Context = context.active()): void {
  propagation.inject(ctx, metadata, setter);
}

/** Reads the trace context a caller sent in gRPC metadata. */
export function extractTraceContext(metadata: Metadata): Context {
  return propagation.extract(context.active(), metadata, getter);
}

/** The status attributes of a finished call: `rpc.response.status_code`, and `error.type` on failure. */
export function statusAttributes(error: StowageError | undefined): Record<string, string> {
  if (error === undefined) return { [Attr.rpcStatus]: "OK" };
  const code = status[error.code] ?? "UNKNOWN";
  return { [Attr.rpcStatus]: code, [Attr.errorType]: error.reason ?? code, ...(error.reason === undefined ? {} : { [Attr.reason]: error.reason }) };
}
