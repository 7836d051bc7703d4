import { BlobServiceClient } from "@azure/storage-blob";
import { afterAll, describe, expect, it } from "vitest";
import { startAzurite, type AzuriteServer } from "../src/index.js";
import { expectPortClosed, expectProcessGone } from "./support/servers.js";

describe("startAzurite", () => {
  let server: AzuriteServer | undefined;
  afterAll(() => server?.stop());

  it("serves Blob storage on loopback and stops cleanly", async () => {
    server = await startAzurite();
    expect(server.blobEndpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);

    const service = BlobServiceClient.fromConnectionString(server.connectionString);
    const container = service.getContainerClient("stowage-test");
    await container.create();
    const blob = container.getBlockBlobClient("dir/hello.txt");
    await blob.upload("hello azurite", "hello azurite".length);
    expect((await blob.downloadToBuffer()).toString()).toBe("hello azurite");

    const { pid, blobEndpoint } = server;
    await server.stop();
    expectProcessGone(pid);
    await expectPortClosed(blobEndpoint);
  });
});
