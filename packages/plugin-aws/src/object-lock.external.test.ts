import {
  CreateBucketCommand,
  ListObjectVersionsCommand,
  PutObjectLockConfigurationCommand,
  PutObjectRetentionCommand,
  S3Client,
  type ListObjectVersionsCommandOutput,
} from "@aws-sdk/client-s3";
import { startMoto, type MotoServer } from "@stowage/test-servers";
import { AssumeRoleProvider } from "minio/dist/esm/AssumeRoleProvider.mjs";
import { Code, Reason, StowageError, type ObjectLock, type Retention } from "@stowage/sdk";
import { PluginHost, nodePluginCommand, type HostObjectStore, type TransferEvent } from "@stowage/sdk/host";
import { rejection } from "@stowage/sdk/testing";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buffer } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytes, chunks, startMinioFixture, type MinioFixture } from "../test/support/minio.js";
import { configureAwsS3 } from "./s3/config.js";
import { S3ObjectStore } from "./s3/s3-object-store.js";

// Object protection (contract 5.9) with S3 Object Lock, against MinIO (and a smaller part against
// moto), through a real plugin process. MinIO enforces Object Lock like S3, except that it refuses
// a locked version with `InvalidRequest` ("Object is WORM protected") where S3 answers
// `AccessDenied`; moto answers `AccessDenied` like S3, but does not check retention changes.
// The process-level tests run the built executable: `pnpm run build` first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const LOCKED = "locked";
const PLAIN = "plain";
const DEFAULTS = "defaults";
const MiB = 1024 * 1024;

let minio: MinioFixture;
let host: PluginHost;
let dir: string;
let config: Record<string, string>;
let s3: S3Client;
let store: HostObjectStore;
let lock: ObjectLock;
const events: TransferEvent[] = [];

const inSeconds = (seconds: number): Date => new Date(Date.now() + seconds * 1000);
const governance = (seconds: number): Retention => ({ mode: "governance", retainUntil: inSeconds(seconds) });
const compliance = (seconds: number): Retention => ({ mode: "compliance", retainUntil: inSeconds(seconds) });

async function* text(value: string): AsyncGenerator<Uint8Array> {
  yield Buffer.from(value);
}

/**
 * An in-process S3 ObjectStore whose client runs `between` once, right after the first HeadObject
 * of `key` answers: a concurrent writer between the plugin's check and its call, so that the
 * store's own refusal is what the plugin maps.
 */
async function racingStore(storeConfig: Record<string, string>, key: string, between: () => Promise<void>): Promise<S3ObjectStore> {
  let armed = true;
  const racing = new S3ObjectStore({
    configure: async (c, signal) => {
      const settings = await configureAwsS3(c, signal);
      settings.client.middlewareStack.add(
        (next, context) => async (args) => {
          const out = await next(args);
          if (armed && context.commandName === "HeadObjectCommand" && (args.input as { Key?: string }).Key === key) {
            armed = false;
            await between();
          }
          return out;
        },
        { step: "initialize", name: "concurrentWriter" },
      );
      return settings;
    },
  });
  await racing.init(storeConfig);
  return racing;
}

async function read(key: string, bucket = LOCKED): Promise<string> {
  const got = await store.getObject({ bucket, key });
  return (await buffer(got.body)).toString();
}

/** The versions and delete markers of one key, asked with the AWS SDK directly. */
async function versions(key: string, bucket = LOCKED): Promise<{ versions: string[]; deleteMarkers: string[] }> {
  const out: ListObjectVersionsCommandOutput = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: key }));
  return {
    versions: (out.Versions ?? []).filter((v) => v.Key === key).map((v) => v.VersionId ?? ""),
    deleteMarkers: (out.DeleteMarkers ?? []).filter((v) => v.Key === key).map((v) => v.VersionId ?? ""),
  };
}

beforeAll(async () => {
  minio = await startMinioFixture();
  s3 = new S3Client({
    endpoint: minio.server.endpoint,
    region: minio.server.region,
    forcePathStyle: true,
    credentials: { accessKeyId: minio.server.accessKey, secretAccessKey: minio.server.secretKey },
  });
  await s3.send(new CreateBucketCommand({ Bucket: LOCKED, ObjectLockEnabledForBucket: true }));
  await s3.send(new CreateBucketCommand({ Bucket: DEFAULTS, ObjectLockEnabledForBucket: true }));
  await s3.send(new CreateBucketCommand({ Bucket: PLAIN }));
  dir = await mkdtemp(join(tmpdir(), "stowage-aws-lock-"));
  const file = join(dir, "cloud");
  await writeFile(file, `[default]\naws_access_key_id=${minio.server.accessKey}\naws_secret_access_key=${minio.server.secretKey}\n`);
  config = { ...minio.config, credentialsFile: file, partSize: "5MiB" };
  // Puts of 4 MiB or more go directly to the store (the host's default), smaller ones through the plugin.
  host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], onTransfer: (event) => events.push(event) });
  await host.start();
  store = host.objectStore("stowage.io/aws");
  await store.init(config);
  if (store.objectLock === undefined) throw new Error("the plugin does not announce OBJECT_LOCK");
  lock = store.objectLock;
}, 60_000);

afterAll(async () => {
  await host.close();
  s3.destroy();
  // Every retention left is a governance one, or a compliance one of a few seconds; MinIO's data
  // folder goes with the server.
  await minio.server.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("S3 Object Lock through the PluginHost against MinIO", () => {
  it("announces OBJECT_LOCK", () => {
    const descriptor = host.plugins().find((p) => p.descriptor.kind === "object-store" && p.descriptor.name === "stowage.io/aws");
    expect(descriptor?.descriptor.capabilities).toContain("OBJECT_LOCK");
  });

  it("getBucketProtection: Object Lock enabled or not, and the default retention in days or years", async () => {
    expect(await lock.getBucketProtection({ bucket: LOCKED })).toEqual({ lockable: true, enforcedBy: "the store (S3 Object Lock)" });
    expect((await lock.getBucketProtection({ bucket: PLAIN })).lockable).toBe(false);
    const missing = await rejection(lock.getBucketProtection({ bucket: "no-such-bucket" }));
    expect(missing.reason).toBe(Reason.BucketNotFound);
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: DEFAULTS,
        ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 2 } } },
      }),
    );
    expect(await lock.getBucketProtection({ bucket: DEFAULTS })).toEqual({
      lockable: true,
      enforcedBy: "the store (S3 Object Lock)",
      defaultRetention: { mode: "governance", periodSeconds: 2 * 86_400 },
    });
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: DEFAULTS,
        ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "COMPLIANCE", Years: 1 } } },
      }),
    );
    expect((await lock.getBucketProtection({ bucket: DEFAULTS })).defaultRetention).toEqual({ mode: "compliance", periodSeconds: 365 * 86_400 });
    // A plain put there is protected by the default retention, and head reports it (clause 5.9.3).
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: DEFAULTS,
        ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "GOVERNANCE", Days: 1 } } },
      }),
    );
    await store.putObject({ bucket: DEFAULTS, key: "by-default", body: text("d") });
    const head = await store.headObject({ bucket: DEFAULTS, key: "by-default" });
    expect(head?.protection?.retention?.mode).toBe("governance");
    expect(head?.protection?.retention?.retainUntil.getTime()).toBeGreaterThan(Date.now() + 23 * 3600_000);
    await store.deleteObject({ bucket: DEFAULTS, key: "by-default", bypassGovernance: true });
    expect(await versions("by-default", DEFAULTS)).toEqual({ versions: [], deleteMarkers: [] });
  });

  it("stores a governance retention with the put; head and get report it, rounded up to the second", async () => {
    const retention = governance(600);
    await store.putObject({ bucket: LOCKED, key: "gov", body: text("v1"), protection: { retention } });
    const head = await store.headObject({ bucket: LOCKED, key: "gov" });
    expect(head?.protection?.legalHold).toBe(false);
    expect(head?.protection?.retention?.mode).toBe("governance");
    const until = head?.protection?.retention?.retainUntil.getTime() ?? 0;
    expect(until).toBeGreaterThanOrEqual(retention.retainUntil.getTime());
    expect(until).toBeLessThan(retention.retainUntil.getTime() + 1000);
    const got = await store.getObject({ bucket: LOCKED, key: "gov" });
    expect(got.object.protection).toEqual(head?.protection);
    expect((await buffer(got.body)).toString()).toBe("v1");
  });

  it("refuses to delete a protected object with OBJECT_LOCKED and adds no delete marker", async () => {
    const before = await versions("gov");
    const error = await rejection(store.deleteObject({ bucket: LOCKED, key: "gov" }));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.reason).toBe(Reason.ObjectLocked);
    expect(error.metadata).toMatchObject({ bucket: LOCKED, key: "gov", legal_hold: "false", mode: "GOVERNANCE" });
    expect(Date.parse(error.metadata.retain_until ?? "")).toBeGreaterThan(Date.now());
    expect(await read("gov")).toBe("v1");
    expect(await versions("gov")).toEqual(before);
    expect(before.deleteMarkers).toEqual([]);
  });

  it("refuses to overwrite a protected object, through PutObject and through direct transfer's BeginPut", async () => {
    const error = await rejection(store.putObject({ bucket: LOCKED, key: "gov", body: text("v2") }));
    expect(error.reason).toBe(Reason.ObjectLocked);
    const protectedPut = await rejection(store.putObject({ bucket: LOCKED, key: "gov", body: text("v2"), protection: { legalHold: true } }));
    expect(protectedPut.reason).toBe(Reason.ObjectLocked);
    expect(await read("gov")).toBe("v1");
    expect((await versions("gov")).versions).toHaveLength(1);
    // The host never sends a protected put directly, but BeginPut refuses an overwrite (clause 5.9.7).
    const local = new S3ObjectStore();
    await local.init(config);
    try {
      const begin = await rejection(local.directTransfer.beginPut({ bucket: LOCKED, key: "gov", size: 2 }));
      expect(begin.reason).toBe(Reason.ObjectLocked);
      const multipart = await rejection(local.directTransfer.beginPut({ bucket: LOCKED, key: "gov", size: 50 * MiB }));
      expect(multipart.reason).toBe(Reason.ObjectLocked);
    } finally {
      local.close();
    }
  });

  it("setRetention: extends; refuses to shorten a governance retention without the bypass; shortens with it", async () => {
    const current = (await store.headObject({ bucket: LOCKED, key: "gov" }))?.protection?.retention;
    if (current === undefined) throw new Error("no retention");
    const extended = await lock.setRetention({ bucket: LOCKED, key: "gov", retention: { mode: "governance", retainUntil: new Date(current.retainUntil.getTime() + 60_000) } });
    expect(extended.retention?.retainUntil.getTime()).toBe(current.retainUntil.getTime() + 60_000);
    const shorter = governance(300);
    const refused = await rejection(lock.setRetention({ bucket: LOCKED, key: "gov", retention: shorter }));
    expect(refused.reason).toBe(Reason.ObjectLocked);
    expect((await store.headObject({ bucket: LOCKED, key: "gov" }))?.protection?.retention?.retainUntil).toEqual(extended.retention?.retainUntil);
    const shortened = await lock.setRetention({ bucket: LOCKED, key: "gov", retention: shorter, bypassGovernance: true });
    expect(shortened.retention?.mode).toBe("governance");
    expect(Math.abs((shortened.retention?.retainUntil.getTime() ?? 0) - shorter.retainUntil.getTime())).toBeLessThan(1000);
    expect((await store.headObject({ bucket: LOCKED, key: "gov" }))?.protection).toEqual(shortened);
  });

  it("setRetention: a compliance retention can only be extended, bypass or not", async () => {
    await store.putObject({ bucket: LOCKED, key: "comp", body: text("c"), protection: { retention: compliance(5) } });
    const shorter = compliance(2);
    for (const bypassGovernance of [false, true]) {
      expect((await rejection(lock.setRetention({ bucket: LOCKED, key: "comp", retention: shorter, bypassGovernance }))).reason).toBe(Reason.ObjectLocked);
    }
    expect((await rejection(lock.setRetention({ bucket: LOCKED, key: "comp", retention: governance(60), bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    expect((await rejection(lock.setRetention({ bucket: LOCKED, key: "comp", bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    const extended = await lock.setRetention({ bucket: LOCKED, key: "comp", retention: compliance(6) });
    expect(extended.retention?.mode).toBe("compliance");
    expect((await rejection(lock.setRetention({ bucket: LOCKED, key: "missing", retention: governance(60) }))).reason).toBe(Reason.ObjectNotFound);
  });

  it("a legal hold refuses a delete even with the bypass; released, the bypass deletes the version for real", async () => {
    await store.putObject({ bucket: LOCKED, key: "held", body: text("h"), protection: { retention: governance(600) } });
    const held = await lock.setLegalHold({ bucket: LOCKED, key: "held", legalHold: true });
    expect(held.legalHold).toBe(true);
    expect(held.retention?.mode).toBe("governance");
    expect((await store.headObject({ bucket: LOCKED, key: "held" }))?.protection?.legalHold).toBe(true);
    const error = await rejection(store.deleteObject({ bucket: LOCKED, key: "held", bypassGovernance: true }));
    expect(error.reason).toBe(Reason.ObjectLocked);
    expect(error.metadata.legal_hold).toBe("true");
    expect(await read("held")).toBe("h");
    const released = await lock.setLegalHold({ bucket: LOCKED, key: "held", legalHold: false });
    expect(released).toEqual({ legalHold: false, retention: held.retention });
    expect(await lock.setLegalHold({ bucket: LOCKED, key: "held", legalHold: false })).toEqual(released);
    await store.deleteObject({ bucket: LOCKED, key: "held", bypassGovernance: true });
    expect(await store.headObject({ bucket: LOCKED, key: "held" })).toBeUndefined();
    expect(await versions("held")).toEqual({ versions: [], deleteMarkers: [] });
  });

  it("a bypass delete of the current version hides the older versions behind it", async () => {
    await store.putObject({ bucket: LOCKED, key: "layers", body: text("old") });
    await store.putObject({ bucket: LOCKED, key: "layers", body: text("new"), protection: { retention: governance(600) } });
    await store.deleteObject({ bucket: LOCKED, key: "layers", bypassGovernance: true });
    expect(await store.headObject({ bucket: LOCKED, key: "layers" })).toBeUndefined();
    const left = await versions("layers");
    expect(left.versions).toHaveLength(1);
    expect(left.deleteMarkers).toHaveLength(1);
  });

  it("a governance put may replace a governance-protected object with the bypass", async () => {
    await store.putObject({ bucket: LOCKED, key: "replace", body: text("a"), protection: { retention: governance(600) } });
    await store.putObject({ bucket: LOCKED, key: "replace", body: text("b"), bypassGovernance: true });
    expect(await read("replace")).toBe("b");
    expect((await store.headObject({ bucket: LOCKED, key: "replace" }))?.protection).toBeUndefined();
  });

  it("a compliance retention of 3 s: refused, then the delete works once it has lapsed", async () => {
    await store.putObject({ bucket: LOCKED, key: "short", body: text("s"), protection: { retention: compliance(3) } });
    expect((await rejection(store.deleteObject({ bucket: LOCKED, key: "short", bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await store.deleteObject({ bucket: LOCKED, key: "short" });
        break;
      } catch (error) {
        if (!(error instanceof StowageError) || error.reason !== Reason.ObjectLocked || Date.now() > deadline) throw error;
        await sleep(250);
      }
    }
    expect(await store.headObject({ bucket: LOCKED, key: "short" })).toBeUndefined();
  }, 30_000);

  it("plain puts and deletes in a lockable bucket behave as before", async () => {
    await store.putObject({ bucket: LOCKED, key: "free", body: text("f") });
    expect((await store.headObject({ bucket: LOCKED, key: "free" }))?.protection).toBeUndefined();
    await store.deleteObject({ bucket: LOCKED, key: "free" });
    expect(await store.headObject({ bucket: LOCKED, key: "free" })).toBeUndefined();
  });

  it("stores the protection of a multipart put (Content-MD5 on every part)", async () => {
    const data = bytes(12 * MiB);
    await store.putObject({ bucket: LOCKED, key: "big", body: chunks(data), size: data.length, protection: { retention: governance(600), legalHold: true } });
    const head = await store.headObject({ bucket: LOCKED, key: "big" });
    expect(head?.size).toBe(data.length);
    expect(head?.protection?.legalHold).toBe(true);
    expect(head?.protection?.retention?.mode).toBe("governance");
    await lock.setLegalHold({ bucket: LOCKED, key: "big", legalHold: false });
    await store.deleteObject({ bucket: LOCKED, key: "big", bypassGovernance: true });
    expect(await versions("big")).toEqual({ versions: [], deleteMarkers: [] });
  }, 60_000);

  it("direct transfer into a lockable bucket: parts carry Content-MD5; an overwrite of a protected object is refused", async () => {
    for (const size of [4 * MiB + 5, 12 * MiB]) {
      const data = bytes(size);
      await store.putObject({ bucket: LOCKED, key: "direct", body: chunks(data), size });
      expect(events.at(-1)).toMatchObject({ operation: "put", path: "direct" });
      expect((await buffer((await store.getObject({ bucket: LOCKED, key: "direct" })).body)).equals(data)).toBe(true);
    }
    await lock.setLegalHold({ bucket: LOCKED, key: "direct", legalHold: true });
    const data = bytes(12 * MiB);
    const error = await rejection(store.putObject({ bucket: LOCKED, key: "direct", body: chunks(data), size: data.length }));
    expect(error.reason).toBe(Reason.ObjectLocked);
    expect((await store.headObject({ bucket: LOCKED, key: "direct" }))?.size).toBe(12 * MiB);
    await lock.setLegalHold({ bucket: LOCKED, key: "direct", legalHold: false });
    const local = new S3ObjectStore();
    await local.init(config);
    try {
      const lockedPlan = await local.directTransfer.beginPut({ bucket: LOCKED, key: "plan", size: 3 });
      expect("partChecksum" in lockedPlan && lockedPlan.partChecksum).toBe("md5");
      const plainPlan = await local.directTransfer.beginPut({ bucket: PLAIN, key: "plan", size: 3 });
      expect("partChecksum" in plainPlan && plainPlan.partChecksum).toBe("none");
    } finally {
      local.close();
    }
  }, 60_000);

  it("maps the store's own refusal: a retention made compliance after the check → OBJECT_LOCKED", async () => {
    await store.putObject({ bucket: LOCKED, key: "race", body: text("r"), protection: { retention: governance(600) } });
    const racing = await racingStore(config, "race", async () => {
      await s3.send(
        new PutObjectRetentionCommand({ Bucket: LOCKED, Key: "race", BypassGovernanceRetention: true, Retention: { Mode: "COMPLIANCE", RetainUntilDate: inSeconds(3) } }),
      );
    });
    try {
      const error = await rejection(racing.deleteObject({ bucket: LOCKED, key: "race", bypassGovernance: true }));
      expect(error.reason).toBe(Reason.ObjectLocked);
      expect(error.metadata.mode).toBe("COMPLIANCE");
      expect(await read("race")).toBe("r");
    } finally {
      racing.close();
    }
  });

  it("a caller the store refuses the bypass (s3:BypassGovernanceRetention denied) gets ACCESS_DENIED", async () => {
    await store.putObject({ bucket: LOCKED, key: "no-bypass", body: text("n"), protection: { retention: governance(600) } });
    const sts = new AssumeRoleProvider({
      stsEndpoint: minio.server.endpoint,
      accessKey: minio.server.accessKey,
      secretKey: minio.server.secretKey,
      region: minio.server.region,
      durationSeconds: 900,
      policy: JSON.stringify({
        Version: "2012-10-17",
        Statement: [
          { Effect: "Allow", Action: ["s3:*"], Resource: ["arn:aws:s3:::*"] },
          { Effect: "Deny", Action: ["s3:BypassGovernanceRetention"], Resource: ["arn:aws:s3:::*"] },
        ],
      }),
    });
    const credentials = await sts.getCredentials();
    const file = join(dir, "restricted");
    await writeFile(
      file,
      `[default]\naws_access_key_id=${credentials.getAccessKey()}\naws_secret_access_key=${credentials.getSecretKey()}\naws_session_token=${credentials.getSessionToken() ?? ""}\n`,
    );
    const restricted = host.objectStore("stowage.io/aws", { instance: "restricted" });
    await restricted.init({ ...config, credentialsFile: file });
    const deleted = await rejection(restricted.deleteObject({ bucket: LOCKED, key: "no-bypass", bypassGovernance: true }));
    expect({ code: deleted.code, reason: deleted.reason }).toEqual({ code: Code.PermissionDenied, reason: Reason.AccessDenied });
    // MinIO lets this caller shorten the retention with PutObjectRetention all the same (it checks
    // s3:BypassGovernanceRetention on deletes only), so SetRetention's ACCESS_DENIED is not proven here.
    expect(await read("no-bypass")).toBe("n");
    expect(await versions("no-bypass")).toMatchObject({ deleteMarkers: [] });
    // Without the bypass the same caller is told what protects the object.
    expect((await rejection(restricted.deleteObject({ bucket: LOCKED, key: "no-bypass" }))).reason).toBe(Reason.ObjectLocked);
  });

  it("the plugin's own uploads into a lockable bucket carry Content-MD5, those into a plain bucket none", async () => {
    const seen: { command: string; bucket: string; md5: boolean }[] = [];
    const observed = new S3ObjectStore({
      configure: async (c, signal) => {
        const settings = await configureAwsS3(c, signal);
        settings.client.middlewareStack.add(
          (next, context) => async (args) => {
            const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
            if (context.commandName === "PutObjectCommand" || context.commandName === "UploadPartCommand") {
              seen.push({ command: context.commandName, bucket: (args.input as { Bucket?: string }).Bucket ?? "", md5: "content-md5" in headers });
            }
            return next(args);
          },
          { step: "finalizeRequest", name: "observeContentMd5" },
        );
        return settings;
      },
    });
    await observed.init(config);
    try {
      for (const bucket of [LOCKED, PLAIN]) {
        await observed.putObject({ bucket, key: "md5-small", body: text("s") });
        const data = bytes(6 * MiB);
        await observed.putObject({ bucket, key: "md5-big", body: chunks(data), size: data.length });
      }
    } finally {
      observed.close();
    }
    expect(seen).toEqual([
      { command: "PutObjectCommand", bucket: LOCKED, md5: true },
      { command: "UploadPartCommand", bucket: LOCKED, md5: true },
      { command: "UploadPartCommand", bucket: LOCKED, md5: true },
      { command: "PutObjectCommand", bucket: PLAIN, md5: false },
      { command: "UploadPartCommand", bucket: PLAIN, md5: false },
      { command: "UploadPartCommand", bucket: PLAIN, md5: false },
    ]);
  }, 60_000);

  it("BUCKET_NOT_LOCKABLE in a bucket without Object Lock; nothing is stored", async () => {
    const put = await rejection(store.putObject({ bucket: PLAIN, key: "p", body: text("p"), protection: { retention: governance(60) } }));
    expect(put.code).toBe(Code.FailedPrecondition);
    expect(put.reason).toBe(Reason.BucketNotLockable);
    expect(await store.headObject({ bucket: PLAIN, key: "p" })).toBeUndefined();
    await store.putObject({ bucket: PLAIN, key: "p", body: text("p") });
    expect((await rejection(lock.setRetention({ bucket: PLAIN, key: "p", retention: governance(60) }))).reason).toBe(Reason.BucketNotLockable);
    expect((await rejection(lock.setLegalHold({ bucket: PLAIN, key: "p", legalHold: true }))).reason).toBe(Reason.BucketNotLockable);
    await store.deleteObject({ bucket: PLAIN, key: "p" });
    expect(await store.headObject({ bucket: PLAIN, key: "p" })).toBeUndefined();
    // A missing bucket is BUCKET_NOT_FOUND, although MinIO answers it like a bucket without Object Lock.
    expect((await rejection(lock.setRetention({ bucket: "no-such-bucket", key: "p", retention: governance(60) }))).reason).toBe(Reason.BucketNotFound);
    expect((await rejection(store.putObject({ bucket: "no-such-bucket", key: "p", body: text("p"), protection: { legalHold: true } }))).reason).toBe(Reason.BucketNotFound);
  });
});

describe("S3 Object Lock through the PluginHost against moto (S3's AccessDenied refusals)", () => {
  const BUCKET = "moto-locked";
  let moto: MotoServer;
  let motoS3: S3Client;
  let motoConfig: Record<string, string>;
  let motoStore: HostObjectStore;
  let motoLock: ObjectLock;

  beforeAll(async () => {
    moto = await startMoto();
    motoS3 = new S3Client({
      endpoint: moto.endpoint,
      region: moto.region,
      forcePathStyle: true,
      credentials: { accessKeyId: moto.accessKeyId, secretAccessKey: moto.secretAccessKey },
    });
    await motoS3.send(new CreateBucketCommand({ Bucket: BUCKET, ObjectLockEnabledForBucket: true }));
    await motoS3.send(new CreateBucketCommand({ Bucket: PLAIN }));
    const file = join(dir, "moto");
    await writeFile(file, `[default]\naws_access_key_id=${moto.accessKeyId}\naws_secret_access_key=${moto.secretAccessKey}\n`);
    motoConfig = { s3Url: moto.endpoint, region: moto.region, s3ForcePathStyle: "true", credentialsFile: file };
    motoStore = host.objectStore("stowage.io/aws", { instance: "moto" });
    await motoStore.init(motoConfig);
    if (motoStore.objectLock === undefined) throw new Error("the plugin does not announce OBJECT_LOCK");
    motoLock = motoStore.objectLock;
  }, 60_000);

  afterAll(async () => {
    motoS3.destroy();
    await moto.stop();
  });

  async function motoVersions(key: string): Promise<{ versions: number; deleteMarkers: number }> {
    const out = await motoS3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: key }));
    return { versions: (out.Versions ?? []).filter((v) => v.Key === key).length, deleteMarkers: (out.DeleteMarkers ?? []).filter((v) => v.Key === key).length };
  }

  it("lockability, protected put and head, refused delete without a delete marker, bypass delete of the version", async () => {
    expect((await motoLock.getBucketProtection({ bucket: BUCKET })).lockable).toBe(true);
    expect((await motoLock.getBucketProtection({ bucket: PLAIN })).lockable).toBe(false);
    await motoStore.putObject({ bucket: BUCKET, key: "k", body: text("m"), protection: { retention: governance(600) } });
    expect((await motoStore.headObject({ bucket: BUCKET, key: "k" }))?.protection?.retention?.mode).toBe("governance");
    expect((await rejection(motoStore.deleteObject({ bucket: BUCKET, key: "k" }))).reason).toBe(Reason.ObjectLocked);
    expect(await motoVersions("k")).toEqual({ versions: 1, deleteMarkers: 0 });
    await motoLock.setLegalHold({ bucket: BUCKET, key: "k", legalHold: true });
    expect((await rejection(motoStore.deleteObject({ bucket: BUCKET, key: "k", bypassGovernance: true }))).reason).toBe(Reason.ObjectLocked);
    await motoLock.setLegalHold({ bucket: BUCKET, key: "k", legalHold: false });
    await motoStore.deleteObject({ bucket: BUCKET, key: "k", bypassGovernance: true });
    expect(await motoVersions("k")).toEqual({ versions: 0, deleteMarkers: 0 });
    const put = await rejection(motoStore.putObject({ bucket: PLAIN, key: "k", body: text("m"), protection: { legalHold: true } }));
    expect(put.reason).toBe(Reason.BucketNotLockable);
  });

  it("maps S3's AccessDenied on a version locked after the check to OBJECT_LOCKED", async () => {
    await motoStore.putObject({ bucket: BUCKET, key: "race", body: text("r"), protection: { retention: governance(600) } });
    const racing = await racingStore(motoConfig, "race", async () => {
      await motoS3.send(
        new PutObjectRetentionCommand({ Bucket: BUCKET, Key: "race", BypassGovernanceRetention: true, Retention: { Mode: "COMPLIANCE", RetainUntilDate: inSeconds(600) } }),
      );
    });
    try {
      const error = await rejection(racing.deleteObject({ bucket: BUCKET, key: "race", bypassGovernance: true }));
      expect(error.reason).toBe(Reason.ObjectLocked);
      expect(error.metadata.mode).toBe("COMPLIANCE");
      expect(await motoVersions("race")).toEqual({ versions: 1, deleteMarkers: 0 });
    } finally {
      racing.close();
    }
  });
});
