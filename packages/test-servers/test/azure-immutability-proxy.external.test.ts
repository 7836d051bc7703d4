import { BlobServiceClient, RestError, StorageSharedKeyCredential } from "@azure/storage-blob";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAzureImmutabilityProxy, startAzurite, type AzureImmutabilityProxy, type AzuriteServer } from "../src/index.js";

/** The service's error code and status of a failed call. */
async function failure(call: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RestError) return { status: error.statusCode ?? 0, code: error.code ?? "" };
    throw error;
  }
  throw new Error("the call succeeded");
}

describe("startAzureImmutabilityProxy (a double of Azure version-level immutability in front of Azurite)", () => {
  let azurite: AzuriteServer;
  let proxy: AzureImmutabilityProxy;
  let service: BlobServiceClient;
  const inAnHour = (): Date => new Date(Date.now() + 3600_000);

  beforeAll(async () => {
    azurite = await startAzurite();
    proxy = await startAzureImmutabilityProxy({ azuriteBlobEndpoint: azurite.blobEndpoint, accountKey: azurite.accountKey, immutableContainers: ["worm"] });
    service = BlobServiceClient.fromConnectionString(proxy.connectionString);
    await service.getContainerClient("worm").create();
    await service.getContainerClient("plain").create();
  });
  afterAll(async () => {
    await proxy.stop();
    await azurite.stop();
  });

  it("Azurite alone does not implement the immutability operations (its handlers answer 501)", async () => {
    const direct = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient("worm").getBlockBlobClient("stub");
    await direct.upload("x", 1);
    expect(await failure(direct.setLegalHold(true))).toEqual({ status: 501, code: "APINotImplemented" });
    expect(await failure(direct.setImmutabilityPolicy({ expiriesOn: inAnHour(), policyMode: "Unlocked" }))).toEqual({ status: 501, code: "APINotImplemented" });
  });

  it("reports immutability on the containers it was given, and SharedKey requests still verify at Azurite", async () => {
    expect((await service.getContainerClient("worm").getProperties()).isImmutableStorageWithVersioningEnabled).toBe(true);
    expect((await service.getContainerClient("plain").getProperties()).isImmutableStorageWithVersioningEnabled).toBeUndefined();
    const wrongKey = new StorageSharedKeyCredential(azurite.accountName, Buffer.from("not the key").toString("base64"));
    const forged = new BlobServiceClient(proxy.blobEndpoint, wrongKey).getContainerClient("worm").getBlockBlobClient("a");
    expect(await failure(forged.upload("x", 1))).toEqual({ status: 403, code: "AuthorizationFailure" });
    // The operations the double serves itself are authenticated by Azurite first.
    await service.getContainerClient("worm").getBlockBlobClient("a").upload("x", 1);
    expect((await failure(forged.setLegalHold(true))).status).toBe(403);
    expect(proxy.current("worm", "a")?.legalHold).toBe(false);
  });

  it("stores a policy with the put, reports it, keeps it on overwrite and delete as a previous version", async () => {
    const blob = service.getContainerClient("worm").getBlockBlobClient("put");
    const until = inAnHour();
    const put = await blob.upload("v1", 2, { immutabilityPolicy: { expiriesOn: until, policyMode: "Unlocked" }, legalHold: true });
    expect(put.versionId).toBeDefined();
    const props = await blob.getProperties();
    expect(props.immutabilityPolicyMode?.toLowerCase()).toBe("unlocked");
    expect(props.immutabilityPolicyExpiresOn?.getTime()).toBe(Math.floor(until.getTime() / 1000) * 1000);
    expect(props.legalHold).toBe(true);
    // Azure with versioning: the overwrite succeeds, the protected version becomes a previous version.
    await blob.upload("v2", 2);
    expect(proxy.previous("worm", "put")).toHaveLength(1);
    expect(proxy.current("worm", "put")?.legalHold).toBe(false);
    const old = proxy.previous("worm", "put")[0]?.versionId ?? "";
    expect(await failure(blob.withVersion(old).delete())).toEqual({ status: 409, code: "BlobImmutableDueToLegalHold" });
  });

  it("a Locked policy can only be extended; an Unlocked one changed or deleted; legal hold set and released", async () => {
    const blob = service.getContainerClient("worm").getBlockBlobClient("rules");
    await blob.upload("x", 1);
    const until = inAnHour();
    await blob.setImmutabilityPolicy({ expiriesOn: until, policyMode: "Unlocked" });
    await blob.setImmutabilityPolicy({ expiriesOn: new Date(until.getTime() - 60_000), policyMode: "Unlocked" });
    await blob.deleteImmutabilityPolicy();
    expect((await blob.getProperties()).immutabilityPolicyMode).toBeUndefined();
    await blob.setImmutabilityPolicy({ expiriesOn: until, policyMode: "Locked" });
    expect(await failure(blob.setImmutabilityPolicy({ expiriesOn: new Date(until.getTime() - 60_000), policyMode: "Locked" }))).toEqual({ status: 409, code: "BlobImmutableDueToPolicy" });
    expect(await failure(blob.setImmutabilityPolicy({ expiriesOn: until, policyMode: "Unlocked" }))).toEqual({ status: 409, code: "BlobImmutableDueToPolicy" });
    expect(await failure(blob.deleteImmutabilityPolicy())).toEqual({ status: 409, code: "BlobImmutableDueToPolicy" });
    await blob.setImmutabilityPolicy({ expiriesOn: new Date(until.getTime() + 60_000), policyMode: "Locked" });
    expect((await blob.setLegalHold(true)).legalHold).toBe(true);
    expect((await blob.setLegalHold(false)).legalHold).toBe(false);
  });

  it("refuses protection outside an immutability-enabled container and on a missing blob", async () => {
    const plain = service.getContainerClient("plain").getBlockBlobClient("p");
    expect(await failure(plain.upload("x", 1, { legalHold: true }))).toEqual({ status: 400, code: "InvalidHeaderValue" });
    expect(await plain.exists()).toBe(false);
    await plain.upload("x", 1);
    expect(await failure(plain.setLegalHold(true))).toEqual({ status: 400, code: "InvalidHeaderValue" });
    const missing = service.getContainerClient("worm").getBlockBlobClient("missing");
    expect(await failure(missing.setLegalHold(true))).toEqual({ status: 404, code: "BlobNotFound" });
  });
});
