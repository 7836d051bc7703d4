/**
 * StowageError <-> gRPC status. The reason travels as a `google.rpc.ErrorInfo` detail of a
 * `google.rpc.Status` in the `grpc-status-details-bin` trailer, as gRPC's rich error model does.
 */
import { anyPack, anyUnpack } from "@bufbuild/protobuf/wkt";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Metadata, type ServiceError, type status as Status, type StatusObject } from "@grpc/grpc-js";
import { Code, ERROR_DOMAIN, Reason, StowageError } from "../errors.js";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";

const DETAILS_KEY = "grpc-status-details-bin";

// Code mirrors gRPC's status numbers one for one, so the conversions are identities.
function toGrpcCode(code: Code): Status {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- same numbering by construction
  return code.valueOf();
}
function fromGrpcCode(code: Status): Code {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment -- same numbering by construction
  return code.valueOf();
}

/** The gRPC status (code, message, details trailer) that carries `error`. */
export function toGrpcStatus(error: StowageError): StatusObject {
  const metadata = new Metadata();
  const details = [];
  // Facts about a failure travel even when the contract defines no reason for it (an ErrorInfo
  // with an empty reason, which callers treat as "no reason", clause 4.3.4).
  if (error.reason !== undefined || Object.keys(error.metadata).length > 0) {
    details.push(anyPack(ErrorInfoSchema, create(ErrorInfoSchema, { reason: error.reason ?? "", domain: ERROR_DOMAIN, metadata: { ...error.metadata } })));
  }
  const status = create(StatusSchema, { code: error.code, message: error.rawMessage, details });
  metadata.set(DETAILS_KEY, Buffer.from(toBinary(StatusSchema, status)));
  return { code: toGrpcCode(error.code), details: error.rawMessage, metadata };
}

function isServiceError(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === "number" && "metadata" in value;
}

/**
 * Converts an error from a grpc-js call into a StowageError, decoding the reason from the details
 * trailer. Anything that is not a gRPC error goes through {@link StowageError.from}.
 */
export function fromGrpcError(error: unknown): StowageError {
  if (error instanceof StowageError) return error;
  if (!isServiceError(error)) return StowageError.from(error);
  const code = fromGrpcCode(error.code);
  let message = error.details;
  let reason: string | undefined;
  let metadata: Record<string, string> = {};
  const raw = error.metadata.get(DETAILS_KEY)[0];
  if (raw instanceof Buffer) {
    try {
      const status = fromBinary(StatusSchema, raw);
      if (status.message !== "") message = status.message;
      for (const detail of status.details) {
        const info = anyUnpack(detail, ErrorInfoSchema);
        if (info?.domain === ERROR_DOMAIN) {
          if (info.reason !== "") reason = info.reason;
          metadata = { ...info.metadata };
        }
      }
    } catch {
      // A malformed details trailer still leaves a usable code and message.
    }
  }
  // A deadline or cancellation the caller's own gRPC library enforced carries no detail; the
  // contract gives both conditions a reason (2.4.3), so the host reports them the same either way.
  reason ??= code === Code.DeadlineExceeded ? Reason.DeadlineExceeded : code === Code.Canceled ? Reason.Cancelled : undefined;
  return new StowageError(code, message, { ...(reason === undefined ? {} : { reason }), metadata, cause: error });
}
