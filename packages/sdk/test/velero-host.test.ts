/**
 * The host loads Velero plugins: PluginHost with `protocol: "velero"`, adapters implementing our
 * ObjectStore/BlockStore. The peer here is a Stowage executable in Velero mode (same wire as a Go
 * Velero plugin); velero-aws.external.test.ts runs the same path against the real velero-plugin-for-aws.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { PluginHost } from "../src/host.js";
import type { ListObjectsPage, ObjectStore } from "../src/types.js";
import { capturingLogger, memoryFixture } from "./support/host.js";
import { rejection } from "../src/testing.js";

const PLUGIN = "fixture.stowage.io/memory";
const localMain = fileURLToPath(new URL("../../plugin-local/dist/main.js", import.meta.url));

async function pages(store: ObjectStore, input: Parameters<ObjectStore["listObjects"]>[0]): Promise<ListObjectsPage[]> {
  const out: ListObjectsPage[] = [];
  for await (const page of store.listObjects(input)) out.push(page);
  return out;
}

describe("PluginHost with a Velero ObjectStore plugin", () => {
  let host: PluginHost;
  let store: ObjectStore;
  beforeAll(async () => {
    host = new PluginHost({ plugins: [{ command: process.execPath, args: [memoryFixture], protocol: "velero" }], logger: capturingLogger().logger });
    await host.start();
    store = host.objectStore(PLUGIN);
    await store.init({ bucket: "b" });
  });
  afterAll(async () => {
    await host.close();
  });

  it("learns the plugins from generated.PluginLister", () => {
    expect(host.plugins().map((p) => [p.descriptor.kind, p.descriptor.name, p.runtime, p.descriptor.capabilities])).toEqual([
      ["object-store", PLUGIN, "velero-plugin (go-plugin)", ["SIGNED_GET_URLS"]],
    ]);
  });

  it("puts, heads, gets and deletes, including an empty and a multi-chunk body", async () => {
    const big = randomBytes(3 * 1024 * 1024 + 5);
    expect(await store.putObject({ bucket: "b", key: "big", body: Readable.from([big]) })).toEqual({ size: big.length, etag: "" });
    await store.putObject({ bucket: "b", key: "empty", body: Readable.from([]) });
    expect(await store.headObject({ bucket: "b", key: "big" })).toEqual({ key: "big", size: -1, etag: "", contentType: "", metadata: {} });
    expect(await store.headObject({ bucket: "b", key: "nope" })).toBeUndefined();
    const got = await store.getObject({ bucket: "b", key: "big" });
    expect(got.contentLength).toBe(-1);
    expect((await buffer(got.body)).equals(big)).toBe(true);
    expect((await buffer((await store.getObject({ bucket: "b", key: "empty" })).body)).length).toBe(0);
    await store.deleteObject({ bucket: "b", key: "big" });
    expect(await store.headObject({ bucket: "b", key: "big" })).toBeUndefined();
  });

  it("maps a missing object to NOT_FOUND / OBJECT_NOT_FOUND (via ObjectExists)", async () => {
    const e = await rejection(store.getObject({ bucket: "b", key: "missing" }));
    expect([e.code, e.reason]).toEqual([Code.NotFound, Reason.ObjectNotFound]);
  });

  it("refuses what Velero cannot carry: ranges, metadata, signed PUT URLs, object protection (contract 7.6.1)", async () => {
    expect(store.objectLock).toBeUndefined();
    const retention = { mode: "compliance" as const, retainUntil: new Date(Date.now() + 3_600_000) };
    for (const p of [
      store.getObject({ bucket: "b", key: "empty", range: { offset: 1 } }),
      store.putObject({ bucket: "b", key: "m", body: Readable.from([Buffer.from("x")]), metadata: { a: "b" } }),
      store.createSignedUrl({ bucket: "b", key: "empty", method: "PUT", ttlSeconds: 60 }),
      store.putObject({ bucket: "b", key: "locked", body: Readable.from([Buffer.from("x")]), protection: { retention } }),
      store.deleteObject({ bucket: "b", key: "empty", bypassGovernance: true }),
    ]) {
      const e = await rejection(p);
      expect([e.code, e.reason]).toEqual([Code.Unimplemented, Reason.Unsupported]);
    }
  });

  it("checks an announced size and stores nothing on a mismatch", async () => {
    const e = await rejection(store.putObject({ bucket: "b", key: "short", size: 10, body: Readable.from([Buffer.from("abc")]) }));
    expect([e.code, e.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
    expect(await store.headObject({ bucket: "b", key: "short" })).toBeUndefined();
  });

  it("lists with a delimiter (ListCommonPrefixes + ListObjects) and cuts pages on the host", async () => {
    for (const key of ["l/a", "l/b/1", "l/b/2", "l/c/1", "l/d"]) await store.putObject({ bucket: "b", key, body: Readable.from([Buffer.from(key)]) });
    const all = await pages(store, { bucket: "b", prefix: "l/", delimiter: "/" });
    expect(all).toHaveLength(1);
    expect(all[0]?.objects.map((o) => o.key)).toEqual(["l/a", "l/d"]);
    expect(all[0]?.commonPrefixes).toEqual(["l/b/", "l/c/"]);
    const small = await pages(store, { bucket: "b", prefix: "l/", delimiter: "/", pageSize: 3 });
    expect(small.map((p) => [...p.objects.map((o) => o.key), ...p.commonPrefixes])).toEqual([["l/a", "l/b/", "l/c/"], ["l/d"]]);
    const resumed = await pages(store, { bucket: "b", prefix: "l/", delimiter: "/", pageSize: 3, pageToken: small[0]?.nextPageToken });
    expect(resumed.map((p) => p.objects.map((o) => o.key))).toEqual([["l/d"]]);
    const flat = await pages(store, { bucket: "b", prefix: "l/", pageSize: 2, maxPages: 2 });
    expect(flat.map((p) => p.objects.map((o) => o.key))).toEqual([["l/a", "l/b/1"], ["l/b/2", "l/c/1"]]);
  });

  it("refuses calls before Init, recognises Velero's invalid-keys message, checks page tokens and TTLs", async () => {
    const fresh = host.objectStore(PLUGIN, { instance: "fresh" });
    const early = await rejection(fresh.headObject({ bucket: "b", key: "k" }));
    expect([early.code, early.reason]).toEqual([Code.FailedPrecondition, Reason.NotInitialized]);
    const badInit = await rejection(fresh.init({ bucket: "b", nonsense: "1" }));
    expect([badInit.code, badInit.reason, badInit.metadata.invalid_keys]).toEqual([Code.InvalidArgument, Reason.InvalidConfig, "nonsense"]);
    const first = (await pages(store, { bucket: "b", prefix: "l/", pageSize: 1, maxPages: 1 }))[0];
    const wrong = await rejection(pages(store, { bucket: "b", prefix: "m/", pageSize: 1, pageToken: first?.nextPageToken }));
    expect([wrong.code, wrong.reason]).toEqual([Code.InvalidArgument, Reason.InvalidPageToken]);
    const ttl = await rejection(store.createSignedUrl({ bucket: "b", key: "l/a", ttlSeconds: 0 }));
    expect(ttl.code).toBe(Code.InvalidArgument);
  });

  it("returns the checked SHA-256 of a put", async () => {
    const data = Buffer.from("checked body");
    const sha256 = new Uint8Array(createHash("sha256").update(data).digest());
    const res = await store.putObject({ bucket: "b", key: "sha", body: Readable.from([data]), sha256, size: data.length });
    expect(res.sha256).toEqual(sha256);
    const bad = await rejection(store.putObject({ bucket: "b", key: "sha-bad", body: Readable.from([data]), sha256: new Uint8Array(32) }));
    expect([bad.code, bad.reason]).toEqual([Code.DataLoss, Reason.IntegrityMismatch]);
    expect(await store.headObject({ bucket: "b", key: "sha-bad" })).toBeUndefined();
  });

  it("decodes generated.Stack into metadata and turns panics into INTERNAL", async () => {
    const denied = await rejection(store.deleteObject({ bucket: "b", key: "denied" }));
    expect(denied.code).toBe(Code.Unknown);
    expect(denied.rawMessage).toContain("fixture says no");
    expect(denied.metadata.file).toContain("memory-plugin.mjs");
    expect(Number(denied.metadata.line)).toBeGreaterThan(0);
    const boom = await rejection(store.deleteObject({ bucket: "b", key: "boom" }));
    expect([boom.code, boom.metadata.panic]).toEqual([Code.Internal, "true"]);
    expect(boom.rawMessage).toMatch(/^plugin panicked: TypeError/);
  });

  it("re-runs Init on a restarted process before the next call", async () => {
    await rejection(store.getObject({ bucket: "b", key: "crash" }));
    // The new process has an empty memory store; the bucket exists again only if Init was replayed.
    await store.putObject({ bucket: "b", key: "after-restart", body: Readable.from([Buffer.from("x")]) });
    expect(await store.headObject({ bucket: "b", key: "after-restart" })).toBeDefined();
  });
});

describe("PluginHost with a Velero VolumeSnapshotter plugin", () => {
  let host: PluginHost;
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "velero-host-local-"));
    host = new PluginHost({ plugins: [{ command: localMain, protocol: "velero" }], logger: capturingLogger().logger });
    await host.start();
  });
  afterAll(async () => {
    await host.close();
    await rm(root, { recursive: true, force: true });
  });

  it("snapshots through the adapter and reports what Velero lacks as UNIMPLEMENTED", async () => {
    const blocks = host.blockStore("stowage.io/local");
    await blocks.init({ root });
    await writeFile(join(root, "volumes", "vol-1.img"), randomBytes(4096));
    const volume = await blocks.getVolumeInfo({ volumeId: "vol-1" });
    expect(volume.volumeId).toBe("vol-1");
    expect(volume.iops).toBeUndefined();
    const snap = await blocks.createSnapshot({ volumeId: "vol-1", tags: { "velero.io/backup": "b1" } });
    expect(snap.state).toBe("pending");
    for (const p of [blocks.getSnapshot(snap.snapshotId), blocks.listSnapshots({}), blocks.deleteVolume({ volumeId: "vol-1" })]) {
      const e = await rejection(p);
      expect([e.code, e.reason]).toEqual([Code.Unimplemented, Reason.Unsupported]);
    }
    const pv = { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-1" }, spec: { csi: { driver: "local.stowage.io", volumeHandle: "vol-1" } } };
    expect(await blocks.getVolumeId(pv)).toBe("vol-1");
    expect(((await blocks.setVolumeId(pv, "vol-9")) as typeof pv).spec.csi.volumeHandle).toBe("vol-9");
    await blocks.deleteSnapshot(snap.snapshotId);
  });
});
