import { afterAll, describe, expect, it } from "vitest";
import { startFakeGcs, type FakeGcsServer } from "../src/index.js";
import { expectPortClosed, expectProcessGone } from "./support/servers.js";

async function ok(response: Response): Promise<Response> {
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  return response;
}

describe("startFakeGcs", () => {
  let server: FakeGcsServer | undefined;
  afterAll(() => server?.stop());

  it("serves the GCS JSON API on loopback and stops cleanly", async () => {
    server = await startFakeGcs();
    const { endpoint } = server;
    expect(endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

    await ok(
      await fetch(`${endpoint}/storage/v1/b?project=test`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "stowage-test" }),
      }),
    );
    const uploaded = (await (
      await ok(
        await fetch(`${endpoint}/upload/storage/v1/b/stowage-test/o?uploadType=media&name=dir%2Fhello.txt`, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: "hello gcs",
        }),
      )
    ).json()) as { name: string; size: string };
    expect(uploaded).toMatchObject({ name: "dir/hello.txt", size: "9" });
    const downloaded = await ok(await fetch(`${endpoint}/storage/v1/b/stowage-test/o/dir%2Fhello.txt?alt=media`));
    expect(await downloaded.text()).toBe("hello gcs");

    await server.reset();
    const listed = (await (await ok(await fetch(`${endpoint}/storage/v1/b?project=test`))).json()) as {
      items?: unknown[];
    };
    expect(listed.items ?? []).toEqual([]);

    const { pid } = server;
    await server.stop();
    expectProcessGone(pid);
    await expectPortClosed(endpoint);
  });
});
