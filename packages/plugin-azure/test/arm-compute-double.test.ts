/**
 * Checks that the Microsoft.Compute double refuses what Azure refuses, driven through the real
 * `@azure/arm-compute` client (with pipeline policies that break the request on purpose).
 */
import type { ComputeManagementClient } from "@azure/arm-compute";
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import { caught } from "@stowage/sdk/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { armComputeClient, createDisk, startArmComputeDouble, type ArmComputeDouble } from "./support/arm-compute-double.js";

let double: ArmComputeDouble;
let client: ComputeManagementClient;

beforeAll(async () => {
  double = await startArmComputeDouble({ listPageSize: 1 });
  client = await armComputeClient(double);
  await createDisk(double, "d1");
  await createDisk(double, "d2");
});

afterAll(async () => {
  await double.stop();
});

describe("the ARM Microsoft.Compute double", () => {
  it("requires api-version", async () => {
    const strip: PipelinePolicy = {
      name: "strip-api-version",
      sendRequest: (request, next) => {
        const url = new URL(request.url);
        url.searchParams.delete("api-version");
        request.url = url.href;
        return next(request);
      },
    };
    const broken = await armComputeClient(double);
    broken.pipeline.addPolicy(strip, { afterPhase: "Retry" });
    expect(await caught(broken.disks.get("stowage-disks", "d1"))).toMatchObject({ statusCode: 400, code: "MissingApiVersionParameter" });
  });

  it("requires a bearer token it issued", async () => {
    const anonymous = await armComputeClient(double);
    anonymous.pipeline.removePolicy({ name: "bearerTokenAuthenticationPolicy" });
    expect(await caught(anonymous.disks.get("stowage-disks", "d1"))).toMatchObject({ statusCode: 401, code: "AuthenticationFailed" });
    const forged = await armComputeClient(double);
    forged.pipeline.addPolicy({ name: "forge", sendRequest: (request, next) => (request.headers.set("authorization", "Bearer forged"), next(request)) }, { afterPhase: "Sign" });
    expect(await caught(forged.disks.get("stowage-disks", "d1"))).toMatchObject({ statusCode: 401, code: "InvalidAuthenticationToken" });
  });

  it("answers 404 ResourceNotFound, ResourceGroupNotFound, and 204 for deleting a missing resource", async () => {
    expect(await caught(client.disks.get("stowage-disks", "nope"))).toMatchObject({ statusCode: 404, code: "ResourceNotFound" });
    expect(await caught(client.disks.get("no-group", "d1"))).toMatchObject({ statusCode: 404, code: "ResourceGroupNotFound" });
    await client.snapshots.delete("stowage-snapshots", "nope", { updateIntervalInMs: 10 }).pollUntilDone();
  });

  it("refuses bad names, '/' in tag names and changes of creationData", async () => {
    const bad = client.disks.createOrUpdate("stowage-disks", "bad-", { location: "westeurope", creationData: { createOption: "Empty" }, diskSizeGB: 1 }).pollUntilDone();
    expect(await caught(bad)).toMatchObject({ statusCode: 400, code: "InvalidResourceName" });
    const tags = client.disks.createOrUpdate("stowage-disks", "tagged", { location: "westeurope", tags: { "a/b": "c" }, creationData: { createOption: "Empty" }, diskSizeGB: 1 }).pollUntilDone();
    expect(await caught(tags)).toMatchObject({ statusCode: 400, code: "InvalidTagNameCharacters" });
    const change = client.disks.createOrUpdate("stowage-disks", "d1", { location: "westeurope", creationData: { createOption: "Copy", sourceResourceId: double.diskId("stowage-disks", "d2") } }).pollUntilDone();
    expect(await caught(change)).toMatchObject({ statusCode: 409, code: "PropertyChangeNotAllowed" });
  });

  it("answers 409 Conflict while an operation on the resource runs, and reports failed operations", async () => {
    double.hangNextOperations(1);
    const controller = new AbortController();
    const hung = client.snapshots
      .createOrUpdate("stowage-snapshots", "busy", { location: "westeurope", creationData: { createOption: "Copy", sourceResourceId: double.diskId("stowage-disks", "d1") } }, { updateIntervalInMs: 10, abortSignal: controller.signal })
      .pollUntilDone({ abortSignal: controller.signal });
    hung.catch(() => undefined);
    while (double.resource(double.snapshotId("stowage-snapshots", "busy")) === undefined) await new Promise((r) => setTimeout(r, 5));
    expect(await caught(client.snapshots.delete("stowage-snapshots", "busy").pollUntilDone())).toMatchObject({ statusCode: 409, code: "Conflict" });
    controller.abort();
    double.failNextOperations(1, { code: "InternalDiskManagementError", message: "boom" });
    const failed = await caught(client.snapshots.createOrUpdate("stowage-snapshots", "fails", { location: "westeurope", creationData: { createOption: "Copy", sourceResourceId: double.diskId("stowage-disks", "d1") } }, { updateIntervalInMs: 10 }).pollUntilDone());
    expect((failed as Error).message).toContain("InternalDiskManagementError");
  });

  it("pages listings with nextLink", async () => {
    const names: string[] = [];
    for await (const disk of client.disks.listByResourceGroup("stowage-disks")) names.push(disk.name ?? "");
    expect(names).toEqual(expect.arrayContaining(["d1", "d2"]));
    const pages = client.disks.listByResourceGroup("stowage-disks").byPage();
    const first = await pages.next();
    expect(first.done).toBe(false);
    expect((first.value as unknown[]).length).toBe(1);
  });
});
