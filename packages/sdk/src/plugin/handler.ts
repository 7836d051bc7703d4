import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, StatusObject } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import type { Logger } from "../logging.js";
import { toGrpcStatus } from "../wire/status.js";
import { abortError } from "./abort.js";
import type { CallScope, CancellableCall } from "./call-context.js";
import { endServerSpan } from "./tracing.js";

/** Refuses an empty bucket or key with `INVALID_ARGUMENT`/`INVALID_NAME`, naming the field. */
export function requireNonEmpty(value: string, field: string): void {
  if (value === "") throw new StowageError(Code.InvalidArgument, `${field} is required`, { reason: Reason.InvalidName });
}

/** What the service implementations share. */
export interface ServiceDeps {
  readonly logger: Logger;
  /** Creates the cancellation scope of a call. */
  scope(call: CancellableCall): CallScope;
}

/**
 * Turns anything an implementation threw into a gRPC status. Unexpected exceptions become INTERNAL
 * and are logged with their stack; the process keeps serving. Expected outcomes (cancellations,
 * deadlines, not-found, …) are logged at debug.
 */
export function reportError(error: unknown, path: string, logger: Logger): StatusObject {
  let converted = StowageError.from(error);
  if (!(error instanceof StowageError) && converted.code === Code.Internal) {
    converted = new StowageError(Code.Internal, `unexpected error in the plugin: ${converted.rawMessage}`, { reason: Reason.Internal });
    logger.error({ method: path, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }, "unexpected exception in plugin call");
  } else if (converted.code === Code.Internal || converted.code === Code.Unknown || converted.code === Code.DataLoss) {
    logger.warn({ method: path, code: converted.code, reason: converted.reason }, converted.rawMessage);
  } else {
    logger.debug({ method: path, code: converted.code, reason: converted.reason }, converted.rawMessage);
  }
  return toGrpcStatus(converted);
}

/**
 * How long a failure that a vanished caller can cause (a request stream that closed early, a body
 * without its trailer, any unexpected exception) waits for the call's cancellation notice before it
 * is reported as what it seems. gRPC delivers the end of a cancelled request stream a little before
 * the cancellation itself.
 */
export const CANCEL_NOTICE_GRACE_MS = 250;

/**
 * Waits until `signal` fires or `ms` pass, whichever comes first: for a request stream that ended
 * without anything to vouch for its end, gRPC may be about to report that it was cancelled.
 */
export async function cancellationNotice(signal: AbortSignal, ms = CANCEL_NOTICE_GRACE_MS): Promise<void> {
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

const cancellationSymptoms = new WeakSet<StowageError>();

/**
 * Marks an error that a caller who cancelled would also cause (for example a request stream that
 * ended without its trailer), so that {@link endOnce} first waits for a cancellation notice.
 */
export function cancellationSymptom(error: StowageError): StowageError {
  cancellationSymptoms.add(error);
  return error;
}

/** How a call delivers its outcome. */
export interface CallOutcome<T> {
  /** Ends the call successfully. */
  ok(value: T): void;
  /** Ends the call with the status of `error`. */
  fail(error: unknown): void;
}

/**
 * Ends one call exactly once. When the call's signal fires (its deadline, the caller's
 * cancellation, shutdown) the call ends at once with that error — so a deadline is answered with
 * its reason before gRPC's own timer answers without one — and whatever the handler reports
 * afterwards is logged at debug only. A failure that a vanished caller can cause first waits up to
 * {@link CANCEL_NOTICE_GRACE_MS} for the cancellation notice, so that a cancelled call is reported
 * (and logged) as cancelled rather than as the failure the cancellation provoked.
 */
export function endOnce<T>(scope: CallScope, path: string, logger: Logger, deliver: { ok(value: T): void; fail(status: StatusObject): void }): CallOutcome<T> {
  let ended = false;
  let grace: NodeJS.Timeout | undefined;
  const finish = (): boolean => {
    if (ended) return false;
    ended = true;
    clearTimeout(grace);
    scope.signal.removeEventListener("abort", onAbort);
    scope.done();
    return true;
  };
  const onAbort = (): void => {
    if (finish()) deliver.fail(reportError(abortError(scope.signal), path, logger));
  };
  if (scope.signal.aborted) queueMicrotask(onAbort);
  else scope.signal.addEventListener("abort", onAbort, { once: true });
  return {
    ok(value) {
      if (finish()) deliver.ok(value);
    },
    fail(error) {
      if (ended) {
        const converted = StowageError.from(error);
        logger.debug({ method: path, code: converted.code, reason: converted.reason }, `after the call ended: ${converted.rawMessage}`);
        return;
      }
      const report = (): void => {
        if (finish()) deliver.fail(reportError(error, path, logger));
      };
      if (error instanceof StowageError && !cancellationSymptoms.has(error)) report();
      else grace ??= setTimeout(report, CANCEL_NOTICE_GRACE_MS);
    },
  };
}

/** {@link endOnce} for a call answered through its callback (unary and client-streaming calls). */
export function endWithCallback<Res>(scope: CallScope, call: { getPath(): string }, deps: ServiceDeps, callback: sendUnaryData<Res>): CallOutcome<Res> {
  return endOnce<Res>(scope, call.getPath(), deps.logger, {
    ok: (response) => {
      endServerSpan(call);
      callback(null, response);
    },
    fail: (status) => {
      endServerSpan(call, status);
      callback(status);
    },
  });
}

/** {@link endOnce} for a server-streaming call: `end()` on success, the status as its error otherwise. */
export function endStream(scope: CallScope, call: ServerWritableStream<unknown, unknown>, deps: ServiceDeps): CallOutcome<undefined> {
  return endOnce<undefined>(scope, call.getPath(), deps.logger, {
    ok: () => {
      endServerSpan(call);
      call.end();
    },
    fail: (status) => {
      endServerSpan(call, status);
      call.emit("error", status);
    },
  });
}

/** Runs a unary handler with a cancellation scope and error mapping. */
export function handleUnary<Req, Res>(
  call: ServerUnaryCall<Req, Res>,
  callback: sendUnaryData<Res>,
  deps: ServiceDeps,
  fn: (request: Req, signal: AbortSignal) => Promise<Res>,
): void {
  const scope = deps.scope(call);
  const end = endWithCallback(scope, call, deps, callback);
  let promise: Promise<Res>;
  try {
    promise = fn(call.request, scope.signal);
  } catch (error) {
    promise = Promise.reject(StowageError.from(error));
  }
  promise.then(
    (response) => {
      end.ok(response);
    },
    (error: unknown) => {
      end.fail(error);
    },
  );
}
