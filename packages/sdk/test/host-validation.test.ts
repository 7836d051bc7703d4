/**
 * Every argument of every ObjectStore and BlockStore client method is checked before the wire: a
 * bad one is an INVALID_ARGUMENT StowageError that names the field (INVALID_NAME for names that are
 * not well-formed Unicode), never a RangeError, a serialization failure reported as INTERNAL, a
 * silent substitution (a method that becomes GET, a key rewritten to U+FFFD) or a crash. Through a
 * real host and plugin process.
 */
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import type { PluginHost, HostBlockStore, HostObjectStore } from "../src/host.js";
import { startFixtureHost } from "./support/host.js";
import { rejection } from "../src/testing.js";

let host: PluginHost;
let objects: HostObjectStore;
let blocks: HostBlockStore;
let pid: number | undefined;

beforeAll(async () => {
  host = await startFixtureHost("with-blocks");
  objects = host.objectStore("fixture.stowage.io/memory");
  blocks = host.blockStore("fixture.stowage.io/blocks");
  await objects.init({ buckets: "b" });
  await blocks.init({});
  pid = host.plugins()[0]?.pid;
}, 60_000);

afterAll(async () => {
  // No bad argument reached the plugin in a way that hurt it.
  expect(host.plugins().map((p) => p.pid)).toEqual([pid, pid]);
  await host.close();
});

const body = (): Readable => Readable.from([Buffer.from("data")]);
/** Anything, for arguments typed otherwise: the checks are for callers without a type checker too. */
const any = (value: unknown): never => value as never;
const LONE_HIGH = "a\uD800";
const LONE_LOW = "a\uDFFF";

describe("ObjectStore arguments", () => {
  it.each([
    ["size NaN", () => objects.putObject({ bucket: "b", key: "k", body: body(), size: Number.NaN }), /^size must be a whole number/],
    ["size Infinity", () => objects.putObject({ bucket: "b", key: "k", body: body(), size: Infinity }), /^size must be/],
    ["size 1.5", () => objects.putObject({ bucket: "b", key: "k", body: body(), size: 1.5 }), /^size must be/],
    ["size -1", () => objects.putObject({ bucket: "b", key: "k", body: body(), size: -1 }), /^size must be/],
    ["size 2^53", () => objects.putObject({ bucket: "b", key: "k", body: body(), size: 2 ** 53 }), /^size must be/],
    ["range.offset NaN", () => objects.getObject({ bucket: "b", key: "k", range: { offset: Number.NaN } }), /^range\.offset must be/],
    ["range.offset -1", () => objects.getObject({ bucket: "b", key: "k", range: { offset: -1 } }), /^range\.offset must be/],
    ["range.length Infinity", () => objects.getObject({ bucket: "b", key: "k", range: { offset: 0, length: Infinity } }), /^range\.length must be/],
    ["range.length 0.5", () => objects.getObject({ bucket: "b", key: "k", range: { offset: 0, length: 0.5 } }), /^range\.length must be/],
    ["range not an object", () => objects.getObject({ bucket: "b", key: "k", range: any(5) }), /^range must be an object/],
    ["pageSize 2^31", () => objects.listObjects({ bucket: "b", pageSize: 2 ** 31 }).next(), /^pageSize must be a whole number from 0 to 2147483647/],
    ["pageSize 1.5", () => objects.listObjects({ bucket: "b", pageSize: 1.5 }).next(), /^pageSize must be/],
    ["pageSize \"10\"", () => objects.listObjects({ bucket: "b", pageSize: any("10") }).next(), /^pageSize must be/],
    ["maxPages -1", () => objects.listObjects({ bucket: "b", maxPages: -1 }).next(), /^maxPages must be/],
    ["method \"post\"", () => objects.createSignedUrl({ bucket: "b", key: "k", method: any("post"), ttlSeconds: 60 }), /^method must be "GET" or "PUT", got "post"/],
    ["method \"put\"", () => objects.createSignedUrl({ bucket: "b", key: "k", method: any("put"), ttlSeconds: 60 }), /^method must be "GET" or "PUT"/],
    ["ttlSeconds NaN", () => objects.createSignedUrl({ bucket: "b", key: "k", ttlSeconds: Number.NaN }), /^ttlSeconds must be a whole number/],
    ["ttlSeconds 1.5", () => objects.createSignedUrl({ bucket: "b", key: "k", ttlSeconds: 1.5 }), /^ttlSeconds must be/],
    ["body a Buffer", () => objects.putObject({ bucket: "b", key: "k", body: any(Buffer.from("x")) }), /^body must be an async iterable .* Readable\.from\(\[bytes\]\)/],
    ["sha256 a string", () => objects.putObject({ bucket: "b", key: "k", body: body(), sha256: any("abc") }), /^sha256 must be a Uint8Array/],
    ["options.timeoutMs NaN", () => objects.headObject({ bucket: "b", key: "k" }, { timeoutMs: Number.NaN }), /^options\.timeoutMs must be/],
    ["options.timeoutMs -5", () => objects.deleteObject({ bucket: "b", key: "k" }, { timeoutMs: -5 }), /^options\.timeoutMs must be/],
    ["options.timeoutMs 2^64 (no timer or gRPC deadline holds it)", () => objects.headObject({ bucket: "b", key: "k" }, { timeoutMs: 2 ** 64 }), /^options\.timeoutMs must be a number of milliseconds from 0 to 2147483647/],
    ["options.timeoutMs of a stream 1e12", () => objects.listObjects({ bucket: "b" }, { timeoutMs: 1e12 }).next(), /^options\.timeoutMs must be/],
    ["options.signal not a signal", () => objects.headObject({ bucket: "b", key: "k" }, { signal: any({}) }), /^options\.signal must be an AbortSignal/],
    ["input null", () => objects.headObject(any(null)), /^the object input must be an object/],
    ["contentType a number", () => objects.putObject({ bucket: "b", key: "k", body: body(), contentType: any(7) }), /^contentType must be a string/],
  ])("%s is INVALID_ARGUMENT naming the field", async (_name, call, message) => {
    const error = await rejection(call());
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(message);
  });

  it.each([
    ["key", () => objects.headObject({ bucket: "b", key: LONE_HIGH }), /^key "a\\ud800" is not well-formed Unicode/],
    ["bucket", () => objects.deleteObject({ bucket: LONE_LOW, key: "k" }), /^bucket "a\\udfff" is not well-formed Unicode/],
    ["prefix", () => objects.listObjects({ bucket: "b", prefix: LONE_HIGH }).next(), /^prefix /],
    ["delimiter", () => objects.listObjects({ bucket: "b", delimiter: "\uDC00" }).next(), /^delimiter /],
    ["pageToken", () => objects.listObjects({ bucket: "b", pageToken: LONE_HIGH }).next(), /^pageToken /],
    ["metadata key", () => objects.putObject({ bucket: "b", key: "k", body: body(), metadata: { [LONE_HIGH]: "v" } }), /^metadata has the key "a\\ud800"/],
    ["metadata value", () => objects.putObject({ bucket: "b", key: "k", body: body(), metadata: { m: LONE_LOW } }), /^metadata\["m"\] "a\\udfff" is not well-formed/],
    ["config value", () => objects.init({ buckets: LONE_HIGH }), /^config\["buckets"\] is not well-formed Unicode/],
    ["key a number", () => objects.getObject({ bucket: "b", key: any(5) }), /^key must be a string, got 5/],
    ["bucket null", () => objects.headObject({ bucket: any(null), key: "k" }), /^bucket must be a string, got null/],
  ])("a %s that is not a well-formed string is INVALID_ARGUMENT/INVALID_NAME", async (_name, call, message) => {
    const error = await rejection(call());
    expect(error).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidName });
    expect(error.rawMessage).toMatch(message);
  });

  it("two keys that differ only in lone surrogates no longer collide on U+FFFD", async () => {
    await rejection(objects.putObject({ bucket: "b", key: LONE_HIGH, body: body() }));
    await rejection(objects.putObject({ bucket: "b", key: LONE_LOW, body: Readable.from([Buffer.from("other")]) }));
    // Before the check, both were stored as "a\uFFFD", the second overwriting the first.
    expect(await objects.headObject({ bucket: "b", key: "a\uFFFD" })).toBeUndefined();
  });

  it("a configuration value of the wrong type is INVALID_CONFIG, and its value is never quoted (it may be a secret)", async () => {
    const error = await rejection(objects.init({ buckets: "b", secretKey: any({ token: "hunter2" }) }));
    expect(error).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidConfig });
    expect(error.rawMessage).toBe('config["secretKey"] must be a string, got a value of type object');
    expect(error.message).not.toMatch(/hunter2/);
  });

  it("a body that yields something other than bytes fails the upload with INVALID_ARGUMENT, storing nothing", async () => {
    async function* strings(): AsyncGenerator {
      yield Buffer.from("bytes first, then ");
      yield "a string";
    }
    const error = await rejection(objects.putObject({ bucket: "b", key: "strings", body: any(strings()) }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/the body yielded a string/);
    expect(await objects.headObject({ bucket: "b", key: "strings" })).toBeUndefined();
    const objectMode = await rejection(objects.putObject({ bucket: "b", key: "strings", body: any(Readable.from(["text"])) }));
    expect(objectMode.code).toBe(Code.InvalidArgument);
  });

  it("the plugin refuses a sha256 that is not 32 bytes with INVALID_ARGUMENT (contract 5.2.7), storing nothing", async () => {
    const error = await rejection(objects.putObject({ bucket: "b", key: "short-sum", body: body(), sha256: new Uint8Array(5) }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/sha256 must be exactly 32 bytes, got 5/);
    expect(await objects.headObject({ bucket: "b", key: "short-sum" })).toBeUndefined();
  });

  it("values the plugin judges still reach it: an empty key, a 1001-entry page, a TTL of 0", async () => {
    expect(await rejection(objects.headObject({ bucket: "b", key: "" }))).toMatchObject({ code: Code.InvalidArgument, reason: Reason.InvalidName });
    expect((await rejection(objects.listObjects({ bucket: "b", pageSize: 1001 }).next())).rawMessage).toMatch(/page_size must be between 0 and 1000/);
    expect((await rejection(objects.createSignedUrl({ bucket: "b", key: "k", ttlSeconds: 0 }))).rawMessage).toMatch(/ttl_seconds must be at least 1/);
  });
});

describe("BlockStore arguments", () => {
  const cyclic: Record<string, unknown> = { apiVersion: "v1" };
  cyclic.self = cyclic;
  it.each([
    ["snapshotId a lone surrogate", () => blocks.getSnapshot(LONE_HIGH), /^snapshotId "a\\ud800" is not well-formed/, Reason.InvalidName],
    ["snapshotId a number", () => blocks.deleteSnapshot(any(3)), /^snapshotId must be a string/, Reason.InvalidName],
    ["volumeId a lone surrogate", () => blocks.createSnapshot({ volumeId: LONE_LOW }), /^volumeId /, Reason.InvalidName],
    ["zone a lone surrogate", () => blocks.getVolumeInfo({ volumeId: "vol-1", zone: LONE_HIGH }), /^zone /, Reason.InvalidName],
    ["a tag value", () => blocks.createSnapshot({ volumeId: "vol-1", tags: { t: LONE_HIGH } }), /^tags\["t"\] /, Reason.InvalidName],
    ["a tag of the wrong type", () => blocks.createSnapshot({ volumeId: "vol-1", tags: { t: any(1) } }), /^tags\["t"\] must be a string, got 1/, Reason.InvalidName],
    ["a tag filter key", () => blocks.listSnapshots({ tagFilter: { [LONE_LOW]: "v" } }), /^tagFilter has the key/, Reason.InvalidName],
    ["pageSize NaN", () => blocks.listSnapshots({ pageSize: Number.NaN }), /^pageSize must be/, undefined],
    ["iops NaN", () => blocks.createVolumeFromSnapshot({ snapshotId: "snap-1", iops: Number.NaN }), /^iops must be/, undefined],
    ["iops 1.5", () => blocks.createVolumeFromSnapshot({ snapshotId: "snap-1", iops: 1.5 }), /^iops must be/, undefined],
    ["iops -100", () => blocks.createVolumeFromSnapshot({ snapshotId: "snap-1", iops: -100 }), /^iops must be/, undefined],
    ["volumeType a lone surrogate", () => blocks.createVolumeFromSnapshot({ snapshotId: "snap-1", volumeType: LONE_HIGH }), /^volumeType /, Reason.InvalidName],
    ["a PersistentVolume that cannot be JSON (a cycle)", () => blocks.getVolumeId(cyclic), /^persistentVolume cannot be encoded as JSON/, undefined],
    ["a PersistentVolume with a bigint", () => blocks.getVolumeId({ spec: { size: 1n } }), /^persistentVolume cannot be encoded as JSON/, undefined],
    ["a PersistentVolume that is an array", () => blocks.setVolumeId([], "vol-1"), /^persistentVolume must be a JSON object, got an array/, undefined],
    ["setVolumeId's volumeId a lone surrogate", () => blocks.setVolumeId({ spec: {} }, LONE_HIGH), /^volumeId /, Reason.InvalidName],
    ["init config a string", () => blocks.init(any("zone=z1")), /^config must be an object of strings/, Reason.InvalidConfig],
  ])("%s is INVALID_ARGUMENT naming the field", async (_name, call, message, reason) => {
    const error = await rejection(call());
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.reason).toBe(reason);
    expect(error.rawMessage).toMatch(message);
  });

  it("good arguments still work", async () => {
    const snapshot = await blocks.createSnapshot({ volumeId: "vol-1", tags: { run: "validation" } });
    const volumeId = await blocks.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, iops: 3000 });
    expect((await blocks.getVolumeInfo({ volumeId })).iops).toBe(3000);
    const pv = await blocks.setVolumeId({ spec: { csi: { driver: "fixture.stowage.io", volumeHandle: "old" } } }, volumeId);
    expect(await blocks.getVolumeId(pv)).toBe(volumeId);
    expect((await blocks.listSnapshots({ tagFilter: { run: "validation" }, pageSize: 10 })).snapshots).toHaveLength(1);
  });
});
