/**
 * stowage-plugin-local through a real PluginHost and plugin process: confinement errors, modes,
 * refused attributes, safe downloads, signed URLs that survive a restart of the plugin, and object
 * protection (contract 5.9) enforced by the plugin across the wire and a restart.
 */
import { Code, Reason, silentLogger } from "@stowage/sdk";
import { PluginHost, nodePluginCommand } from "@stowage/sdk/host";
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, pictureOf } from "../test/support/filesystem.js";
import { rejection } from "@stowage/sdk/testing";

// The process-level test runs the built executable: `pnpm run build` first.
const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const NAME = "stowage.io/local";

let base: string;
let host: PluginHost;
let umask: number;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "stowage-local-host-"));
  // The plugin inherits the most permissive umask: what it creates must still be private.
  umask = process.umask(0);
  host = new PluginHost({ plugins: [nodePluginCommand(MAIN)], logger: silentLogger });
  await host.start();
}, 60_000);

afterAll(async () => {
  await host.close();
  process.umask(umask);
  await rm(base, { recursive: true, force: true });
});


function body(text: string): Readable {
  return Readable.from([Buffer.from(text)]);
}

function pluginPid(): number {
  const pid = host.plugins().find((p) => p.descriptor.kind === "object-store" && p.descriptor.name === NAME)?.pid;
  if (pid === undefined) throw new Error("the plugin does not run");
  return pid;
}


/** Kills the plugin process and waits until it is gone. */
async function killPlugin(): Promise<void> {
  const pid = pluginPid();
  process.kill(pid, "SIGKILL");
  const deadline = Date.now() + 30_000; // a hang guard
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    if (Date.now() > deadline) throw new Error("the plugin did not die");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("confinement across the process boundary", () => {
  it("refuses links with PERMISSION_DENIED/UNSAFE_PATH naming the component, leaving the outside untouched", async () => {
    const root = join(base, "confined");
    const outside = join(base, "outside");
    await mkdir(join(root, "b"), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, "victim~o"), "outside");
    await symlink(outside, join(root, "b", "sub"));
    await symlink(outside, join(root, "linked"));
    const before = await pictureOf(outside);
    const objects = host.objectStore(NAME);
    await objects.init({ root });
    const component = join(root, "b", "sub");
    for (const call of [
      () => objects.putObject({ bucket: "b", key: "sub/x", body: body("x") }),
      () => objects.getObject({ bucket: "b", key: "sub/victim" }),
      () => objects.headObject({ bucket: "b", key: "sub/victim" }),
      () => objects.deleteObject({ bucket: "b", key: "sub/victim" }),
    ]) {
      const error = await rejection(call());
      expect({ code: error.code, reason: error.reason, path: error.metadata.path }).toEqual({ code: Code.PermissionDenied, reason: Reason.UnsafePath, path: component });
    }
    const listing = await rejection(objects.listObjects({ bucket: "linked" }).next());
    expect([listing.reason, listing.metadata.path]).toEqual([Reason.UnsafePath, join(root, "linked")]);
    const blocks = host.blockStore(NAME);
    await mkdir(join(base, "blocks", "volumes"), { recursive: true });
    await symlink(join(outside, "victim~o"), join(base, "blocks", "volumes", "vol-x.img"));
    await blocks.init({ root: join(base, "blocks") });
    const volume = await rejection(blocks.getVolumeInfo({ volumeId: "vol-x" }));
    expect([volume.code, volume.reason, volume.metadata.path]).toEqual([Code.PermissionDenied, Reason.UnsafePath, join(base, "blocks", "volumes", "vol-x.img")]);
    expect(await pictureOf(outside)).toEqual(before);
  });
});

describe("files", () => {
  it("are private (0700 directories, 0600 files) under umask 000", async () => {
    const root = join(base, "modes");
    await mkdir(root);
    const objects = host.objectStore(NAME, { instance: "modes" });
    await objects.init({ root, createBuckets: "true" });
    await objects.putObject({ bucket: "b", key: "backups/b1/b1.tar.gz", body: body("x") });
    expect((await stat(join(root, "b"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, "b", "backups", "b1"))).mode & 0o777).toBe(0o700);
    expect((await stat(join(root, "b", "backups", "b1", "b1.tar.gz~o"))).mode & 0o777).toBe(0o600);
  });
});

describe("attributes and signed URLs", () => {
  it("refuses a content type with CR/LF, naming the field", async () => {
    const root = join(base, "attributes");
    await mkdir(join(root, "b"), { recursive: true });
    const objects = host.objectStore(NAME, { instance: "attributes" });
    await objects.init({ root });
    const error = await rejection(objects.putObject({ bucket: "b", key: "k", body: body("x"), contentType: "text/html\r\nX-Injected: 1" }));
    // The message names the field (metadata travels only with a reason, and none fits here).
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toMatch(/^\[invalid_argument\] content type "text\/html\\r\\nX-Injected: 1" is invalid/);
    expect(await objects.headObject({ bucket: "b", key: "k" })).toBeUndefined();
  });

  it("serve downloads safely, and keep working after the plugin restarts with a key file and a fixed address", async () => {
    const root = join(base, "signed");
    await mkdir(join(root, "b"), { recursive: true });
    const objects = host.objectStore(NAME);
    await objects.init({ root, signingKeyFile: join(base, "signing.key"), signedUrlAddress: `127.0.0.1:${String(await freePort())}` });
    await objects.putObject({ bucket: "b", key: "page.html", body: body("<script>alert(1)</script>"), contentType: "text/html" });
    const { url } = await objects.createSignedUrl({ bucket: "b", key: "page.html", method: "GET", ttlSeconds: 600 });
    const served = await fetch(url);
    expect([served.status, served.headers.get("content-type"), served.headers.get("x-content-type-options"), served.headers.get("content-disposition")]).toEqual([
      200,
      "application/octet-stream",
      "nosniff",
      "attachment; filename*=UTF-8''page.html",
    ]);
    await served.arrayBuffer();
    await killPlugin();
    // The next call relaunches the plugin and replays Init, which starts serving at once.
    expect((await objects.headObject({ bucket: "b", key: "page.html" }))?.size).toBe(25);
    const again = await fetch(url);
    expect([again.status, await again.text()]).toEqual([200, "<script>alert(1)</script>"]);
  });

  it("die with the plugin process without a persistent key", async () => {
    const root = join(base, "ephemeral");
    await mkdir(join(root, "b"), { recursive: true });
    const objects = host.objectStore(NAME);
    await objects.init({ root, signedUrlAddress: `127.0.0.1:${String(await freePort())}` });
    await objects.putObject({ bucket: "b", key: "k", body: body("x") });
    const { url } = await objects.createSignedUrl({ bucket: "b", key: "k", method: "GET", ttlSeconds: 600 });
    expect((await fetch(url)).status).toBe(200);
    await killPlugin();
    await objects.headObject({ bucket: "b", key: "k" });
    expect((await fetch(url)).status).toBe(403);
  });
});

describe("object protection", () => {
  it("announces OBJECT_LOCK, stores and enforces protection across the wire and a restart of the plugin", async () => {
    const root = join(base, "protection");
    await mkdir(join(root, "b"), { recursive: true });
    expect(host.plugins().find((p) => p.descriptor.kind === "object-store" && p.descriptor.name === NAME)?.descriptor.capabilities).toContain("OBJECT_LOCK");
    const objects = host.objectStore(NAME, { instance: "protection" });
    await objects.init({ root, objectLock: "true" });
    const lock = objects.objectLock;
    if (lock === undefined) throw new Error("the host client has no objectLock");
    expect(await lock.getBucketProtection({ bucket: "b" })).toMatchObject({ lockable: true, enforcedBy: expect.stringMatching(/^the plugin only: /) as unknown });
    const retainUntil = new Date(Math.ceil((Date.now() + 3_600_000) / 1000) * 1000);
    const retention = { mode: "governance" as const, retainUntil };
    await objects.putObject({ bucket: "b", key: "backup.tar", body: body("precious"), protection: { retention, legalHold: true } });
    expect((await objects.headObject({ bucket: "b", key: "backup.tar" }))?.protection).toEqual({ retention, legalHold: true });

    const refused = await rejection(objects.deleteObject({ bucket: "b", key: "backup.tar", bypassGovernance: true }));
    expect([refused.code, refused.reason, refused.metadata]).toEqual([
      Code.FailedPrecondition,
      Reason.ObjectLocked,
      { bucket: "b", key: "backup.tar", legal_hold: "true", mode: "GOVERNANCE", retain_until: retainUntil.toISOString() },
    ]);
    expect((await rejection(objects.putObject({ bucket: "b", key: "backup.tar", body: body("ransom") }))).reason).toBe(Reason.ObjectLocked);

    await killPlugin();
    // The next call relaunches the plugin and replays Init: the protection was on disk.
    expect((await objects.headObject({ bucket: "b", key: "backup.tar" }))?.protection).toEqual({ retention, legalHold: true });
    const later = new Date(retainUntil.getTime() + 3_600_000);
    expect(await lock.setRetention({ bucket: "b", key: "backup.tar", retention: { mode: "governance", retainUntil: later } })).toEqual({ retention: { mode: "governance", retainUntil: later }, legalHold: true });
    expect((await rejection(lock.setRetention({ bucket: "b", key: "backup.tar", retention }))).reason).toBe(Reason.ObjectLocked);
    expect(await lock.setLegalHold({ bucket: "b", key: "backup.tar", legalHold: false })).toEqual({ retention: { mode: "governance", retainUntil: later }, legalHold: false });
    expect((await rejection(objects.deleteObject({ bucket: "b", key: "backup.tar" }))).reason).toBe(Reason.ObjectLocked);
    const got = await objects.getObject({ bucket: "b", key: "backup.tar" });
    expect(got.object.protection).toEqual({ retention: { mode: "governance", retainUntil: later }, legalHold: false });
    expect(Buffer.concat(await got.body.toArray()).toString()).toBe("precious");
    // Governance yields to the bypass: the object is really deleted.
    await objects.deleteObject({ bucket: "b", key: "backup.tar", bypassGovernance: true });
    expect(await objects.headObject({ bucket: "b", key: "backup.tar" })).toBeUndefined();

    const plain = host.objectStore(NAME, { instance: "no-lock" });
    await plain.init({ root });
    expect(await plain.objectLock?.getBucketProtection({ bucket: "b" })).toMatchObject({ lockable: false });
    const notLockable = await rejection(plain.putObject({ bucket: "b", key: "k", body: body("x"), protection: { legalHold: true } }));
    expect([notLockable.code, notLockable.reason]).toEqual([Code.FailedPrecondition, Reason.BucketNotLockable]);
    expect(await plain.headObject({ bucket: "b", key: "k" })).toBeUndefined();
  });
});
