/**
 * Server spans on the plugin side (docs/observability.md): every ObjectStore and BlockStore call
 * runs inside a span whose parent is the host's client span (its `traceparent` arrives in the gRPC
 * metadata), so the implementation's own spans, and those of cloud SDKs that support
 * OpenTelemetry, nest under it. Without an OpenTelemetry SDK in the plugin process this is a no-op.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import type { Metadata, StatusObject, UntypedServiceImplementation } from "@grpc/grpc-js";
import { status as grpcStatus } from "@grpc/grpc-js";
import { Attr, extractTraceContext, tracer } from "../telemetry.js";

/** The part of a grpc-js server call a span needs. */
interface TracedCall {
  readonly metadata: Metadata;
  readonly request?: unknown;
  getPath(): string;
}

const spans = new WeakMap<object, Span>();

/**
 * Wraps every handler of a service implementation so that it runs inside a server span. The span
 * ends with the call's status through {@link endServerSpan}.
 */
export function tracedService(implementation: UntypedServiceImplementation): UntypedServiceImplementation {
  const traced: UntypedServiceImplementation = {};
  for (const [name, handler] of Object.entries(implementation)) {
    const original = handler as (call: TracedCall, callback?: unknown) => void;
    traced[name] = (call: TracedCall, callback?: unknown): void => {
      const parent = extractTraceContext(call.metadata);
      const method = call.getPath().replace(/^\//, "");
      const plugin = (call.request as { plugin?: unknown } | undefined)?.plugin;
      const span = tracer().startSpan(
        method,
        { kind: SpanKind.SERVER, attributes: { [Attr.rpcSystem]: "grpc", [Attr.rpcMethod]: method, ...(typeof plugin === "string" && plugin !== "" ? { [Attr.plugin]: plugin } : {}) } },
        parent,
      );
      spans.set(call, span);
      context.with(trace.setSpan(parent, span), () => {
        original(call, callback);
      });
    };
  }
  return traced;
}

/** Ends the server span of `call` with its outcome: OK, or the status sent. */
export function endServerSpan(call: object, status?: StatusObject): void {
  const span = spans.get(call);
  if (span === undefined) return;
  spans.delete(call);
  if (status === undefined) {
    span.setAttribute(Attr.rpcStatus, "OK");
  } else {
    const code = (grpcStatus[status.code] as string | undefined) ?? "UNKNOWN";
    span.setAttributes({ [Attr.rpcStatus]: code, [Attr.errorType]: code });
    span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
  span.end();
}
