import { AbortError } from "@azure/abort-controller";
import { RestError, createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import { Code, Reason, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { azureErrorCode, azureHttpStatus, isNotFound, toStowageError } from "./errors.js";

/** A RestError as the SDKs throw it: status, `code`, and the `x-ms-error-code` header. */
function restError(status: number, code: string | undefined, header?: string): RestError {
  const request = createPipelineRequest({ url: "https://acct.blob.core.windows.net/c/k" });
  const headers = createHttpHeaders(header === undefined ? {} : { "x-ms-error-code": header });
  return new RestError(`status ${String(status)}`, { statusCode: status, ...(code === undefined ? {} : { code }), request, response: { status, headers, request } });
}

describe("toStowageError", () => {
  const cases: [string, unknown, Code, string | undefined][] = [
    ["BlobNotFound", restError(404, "BlobNotFound"), Code.NotFound, Reason.ObjectNotFound],
    ["ContainerNotFound from the header of a HEAD answer", restError(404, undefined, "ContainerNotFound"), Code.NotFound, Reason.BucketNotFound],
    ["ARM ResourceNotFound with a snapshot context", restError(404, "ResourceNotFound"), Code.NotFound, Reason.SnapshotNotFound],
    ["InvalidRange", restError(416, "InvalidRange"), Code.OutOfRange, Reason.InvalidRange],
    ["AuthenticationFailed", restError(403, "AuthenticationFailed"), Code.Unauthenticated, Reason.AccessDenied],
    ["AuthorizationPermissionMismatch", restError(403, "AuthorizationPermissionMismatch"), Code.PermissionDenied, Reason.AccessDenied],
    ["ServerBusy", restError(503, "ServerBusy"), Code.Unavailable, Reason.BackendUnavailable],
    ["429 throttling", restError(429, "TooManyRequests"), Code.Unavailable, Reason.BackendUnavailable],
    ["a connection reset", new RestError("socket hang up", { code: "ECONNRESET" }), Code.Unavailable, Reason.BackendUnavailable],
    ["BlobAlreadyExists", restError(409, "BlobAlreadyExists"), Code.AlreadyExists, undefined],
    ["ConditionNotMet", restError(412, "ConditionNotMet"), Code.Aborted, undefined],
    ["InvalidResourceName", restError(400, "InvalidResourceName"), Code.InvalidArgument, Reason.InvalidName],
    ["Md5Mismatch", restError(400, "Md5Mismatch"), Code.DataLoss, Reason.IntegrityMismatch],
    ["an unknown 400", restError(400, "SomethingNew"), Code.InvalidArgument, undefined],
    ["an untrusted certificate", Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }), Code.FailedPrecondition, undefined],
    ["anything else", new Error("boom"), Code.Internal, Reason.Internal],
  ];
  for (const [name, error, code, reason] of cases) {
    it(`maps ${name}`, () => {
      const mapped = toStowageError(error, { operation: "test", bucket: "c", key: "k", ...(name.includes("snapshot") ? { key: undefined, notFound: Reason.SnapshotNotFound } : {}) });
      expect(mapped.code).toBe(code);
      expect(mapped.reason).toBe(reason);
      expect(mapped.cause).toBe(error);
    });
  }

  it("says what to do about an untrusted certificate", () => {
    const mapped = toStowageError(Object.assign(new Error("x"), { code: "SELF_SIGNED_CERT_IN_CHAIN" }), { operation: "head blob" });
    expect(mapped.message).toContain("caCert");
  });

  it("maps a fired signal by its reason: a timeout is DEADLINE_EXCEEDED, a cancel CANCELLED", () => {
    const timedOut = new AbortController();
    timedOut.abort(new DOMException("too slow", "TimeoutError"));
    expect(toStowageError(new AbortError("aborted"), { operation: "get", signal: timedOut.signal }).code).toBe(Code.DeadlineExceeded);
    const cancelled = new AbortController();
    cancelled.abort();
    const mapped = toStowageError(new AbortError("aborted"), { operation: "get", signal: cancelled.signal });
    expect(mapped.code).toBe(Code.Canceled);
    expect(mapped.reason).toBe(Reason.Cancelled);
    expect(toStowageError(new AbortError("aborted"), { operation: "get" }).code).toBe(Code.Canceled);
  });

  it("passes StowageErrors through and carries context into metadata", () => {
    const original = new StowageError(Code.NotFound, "x");
    expect(toStowageError(original, { operation: "x" })).toBe(original);
    const mapped = toStowageError(restError(503, "ServerBusy"), { operation: "put blob", bucket: "c", key: "k", resource: { disk_id: "d1" } });
    expect(mapped.metadata).toMatchObject({ bucket: "c", key: "k", disk_id: "d1", azure_code: "ServerBusy", http_status: "503" });
    expect(mapped.message).toContain('put blob (container "c", blob "k", disk_id "d1") failed');
  });
});

describe("credential failures", () => {
  it("never quote the token endpoint's answer, which may echo the client secret", () => {
    const marker = "client-secret-marker-4711";
    // @azure/identity's AuthenticationError carries the endpoint's answer in its message.
    const echoed = Object.assign(new Error(`AADSTS7000215: Invalid client secret provided. Trace: client_id=c&client_secret=${marker}&grant_type=client_credentials`), {
      name: "AuthenticationError",
      statusCode: 401,
    });
    const mapped = toStowageError(echoed, { operation: "list storage account keys" });
    expect([mapped.code, mapped.reason]).toEqual([Code.Unauthenticated, Reason.AccessDenied]);
    expect(mapped.message).toContain("AADSTS7000215");
    expect(`${mapped.message}${JSON.stringify(mapped.metadata)}`).not.toContain(marker);
    expect(mapped.cause).toBeUndefined();
  });
});

describe("helpers", () => {
  it("read codes, statuses and not-found answers", () => {
    expect(azureErrorCode(restError(404, undefined, "BlobNotFound"))).toBe("BlobNotFound");
    expect(azureHttpStatus(restError(404, "BlobNotFound"))).toBe(404);
    expect(azureHttpStatus(new Error("x"))).toBe(0);
    expect(isNotFound(restError(404, "ResourceNotFound"))).toBe(true);
    expect(isNotFound(restError(403, "AuthorizationFailed"))).toBe(false);
    expect(isNotFound(new StowageError(Code.NotFound, "gone"))).toBe(true);
  });
});
