/**
 * Storage-operation telemetry of the host (docs/observability.md): a span per operation (the RPC
 * spans of its attempts nest under it), and the metrics per plugin and operation — duration, bytes,
 * errors by code and reason, calls in flight and queued — and the availability gauge per plugin
 * instance, the equivalent of the backup-location status gauge backup servers export. No attribute carries a key
 * or another unbounded value, unless the application opts in to keys on spans.
 */
import { context, SpanKind, SpanStatusCode, trace, type Context, type Counter, type Histogram, type Span, type UpDownCounter } from "@opentelemetry/api";
import { Code, StowageError } from "../errors.js";
import { Attr, instrumentsOf, statusAttributes, tracer } from "../telemetry.js";

/** The host API operations that are measured. */
export type Operation =
  | "init"
  | "put"
  | "get"
  | "head"
  | "list"
  | "delete"
  | "signed-url"
  | "bucket-protection"
  | "set-retention"
  | "set-legal-hold"
  | "create-snapshot"
  | "get-snapshot"
  | "list-snapshots"
  | "delete-snapshot"
  | "create-volume"
  | "get-volume"
  | "delete-volume"
  | "get-volume-id"
  | "set-volume-id";

interface Instruments {
  readonly duration: Histogram;
  readonly bytes: Counter;
  readonly errors: Counter;
  readonly active: UpDownCounter;
  readonly queued: UpDownCounter;
  readonly retries: Counter;
}

const availability = new Map<string, { readonly plugin: string; readonly instance: string; value: number }>();

const meter = instrumentsOf((m): Instruments => {
  m.createObservableGauge("stowage.location.available", {
    description: "1 when the plugin instance's last operation reached its store, 0 when it found it unavailable or refused",
  }).addCallback((result) => {
    for (const entry of availability.values()) result.observe(entry.value, { [Attr.plugin]: entry.plugin, "stowage.instance": entry.instance });
  });
  return {
    duration: m.createHistogram("stowage.operation.duration", {
      description: "Duration of storage operations through plugins, bodies included",
      unit: "s",
      advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900] },
    }),
    bytes: m.createCounter("stowage.operation.bytes", { description: "Object bytes stored (put) and read (get)", unit: "By" }),
    errors: m.createCounter("stowage.operation.errors", { description: "Failed storage operations, by code and reason" }),
    active: m.createUpDownCounter("stowage.operation.active", { description: "Storage operations in flight" }),
    queued: m.createUpDownCounter("stowage.operation.queued", { description: "Storage operations waiting for a slot (limits)" }),
    retries: m.createCounter("stowage.operation.retries", { description: "Attempts made again after a retryable failure" }),
  };
});

/** Codes that say the location itself is unusable (the store or the plugin), not the request. */
const UNAVAILABLE_CODES = new Set<Code>([Code.Unavailable, Code.Unauthenticated, Code.PermissionDenied, Code.DeadlineExceeded, Code.Internal, Code.Unknown]);

/** Whether an outcome says the location works: success, or an error about the request alone. */
function reachable(error: StowageError | undefined): boolean {
  if (error === undefined) return true;
  if (error.reason === "BUCKET_NOT_FOUND" || error.reason === "ACCESS_DENIED" || error.reason === "NOT_INITIALIZED") return false;
  if (error.code === Code.Canceled) return true;
  return !UNAVAILABLE_CODES.has(error.code);
}

/** Telemetry of one plugin instance's operations. */
export class OperationTelemetry {
  readonly #plugin: string;
  readonly #instance: string;
  readonly #recordKeys: boolean;

  constructor(plugin: string, instance: string, recordKeys: boolean) {
    this.#plugin = plugin;
    this.#instance = instance;
    this.#recordKeys = recordKeys;
    meter();
  }

  /** Stops reporting this instance's availability (the host closed). */
  forget(): void {
    availability.delete(`${this.#plugin}\0${this.#instance}`);
  }

  #available(error: StowageError | undefined, operation: Operation): void {
    // A call that was cancelled, or a put refused for a lock, says nothing new about the location.
    if (error?.code === Code.Canceled && operation !== "init") return;
    const key = `${this.#plugin}\0${this.#instance}`;
    const entry = availability.get(key) ?? { plugin: this.#plugin, instance: this.#instance, value: 0 };
    entry.value = reachable(error) ? 1 : 0;
    availability.set(key, entry);
  }

  /** Starts an operation: its span (the active context's child) and its gauges. */
  start(operation: Operation, target: { readonly bucket?: string; readonly key?: string }): OperationScope {
    const attributes = { [Attr.plugin]: this.#plugin, [Attr.operation]: operation };
    const span = tracer().startSpan(`stowage ${operation}`, {
      kind: SpanKind.INTERNAL,
      attributes: {
        ...attributes,
        "stowage.instance": this.#instance,
        ...(target.bucket === undefined ? {} : { [Attr.bucket]: target.bucket }),
        ...(this.#recordKeys && target.key !== undefined ? { [Attr.key]: target.key } : {}),
      },
    });
    const m = meter();
    m.active.add(1, attributes);
    const started = performance.now();
    let ended = false;
    return {
      context: trace.setSpan(context.active(), span),
      span,
      queued: (delta) => {
        m.queued.add(delta, attributes);
      },
      retry: (attempt, delayMs, error) => {
        m.retries.add(1, attributes);
        span.addEvent("stowage.retry", { [Attr.attempt]: attempt, "stowage.retry.delay_ms": delayMs, ...statusAttributes(error) });
      },
      end: (error, bytes) => {
        if (ended) return;
        ended = true;
        const failure = error === undefined ? undefined : StowageError.from(error);
        const outcome = statusAttributes(failure);
        m.active.add(-1, attributes);
        m.duration.record((performance.now() - started) / 1000, { ...attributes, ...outcome });
        if (bytes !== undefined && bytes > 0) {
          m.bytes.add(bytes, attributes);
          span.setAttribute(Attr.bytes, bytes);
        }
        if (failure !== undefined) {
          m.errors.add(1, { ...attributes, ...outcome });
          span.setStatus({ code: SpanStatusCode.ERROR, message: outcome[Attr.errorType] ?? "error" });
        }
        span.setAttributes(outcome);
        span.end();
        this.#available(failure, operation);
      },
    };
  }
}

/** One operation in progress. */
export interface OperationScope {
  /** The context its RPCs run in (their parent is the operation's span). */
  readonly context: Context;
  /** Its span, for events and attributes. */
  readonly span: Span;
  /** Counts the operation in (1) or out (-1) of the queue for a slot. */
  queued(delta: number): void;
  /** Records a retry: an event on the span and the retries counter. */
  retry(attempt: number, delayMs: number, error: StowageError): void;
  /** Ends it, once, with its outcome and the bytes it moved. */
  end(error?: unknown, bytes?: number): void;
}
