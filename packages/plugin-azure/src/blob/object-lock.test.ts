import { RestError } from "@azure/storage-blob";
import { Code, Reason } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import type { BlobStoreSettings } from "./config.js";
import { BlobObjectLock, onlyGovernance, policyOf, protectionOf, uploadProtection } from "./object-lock.js";

const UNTIL = new Date("2031-01-02T03:04:05.000Z");

/** A backend whose blob reports `props` and whose container reports `immutable`. */
function lockWith(props: Record<string, unknown>, immutable: boolean): { lock: BlobObjectLock; settings: BlobStoreSettings } {
  const settings = {
    service: { getContainerClient: () => ({ getProperties: () => Promise.resolve({ isImmutableStorageWithVersioningEnabled: immutable }) }) },
  } as unknown as BlobStoreSettings;
  const lock = new BlobObjectLock({
    settings: () => settings,
    blob: () => ({ getProperties: () => Promise.resolve(props) }) as never,
    checkRef: () => undefined,
    call: (_settings, _signal, _what, call) => call(new AbortController().signal),
  });
  return { lock, settings };
}

function azureError(status: number, code: string): RestError {
  return new RestError("refused", { statusCode: status, code });
}

describe("Azure immutability ↔ contract protection", () => {
  it("maps Unlocked to governance, Locked to compliance, and the legal hold", () => {
    expect(protectionOf({ immutabilityPolicyMode: "unlocked", immutabilityPolicyExpiresOn: UNTIL })).toEqual({ retention: { mode: "governance", retainUntil: UNTIL }, legalHold: false });
    expect(protectionOf({ immutabilityPolicyMode: "Locked", immutabilityPolicyExpiresOn: UNTIL, legalHold: true })).toEqual({ retention: { mode: "compliance", retainUntil: UNTIL }, legalHold: true });
    expect(protectionOf({ immutabilityPolicyMode: "Mutable", immutabilityPolicyExpiresOn: UNTIL })).toBeUndefined();
    expect(protectionOf({})).toBeUndefined();
  });

  it("rounds retainUntil up to Azure's whole seconds, never down", () => {
    expect(policyOf({ mode: "governance", retainUntil: new Date(UNTIL.getTime() + 1) })).toEqual({ expiriesOn: new Date(UNTIL.getTime() + 1000), policyMode: "Unlocked" });
    expect(policyOf({ mode: "compliance", retainUntil: UNTIL })).toEqual({ expiriesOn: UNTIL, policyMode: "Locked" });
    expect(uploadProtection({ legalHold: false })).toEqual({});
    expect(uploadProtection({ retention: { mode: "compliance", retainUntil: UNTIL }, legalHold: true })).toEqual({ immutabilityPolicy: { expiriesOn: UNTIL, policyMode: "Locked" }, legalHold: true });
  });

  it("lets a bypass remove a governance retention only", () => {
    const future = new Date(Date.now() + 60_000);
    expect(onlyGovernance({ retention: { mode: "governance", retainUntil: future }, legalHold: false })).toBe(true);
    expect(onlyGovernance({ retention: { mode: "governance", retainUntil: future }, legalHold: true })).toBe(false);
    expect(onlyGovernance({ retention: { mode: "compliance", retainUntil: future }, legalHold: false })).toBe(false);
    expect(onlyGovernance({ retention: { mode: "governance", retainUntil: new Date(Date.now() - 1000) }, legalHold: false })).toBe(false);
  });
});

describe("BlobObjectLock.refusal (the store's own refusals)", () => {
  const ref = { bucket: "b", key: "k" };

  it("maps 409 BlobImmutableDueToPolicy to OBJECT_LOCKED with what protects the blob", async () => {
    const { lock, settings } = lockWith({ immutabilityPolicyMode: "locked", immutabilityPolicyExpiresOn: UNTIL }, true);
    const error = await lock.refusal(settings, ref, "delete", azureError(409, "BlobImmutableDueToPolicy"), false, undefined);
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.reason).toBe(Reason.ObjectLocked);
    expect(error.metadata).toEqual({ bucket: "b", key: "k", legal_hold: "false", mode: "COMPLIANCE", retain_until: UNTIL.toISOString() });
  });

  it("maps 409 BlobImmutableDueToLegalHold to OBJECT_LOCKED with legal_hold true", async () => {
    const { lock, settings } = lockWith({ legalHold: true }, true);
    const error = await lock.refusal(settings, ref, "overwrite", azureError(409, "BlobImmutableDueToLegalHold"), false, undefined);
    expect(error.reason).toBe(Reason.ObjectLocked);
    expect(error.metadata.legal_hold).toBe("true");
  });

  it("maps a refused protection in a container without immutability to BUCKET_NOT_LOCKABLE, else the usual mapping", async () => {
    const plain = lockWith({}, false);
    expect((await plain.lock.refusal(plain.settings, ref, "overwrite", azureError(400, "InvalidHeaderValue"), true, undefined)).reason).toBe(Reason.BucketNotLockable);
    const worm = lockWith({}, true);
    expect((await worm.lock.refusal(worm.settings, ref, "overwrite", azureError(400, "InvalidHeaderValue"), true, undefined)).reason).not.toBe(Reason.BucketNotLockable);
    expect((await worm.lock.refusal(worm.settings, ref, "overwrite", azureError(403, "AuthorizationPermissionMismatch"), true, undefined)).code).toBe(Code.PermissionDenied);
  });
});
