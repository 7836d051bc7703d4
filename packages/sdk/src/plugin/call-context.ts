import type { Deadline } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";

/** The parts of a grpc-js server call that cancellation needs. */
export interface CancellableCall {
  getDeadline(): Deadline;
  on(event: "cancelled", listener: () => void): unknown;
}

/** Per-call cancellation: fires on client cancel, deadline or plugin shutdown. */
export interface CallScope {
  readonly signal: AbortSignal;
  /** Releases the timers and listeners; call when the RPC completes. */
  done(): void;
}

/**
 * How long before a call's deadline its signal fires. grpc-js ends a call whose deadline passes
 * with a bare `DEADLINE_EXCEEDED` status (no reason); firing a little earlier lets the plugin end
 * the call itself with reason `DEADLINE_EXCEEDED` (contract 2.4.3) before that timer runs.
 */
export const DEADLINE_LEAD_MS = 20;

/**
 * Creates the AbortSignal an implementation receives for one call. It fires when the client
 * cancels, {@link DEADLINE_LEAD_MS} before the gRPC deadline, or when `shutdown` fires.
 */
export function callScope(call: CancellableCall, shutdown: AbortSignal): CallScope {
  const controller = new AbortController();
  const abort = (reason: StowageError): void => {
    if (!controller.signal.aborted) controller.abort(reason);
  };
  const onCancel = (): void => {
    abort(new StowageError(Code.Canceled, "the caller cancelled the call", { reason: Reason.Cancelled }));
  };
  call.on("cancelled", onCancel);
  const onShutdown = (): void => {
    abort(new StowageError(Code.Unavailable, "the plugin is shutting down", { reason: Reason.BackendUnavailable }));
  };
  shutdown.addEventListener("abort", onShutdown, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : Number.isFinite(deadline) ? deadline - Date.now() : Infinity;
  if (Number.isFinite(ms)) {
    timer = setTimeout(
      () => {
        abort(new StowageError(Code.DeadlineExceeded, "the call's deadline passed", { reason: Reason.DeadlineExceeded }));
      },
      Math.max(0, ms - DEADLINE_LEAD_MS),
    );
  }
  return {
    signal: controller.signal,
    done() {
      if (timer !== undefined) clearTimeout(timer);
      shutdown.removeEventListener("abort", onShutdown);
    },
  };
}
