import { ApiError } from "@google-cloud/storage";
import { Code, Reason, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { errorReason, httpStatus, isNotFound, toStowageError } from "./errors.js";

function apiError(code: number, reason: string, message = "boom"): ApiError {
  const error = new ApiError({ code, message, errors: [{ reason, message }] } as ConstructorParameters<typeof ApiError>[0]);
  return error;
}

/** The shape of gaxios' GaxiosError (status, response.data), as google-auth-library throws it. */
function gaxiosError(status: number, data: unknown): Error {
  return Object.assign(new Error(`Request failed with status code ${String(status)}`), { name: "GaxiosError", status, response: { status, data } });
}

const ctx = { operation: "get object", bucket: "b", key: "k" };

describe("toStowageError", () => {
  it("reads the status and reason of ApiError and GaxiosError", () => {
    expect([httpStatus(apiError(404, "notFound")), errorReason(apiError(404, "notFound"))]).toEqual([404, "notFound"]);
    const gax = gaxiosError(429, { error: { code: 429, message: "slow", errors: [{ reason: "rateLimitExceeded" }] } });
    expect([httpStatus(gax), errorReason(gax)]).toEqual([429, "rateLimitExceeded"]);
    expect(errorReason(gaxiosError(400, JSON.stringify({ error: "invalid_grant", error_description: "bad" })))).toBe("invalid_grant");
    expect(isNotFound(apiError(404, "notFound"))).toBe(true);
    expect(isNotFound(apiError(403, "forbidden"))).toBe(false);
  });

  it("maps HTTP failures to the contract's codes and reasons", () => {
    const cases: [unknown, Code, string | undefined][] = [
      [apiError(404, "notFound", "No such object: b/k"), Code.NotFound, Reason.ObjectNotFound],
      [apiError(404, "notFound", "The specified bucket does not exist."), Code.NotFound, Reason.BucketNotFound],
      [apiError(409, "alreadyExists"), Code.AlreadyExists, undefined],
      // A failed precondition is a test-and-set that lost: ABORTED, as in every plugin (the SDK's table).
      [apiError(412, "conditionNotMet"), Code.Aborted, undefined],
      [apiError(416, "requestedRangeNotSatisfiable"), Code.OutOfRange, Reason.InvalidRange],
      [apiError(401, "required"), Code.Unauthenticated, Reason.AccessDenied],
      [apiError(403, "forbidden"), Code.PermissionDenied, Reason.AccessDenied],
      [apiError(403, "quotaExceeded"), Code.ResourceExhausted, undefined],
      [apiError(429, "rateLimitExceeded"), Code.Unavailable, Reason.BackendUnavailable],
      [apiError(503, "backendError"), Code.Unavailable, Reason.BackendUnavailable],
      [apiError(400, "invalid", "Provided CRC32C \"x\" doesn't match calculated CRC32C \"y\"."), Code.DataLoss, Reason.IntegrityMismatch],
      [apiError(400, "invalid", "Invalid argument."), Code.InvalidArgument, undefined],
      [gaxiosError(400, { error: "invalid_grant" }), Code.Unauthenticated, Reason.AccessDenied],
      [gaxiosError(500, "oops"), Code.Unavailable, Reason.BackendUnavailable],
      [Object.assign(new Error("The uploaded data did not match the data from the server."), { code: "FILE_NO_UPLOAD" }), Code.DataLoss, Reason.IntegrityMismatch],
      [Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), Code.Unavailable, Reason.BackendUnavailable],
      [Object.assign(new Error("self-signed certificate"), { code: "DEPTH_ZERO_SELF_SIGNED_CERT" }), Code.FailedPrecondition, undefined],
      [new Error("something else"), Code.Internal, Reason.Internal],
    ];
    for (const [error, code, reason] of cases) {
      const mapped = toStowageError(error, ctx);
      expect([mapped.code, mapped.reason], mapped.message).toEqual([code, reason]);
      expect(mapped.cause).toBe(error);
      expect(mapped.metadata.bucket).toBe("b");
    }
  });

  it("never quotes the answers of credential endpoints (token, signBlob), which may echo the credentials", () => {
    const marker = "refresh-token-marker-4711";
    for (const [url, code] of [
      ["https://oauth2.googleapis.com/token", Code.Unauthenticated],
      ["http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token", Code.Unauthenticated],
      ["https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/a@b:signBlob", Code.InvalidArgument],
    ] as const) {
      const echoed = Object.assign(new Error(`invalid_grant: grant_type=refresh_token&refresh_token=${marker}`), {
        name: "GaxiosError",
        status: 400,
        config: { url },
        response: { status: 400, data: `grant_type=refresh_token&refresh_token=${marker}` },
      });
      const mapped = toStowageError(echoed, ctx);
      expect(mapped.code, url).toBe(code);
      expect(`${mapped.message}${JSON.stringify(mapped.metadata)}`, url).not.toContain(marker);
    }
    // A refused token request is UNAUTHENTICATED, still without the answer.
    const refused = toStowageError(Object.assign(new Error(`unauthorized_client ${marker}`), { name: "GaxiosError", status: 401, config: { url: "https://oauth2.googleapis.com/token" } }), ctx);
    expect([refused.code, refused.message.includes(marker)]).toEqual([Code.Unauthenticated, false]);
  });

  it("honours notFoundReason, passes StowageErrors through, and maps aborts and deadlines", () => {
    expect(toStowageError(apiError(404, "notFound"), { operation: "get snapshot", notFoundReason: Reason.SnapshotNotFound }).reason).toBe(Reason.SnapshotNotFound);
    expect(toStowageError(apiError(404, "notFound"), { operation: "get disk" }).reason).toBeUndefined();
    const own = new StowageError(Code.Aborted, "x");
    expect(toStowageError(own, ctx)).toBe(own);
    expect(toStowageError(Object.assign(new Error("aborted"), { name: "AbortError" }), ctx).code).toBe(Code.Canceled);
    expect(toStowageError(Object.assign(new Error("late"), { name: "TimeoutError" }), ctx).code).toBe(Code.DeadlineExceeded);
    const controller = new AbortController();
    controller.abort();
    expect(toStowageError(new Error("socket hang up"), { ...ctx, signal: controller.signal }).code).toBe(Code.Canceled);
    const timed = new AbortController();
    timed.abort(Object.assign(new Error("deadline"), { name: "TimeoutError" }));
    expect(toStowageError(new Error("socket hang up"), { ...ctx, signal: timed.signal }).code).toBe(Code.DeadlineExceeded);
  });
});
