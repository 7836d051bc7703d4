/**
 * Errors across Velero's protocol: plugin side, StowageError -> status UNKNOWN with the message and
 * a `generated.Stack` detail; unexpected exceptions -> ABORTED "plugin panicked: …". Host side,
 * `generated.Stack` details decoded into StowageError metadata (file/line/function), ABORTED panics
 * turned into INTERNAL.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Metadata, status as Status, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../../errors.js";
import { StatusSchema } from "../../gen/google/rpc/status_pb.js";
import { StackFrameSchema, StackSchema, type StackFrame } from "../../gen/generated/Shared_pb.js";
import type { Logger } from "../../logging.js";
import { PANIC_PREFIX } from "./constants.js";

const DETAILS_KEY = "grpc-status-details-bin";

/** Frames of a V8 stack trace as `generated.StackFrame`s (innermost first). */
export function stackFrames(stack: string | undefined): StackFrame[] {
  const frames: StackFrame[] = [];
  for (const line of (stack ?? "").split("\n")) {
    const m = /^\s+at (?:(.*?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (m === null) continue;
    frames.push(create(StackFrameSchema, { function: m[1] ?? "", file: m[2] ?? "", line: Number(m[3]) }));
  }
  return frames;
}

/** The gRPC status a Velero host expects for an error thrown by an implementation. */
export function toVeleroStatus(error: unknown, path: string, logger: Logger): StatusObject {
  const converted = StowageError.from(error);
  const expected = error instanceof StowageError || converted.code !== Code.Internal;
  const metadata = new Metadata();
  const frames = stackFrames(error instanceof Error ? error.stack : undefined);
  if (!expected) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    logger.error({ method: path, error: text }, "unexpected exception in Velero plugin call");
    return { code: Status.ABORTED, details: `${PANIC_PREFIX}${text}`, metadata };
  }
  logger.debug({ method: path, code: converted.code, reason: converted.reason }, converted.rawMessage);
  const message = converted.message;
  if (frames.length > 0) {
    const status = create(StatusSchema, { code: Status.UNKNOWN, message, details: [anyPack(StackSchema, create(StackSchema, { frames }))] });
    metadata.set(DETAILS_KEY, Buffer.from(toBinary(StatusSchema, status)));
  }
  return { code: Status.UNKNOWN, details: message, metadata };
}

function serviceErrorOf(error: StowageError): ServiceError | undefined {
  const cause = error.cause;
  // A StowageError (for example the crash error wrapping the transport error) is not a gRPC error.
  if (!(cause instanceof Error) || cause instanceof StowageError) return undefined;
  const metadata = (cause as Partial<ServiceError>).metadata as unknown;
  return typeof (cause as Partial<ServiceError>).code === "number" && typeof (metadata as { get?: unknown } | undefined)?.get === "function" ? (cause as ServiceError) : undefined;
}

/** Frame 0 of a `generated.Stack` detail of a failed call, if it carries one. */
export function stackOf(error: ServiceError): StackFrame | undefined {
  const raw = error.metadata.get(DETAILS_KEY)[0];
  if (!(raw instanceof Buffer)) return undefined;
  try {
    const status = fromBinary(StatusSchema, raw);
    for (const detail of status.details) {
      const stack = anyUnpack(detail, StackSchema);
      if (stack !== undefined) return stack.frames[0];
    }
  } catch {
    // A malformed trailer leaves the code and message usable.
  }
  return undefined;
}

/**
 * Enriches an error from a call to a Velero plugin: the origin from a `generated.Stack` detail goes
 * into metadata `file`, `line`, `function`; ABORTED "plugin panicked: …" becomes INTERNAL with
 * metadata `panic: "true"`.
 */
export function fromVeleroError(error: unknown): StowageError {
  const converted = StowageError.from(error);
  const service = serviceErrorOf(converted);
  if (service === undefined) return converted;
  const frame = stackOf(service);
  const metadata: Record<string, string> = { ...converted.metadata };
  if (frame !== undefined) {
    metadata.file = frame.file;
    metadata.line = String(frame.line);
    metadata.function = frame.function;
  }
  if (converted.code === Code.Aborted && converted.rawMessage.startsWith(PANIC_PREFIX)) {
    return new StowageError(Code.Internal, converted.rawMessage, { reason: Reason.Internal, metadata: { ...metadata, panic: "true" }, cause: service });
  }
  if (frame === undefined) return converted;
  return new StowageError(converted.code, converted.rawMessage, { ...(converted.reason === undefined ? {} : { reason: converted.reason }), metadata, cause: service });
}
