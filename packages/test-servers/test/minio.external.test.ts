import { existsSync } from "node:fs";
import { Client } from "minio";
import { afterAll, describe, expect, it } from "vitest";
import { startMinio, type MinioServer } from "../src/index.js";
import { expectPortClosed, expectProcessGone } from "./support/servers.js";

describe("startMinio", () => {
  let server: MinioServer | undefined;
  afterAll(() => server?.stop());

  it("serves S3 on loopback and stops cleanly", async () => {
    server = await startMinio();
    expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(existsSync(server.dataDir)).toBe(true);

    const url = new URL(server.endpoint);
    const client = new Client({
      endPoint: url.hostname,
      port: Number(url.port),
      useSSL: false,
      accessKey: server.accessKey,
      secretKey: server.secretKey,
      region: server.region,
      pathStyle: true,
    });
    await client.makeBucket("stowage-test", server.region);
    await client.putObject("stowage-test", "dir/hello.txt", Buffer.from("hello minio"));
    const stream = await client.getObject("stowage-test", "dir/hello.txt");
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe("hello minio");

    const { pid, endpoint, dataDir } = server;
    await server.stop();
    expectProcessGone(pid);
    await expectPortClosed(endpoint);
    expect(existsSync(dataDir)).toBe(false);
  });

  it("reports the server's output when it fails to start", async () => {
    // MinIO refuses a root password shorter than 8 characters and exits.
    const failure = startMinio({ secretKey: "short" });
    await expect(failure).rejects.toThrow(/minio exited during startup[\s\S]*Server output/);
  });

  it("names the install command when the binary is missing", async () => {
    await expect(startMinio({ binary: "/nonexistent/minio" })).rejects.toThrow(
      "bash scripts/install-test-servers minio",
    );
  });
});
