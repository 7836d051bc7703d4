/**
 * `MemoryObjectStore` of `@stowage/sdk/testing` is the repository's one in-memory reference store,
 * examples/memory-plugin/src/store.ts, copied by scripts/generate-scaffold-store.mjs (CI's
 * `check-generated` fails when the copy is stale). Its memory bound takes the one size syntax, under
 * its name and its old one.
 */
import { execFile } from "node:child_process";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { Code, Reason } from "../src/index.js";
import { MemoryObjectStore, memoryObjectStoreConfigKeys, rejection } from "../src/testing.js";

const MiB = 1024 * 1024;
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

async function put(store: MemoryObjectStore, key: string, bytes: number): Promise<void> {
  await store.putObject({ bucket: "b", key, body: Readable.from([Buffer.alloc(bytes, 1)]) });
}

describe("the SDK's in-memory store", () => {
  it("is the generated copy of the example plugin's store", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ["scripts/generate-scaffold-store.mjs", "--check"], { cwd: ROOT });
    expect(stdout).toContain("2 match examples/memory-plugin/src/store.ts");
  });

  it("stores, reads and lists objects in the buckets its configuration names, with no logger needed", async () => {
    const store = new MemoryObjectStore();
    await store.init({ buckets: "b, c" });
    await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("hello")]), contentType: "text/plain" });
    const got = await store.getObject({ bucket: "b", key: "k", range: { offset: 1, length: 3 } });
    expect((await buffer(got.body)).toString()).toBe("ell");
    expect((await store.headObject({ bucket: "c", key: "k" }))).toBeUndefined();
    expect((await rejection(store.headObject({ bucket: "d", key: "k" }))).reason).toBe(Reason.BucketNotFound);
    expect(memoryObjectStoreConfigKeys.map((k) => k.name)).toEqual(["buckets", "maxTotalSize", "bucket", "prefix"]);
  });

  it("bounds its memory by maxTotalSize, or its old name maxTotalMiB, a bare number being MiB", async () => {
    for (const config of [{ maxTotalSize: "1" }, { maxTotalSize: "1MiB" }, { maxTotalSize: "1024KiB" }, { maxTotalMiB: "1" }, { maxTotalMiB: "1MiB" }]) {
      const store = new MemoryObjectStore();
      await store.init({ buckets: "b", ...config });
      await put(store, "fits", MiB);
      const full = await rejection(put(store, "more", 1));
      expect(full.code, JSON.stringify(config)).toBe(Code.ResourceExhausted);
    }
  });

  it("refuses a bad size naming the key as written", async () => {
    for (const key of ["maxTotalSize", "maxTotalMiB"]) {
      const error = await rejection(new MemoryObjectStore().init({ buckets: "b", [key]: "lots" }));
      expect([error.code, error.reason, error.metadata.key], key).toEqual([Code.InvalidArgument, Reason.InvalidConfig, key]);
      expect(error.rawMessage).toMatch(new RegExp(`^${key} must be a size .*\\(MiB, or with a KiB/MiB/GiB suffix\\), got "lots"$`));
    }
    const both = await rejection(new MemoryObjectStore().init({ buckets: "b", maxTotalSize: "2MiB", maxTotalMiB: "1" }));
    expect(both.rawMessage).toBe("maxTotalSize and its alias maxTotalMiB are both set, to different values; keep only maxTotalSize");
  });
});
