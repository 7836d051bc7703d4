import type { sendUnaryData, ServerUnaryCall, StatusObject } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import type { Logger } from "../logging.js";
import { toGrpcStatus } from "../wire/status.js";
import type { CallScope, CancellableCall } from "./call-context.js";

/** What the service implementations share. */
export interface ServiceDeps {
  readonly logger: Logger;
  /** Creates the cancellation scope of a call. */
  scope(call: CancellableCall): CallScope;
}

/**
 * Turns anything an implementation threw into a gRPC status. Unexpected exceptions become INTERNAL
 * and are logged with their stack; the process keeps serving.
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

/** Runs a unary handler with a cancellation scope and error mapping. */
export function handleUnary<Req, Res>(
  call: ServerUnaryCall<Req, Res>,
  callback: sendUnaryData<Res>,
  deps: ServiceDeps,
  fn: (request: Req, signal: AbortSignal) => Promise<Res>,
): void {
  const scope = deps.scope(call);
  let promise: Promise<Res>;
  try {
    promise = fn(call.request, scope.signal);
  } catch (error) {
    promise = Promise.reject(StowageError.from(error));
  }
  promise.then(
    (response) => {
      scope.done();
      callback(null, response);
    },
    (error: unknown) => {
      scope.done();
      callback(reportError(error, call.getPath(), deps.logger));
    },
  );
}
