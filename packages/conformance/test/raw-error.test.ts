/**
 * rawError: the code, message and Stowage reason of a raw call's error, from the google.rpc.Status of
 * its details trailer (decoded with the kit's own generated messages).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { anyPack } from "@bufbuild/protobuf/wkt";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { Code, ERROR_DOMAIN, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../src/gen/google/rpc/status_pb.js";
import { rawError } from "../src/harness/raw-object-store.js";

function serviceError(code: status, details: string, trailer?: Uint8Array): ServiceError {
  const metadata = new Metadata();
  if (trailer !== undefined) metadata.set("grpc-status-details-bin", Buffer.from(trailer));
  return Object.assign(new Error(`${String(code)} ${details}`), { code, details, metadata });
}

function statusWith(message: string, ...infos: { reason: string; domain: string }[]): Uint8Array {
  const details = infos.map((info) => anyPack(ErrorInfoSchema, create(ErrorInfoSchema, info)));
  return toBinary(StatusSchema, create(StatusSchema, { code: status.NOT_FOUND, message, details }));
}

describe("rawError", () => {
  it("takes the code, the status message and the reason of an ErrorInfo in Stowage's domain", () => {
    const error = rawError(serviceError(status.NOT_FOUND, "plain", statusWith("from the trailer", { reason: "UPLOAD_NOT_FOUND", domain: ERROR_DOMAIN })));
    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toBe("from the trailer");
    expect(error.reason).toBe("UPLOAD_NOT_FOUND");
  });

  it("ignores ErrorInfo of another domain and empty reasons", () => {
    const error = rawError(serviceError(status.NOT_FOUND, "plain", statusWith("", { reason: "OTHER", domain: "example.com" }, { reason: "", domain: ERROR_DOMAIN })));
    expect(error.rawMessage).toBe("plain");
    expect(error.reason).toBeUndefined();
  });

  it("keeps the code and message when the details trailer is malformed or absent", () => {
    const malformed = rawError(serviceError(status.INTERNAL, "broken", Uint8Array.of(0x0a, 0xff)));
    expect(malformed.code).toBe(Code.Internal);
    expect(malformed.rawMessage).toBe("broken");
    expect(malformed.reason).toBeUndefined();
    const absent = rawError(serviceError(status.UNAVAILABLE, "gone"));
    expect(absent.code).toBe(Code.Unavailable);
    expect(absent.reason).toBeUndefined();
  });

  it("passes other errors to StowageError.from", () => {
    expect(rawError(new Error("x"))).toBeInstanceOf(StowageError);
  });
});
