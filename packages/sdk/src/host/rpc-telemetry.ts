/**
 * The host's view of every RPC it makes (docs/observability.md): a client span following
 * OpenTelemetry's RPC conventions, whose context travels to the plugin in `traceparent`, and the
 * `rpc.client.call.duration` histogram. Plugins of other protocols get the same client span (servers
 * that do not read the metadata ignore it).
 */
import { context, SpanKind, SpanStatusCode, trace, type Histogram, type Span } from "@opentelemetry/api";
import { Metadata } from "@grpc/grpc-js";
import { StowageError } from "../errors.js";
import { Attr, injectTraceContext, instrumentsOf, statusAttributes, tracer } from "../telemetry.js";

/** The histogram, from the global meter provider (a no-op without one). */
const callDuration = instrumentsOf(
  (meter): Histogram =>
    meter.createHistogram("rpc.client.call.duration", {
      description: "Duration of RPCs the host made to plugins",
      unit: "s",
      advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] },
    }),
);

/** One RPC in progress: its span, the metadata carrying its context, and how to end it. */
export interface RpcObservation {
  /** The metadata to send, with `traceparent` when a span is recording. */
  readonly metadata: Metadata;
  /** Ends the span and records the duration, once; later calls do nothing. */
  end(error?: unknown): void;
}

/** Starts observing an RPC to `path` (`/stowage.v1.ObjectStoreService/PutObject`) for `plugin`. */
export function observeRpc(path: string, plugin: string | undefined): RpcObservation {
  const method = path.startsWith("/") ? path.slice(1) : path;
  const attributes = { [Attr.rpcSystem]: "grpc", [Attr.rpcMethod]: method, ...(plugin === undefined || plugin === "" ? {} : { [Attr.plugin]: plugin }) };
  const span: Span = tracer().startSpan(method, { kind: SpanKind.CLIENT, attributes });
  const metadata = new Metadata();
  injectTraceContext(metadata, trace.setSpan(context.active(), span));
  const started = performance.now();
  let ended = false;
  return {
    metadata,
    end(error) {
      if (ended) return;
      ended = true;
      const failure = error === undefined ? undefined : StowageError.from(error);
      const outcome = statusAttributes(failure);
      span.setAttributes(outcome);
      // The message is left out: it can name keys, which are personal data unless the application opts in.
      if (failure !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome[Attr.errorType] ?? "error" });
      span.end();
      callDuration().record((performance.now() - started) / 1000, { ...attributes, ...outcome });
    },
  };
}
