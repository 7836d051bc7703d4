import { DescribeAvailabilityZonesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { CreateBucketCommand, GetObjectCommand, ListBucketsCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { startMoto, type MotoServer } from "../src/index.js";
import { expectPortClosed, expectProcessGone } from "./support/servers.js";

describe("startMoto", () => {
  let server: MotoServer | undefined;
  afterAll(() => server?.stop());

  it("serves S3 and EC2 at one loopback endpoint and stops cleanly", async () => {
    server = await startMoto();
    expect(server.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const config = {
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    };

    const s3 = new S3Client({ ...config, forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: "stowage-test" }));
    await s3.send(new PutObjectCommand({ Bucket: "stowage-test", Key: "k", Body: "hello moto" }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "stowage-test", Key: "k" }));
    expect(await got.Body?.transformToString()).toBe("hello moto");
    const buckets = await s3.send(new ListBucketsCommand({}));
    expect(buckets.Buckets?.map((b) => b.Name)).toEqual(["stowage-test"]);

    const ec2 = new EC2Client(config);
    const zones = await ec2.send(new DescribeAvailabilityZonesCommand({}));
    expect(zones.AvailabilityZones?.map((z) => z.ZoneName)).toContain(`${server.region}a`);

    await server.reset();
    expect((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
    s3.destroy();
    ec2.destroy();

    const { pid, endpoint } = server;
    await server.stop();
    expectProcessGone(pid);
    await expectPortClosed(endpoint);
  });

  it("names the install command when moto is missing", async () => {
    await expect(startMoto({ binary: "/nonexistent/moto_server" })).rejects.toThrow(
      "bash scripts/install-test-servers moto",
    );
  });
});
