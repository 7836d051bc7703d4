/**
 * Velero loads Stowage plugins: a Stowage executable started with VELERO_PLUGIN=hello serves
 * Velero's protocol. Called here with grpc-js directly, as Velero's Go client calls it.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../src/gen/grpc/health/v1/health_pb.js";
import { GRPCController } from "../src/gen/plugin/grpc_controller_pb.js";
import { ObjectStore, PutObjectRequestSchema } from "../src/gen/generated/ObjectStore_pb.js";
import { methodCodec } from "../src/wire/rpc.js";
import { PluginLister } from "../src/gen/generated/PluginLister_pb.js";
import { VolumeSnapshotter } from "../src/gen/generated/VolumeSnapshotter_pb.js";
import { reexecCommand, veleroConfig } from "../src/protocols/velero/serve.js";
import { stackOf } from "../src/protocols/velero/errors.js";
import { memoryFixture } from "./support/host.js";
import { clientStream, isServiceError, launchLikeVelero, serverStream, unary, type VeleroLaunch } from "./support/velero.js";

const PLUGIN = "fixture.stowage.io/memory";
const localMain = fileURLToPath(new URL("../../plugin-local/dist/main.js", import.meta.url));

async function failure(p: Promise<unknown>): Promise<{ code: number; details: string; error: unknown }> {
  try {
    await p;
  } catch (error) {
    if (isServiceError(error)) return { code: error.code, details: error.details, error };
    throw error;
  }
  throw new Error("expected the call to fail");
}

describe("serve() in Velero mode (memory fixture)", () => {
  let p: VeleroLaunch;
  beforeAll(async () => {
    // Velero passes all of its server flags; unknown ones must be ignored in both forms.
    p = await launchLikeVelero(process.execPath, [memoryFixture, "--log-level=debug", "--features=EnableCSI", "--uploader-type", "kopia", "--log-format=json"]);
  });
  afterAll(() => {
    p.client.close();
    p.child.kill("SIGKILL");
  });

  it("prints Velero's six-field handshake with app version 2", () => {
    expect(p.handshake).toMatch(/^1\|2\|unix\|\/.+\|grpc\|$/);
  });

  it("answers health for 'plugin'", async () => {
    const res = await unary(p.client, Health.method.check, { service: "plugin" });
    expect(res.status).toBe(1);
  });

  it("lists its plugins with a re-executable absolute command", async () => {
    const res = await unary(p.client, PluginLister.method.listPlugins, {});
    expect(res.plugins.map((x) => ({ ...x }))).toEqual([expect.objectContaining({ command: memoryFixture, kind: "ObjectStore", name: PLUGIN })]);
  });

  it("round-trips objects: init, put, exists, get, list prefixes, list objects, delete", async () => {
    // Velero injects bucket/prefix (declared by the memory store) and credentialsFile (not declared: dropped).
    await unary(p.client, ObjectStore.method.init, { plugin: PLUGIN, config: { bucket: "b", prefix: "velero", credentialsFile: "/nowhere" } });
    const big = randomBytes(3 * 1024 * 1024 + 17);
    await clientStream(p.client, ObjectStore.method.putObject, [
      { plugin: PLUGIN, bucket: "b", key: "velero/backups/one/big.tar.gz", body: big.subarray(0, 1000) },
      { plugin: PLUGIN, bucket: "b", key: "velero/backups/one/big.tar.gz", body: big.subarray(1000) },
    ]);
    await clientStream(p.client, ObjectStore.method.putObject, [{ plugin: PLUGIN, bucket: "b", key: "velero/backups/two/velero-backup.json", body: Buffer.from("{}") }]);
    await clientStream(p.client, ObjectStore.method.putObject, [{ plugin: PLUGIN, bucket: "b", key: "velero/empty", body: new Uint8Array() }]);

    expect((await unary(p.client, ObjectStore.method.objectExists, { plugin: PLUGIN, bucket: "b", key: "velero/backups/one/big.tar.gz" })).exists).toBe(true);
    expect((await unary(p.client, ObjectStore.method.objectExists, { plugin: PLUGIN, bucket: "b", key: "velero/nope" })).exists).toBe(false);

    const chunks = await serverStream(p.client, ObjectStore.method.getObject, { plugin: PLUGIN, bucket: "b", key: "velero/backups/one/big.tar.gz" });
    expect(chunks.every((c) => c.data.byteLength <= 1024 * 1024)).toBe(true);
    expect(Buffer.concat(chunks.map((c) => c.data)).equals(big)).toBe(true);
    const empty = await serverStream(p.client, ObjectStore.method.getObject, { plugin: PLUGIN, bucket: "b", key: "velero/empty" });
    expect(Buffer.concat(empty.map((c) => c.data)).length).toBe(0);

    const prefixes = await unary(p.client, ObjectStore.method.listCommonPrefixes, { plugin: PLUGIN, bucket: "b", prefix: "velero/backups/", delimiter: "/" });
    expect([...prefixes.prefixes].sort()).toEqual(["velero/backups/one/", "velero/backups/two/"]);
    const root = await unary(p.client, ObjectStore.method.listCommonPrefixes, { plugin: PLUGIN, bucket: "b", prefix: "", delimiter: "/" });
    expect(root.prefixes).toEqual(["velero/"]);
    const keys = await unary(p.client, ObjectStore.method.listObjects, { plugin: PLUGIN, bucket: "b", prefix: "velero/backups/" });
    expect([...keys.keys].sort()).toEqual(["velero/backups/one/big.tar.gz", "velero/backups/two/velero-backup.json"]);

    await unary(p.client, ObjectStore.method.deleteObject, { plugin: PLUGIN, bucket: "b", key: "velero/backups/two/velero-backup.json" });
    await unary(p.client, ObjectStore.method.deleteObject, { plugin: PLUGIN, bucket: "b", key: "velero/backups/two/velero-backup.json" });
    expect((await unary(p.client, ObjectStore.method.objectExists, { plugin: PLUGIN, bucket: "b", key: "velero/backups/two/velero-backup.json" })).exists).toBe(false);
  });

  it("reports errors as UNKNOWN with the message and a generated.Stack detail", async () => {
    const missing = await failure(serverStream(p.client, ObjectStore.method.getObject, { plugin: PLUGIN, bucket: "b", key: "velero/missing" }));
    expect(missing.code).toBe(status.UNKNOWN);
    expect(missing.details).toContain("not found");
    const denied = await failure(unary(p.client, ObjectStore.method.deleteObject, { plugin: PLUGIN, bucket: "b", key: "denied" }));
    expect(denied.code).toBe(status.UNKNOWN);
    expect(denied.details).toContain("fixture says no");
    const frame = isServiceError(denied.error) ? stackOf(denied.error) : undefined;
    expect(frame?.file).toContain("memory-plugin.mjs");
    expect(frame?.line).toBeGreaterThan(0);
    const unknownPlugin = await failure(unary(p.client, ObjectStore.method.objectExists, { plugin: "velero.io/aws", bucket: "b", key: "k" }));
    expect(unknownPlugin.code).toBe(status.UNKNOWN);
    expect(unknownPlugin.details).toContain("velero.io/aws");
  });

  it("reports unexpected exceptions as ABORTED 'plugin panicked: …'", async () => {
    const boom = await failure(unary(p.client, ObjectStore.method.deleteObject, { plugin: PLUGIN, bucket: "b", key: "boom" }));
    expect(boom.code).toBe(status.ABORTED);
    expect(boom.details).toMatch(/^plugin panicked: TypeError: a bug in the fixture/);
  });

  it("refuses a zero-message PutObject (no bucket or key) without storing anything", async () => {
    const none = await failure(clientStream(p.client, ObjectStore.method.putObject, []));
    expect(none.code).toBe(status.UNKNOWN);
    expect(none.details).toContain("no message");
  });

  it("does not store a PutObject the caller cancelled", async () => {
    const codec = methodCodec(ObjectStore.method.putObject);
    const done = new Promise<void>((resolve) => {
      const call = p.client.makeClientStreamRequest(codec.path, codec.serializeRequest, codec.deserializeResponse, new Metadata(), {}, () => resolve());
      call.write(create(PutObjectRequestSchema, { plugin: PLUGIN, bucket: "b", key: "velero/cancelled", body: Buffer.from("part") }));
      setTimeout(() => call.cancel(), 100);
    });
    await done;
    await new Promise((r) => setTimeout(r, 100));
    expect((await unary(p.client, ObjectStore.method.objectExists, { plugin: PLUGIN, bucket: "b", key: "velero/cancelled" })).exists).toBe(false);
  });

  it("converts the signed-URL TTL from nanoseconds and passes the plugin's refusal on", async () => {
    const refused = await failure(unary(p.client, ObjectStore.method.createSignedURL, { plugin: PLUGIN, bucket: "b", key: "velero/empty", ttl: 600_000_000_000n }));
    expect(refused.code).toBe(status.UNKNOWN);
    expect(refused.details).toContain("does not sign URLs");
  });

  it("exits with status 0 after GRPCController/Shutdown", async () => {
    await unary(p.client, GRPCController.method.shutdown, {});
    const exit = await p.exited;
    expect(exit).toEqual({ code: 0, signal: null });
  });
});

describe("serve() in Velero mode (plugin-local: VolumeSnapshotter)", () => {
  let p: VeleroLaunch;
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "velero-local-"));
    p = await launchLikeVelero(localMain, ["--log-level", "warning"]);
  });
  afterAll(async () => {
    p.client.close();
    p.child.kill("SIGKILL");
    await rm(root, { recursive: true, force: true });
  });

  it("lists both kinds, ObjectStore first, with the script as the command", async () => {
    const res = await unary(p.client, PluginLister.method.listPlugins, {});
    expect(res.plugins.map((x) => [x.command, x.kind, x.name])).toEqual([
      [localMain, "ObjectStore", "stowage.io/local"],
      [localMain, "VolumeSnapshotter", "stowage.io/local"],
    ]);
  });

  it("snapshots, reports volume info, and handles PVs", async () => {
    await unary(p.client, VolumeSnapshotter.method.init, { plugin: "stowage.io/local", config: { root } });
    await writeFile(join(root, "volumes", "vol-1.img"), randomBytes(4096));
    const info = await unary(p.client, VolumeSnapshotter.method.getVolumeInfo, { plugin: "stowage.io/local", volumeID: "vol-1", volumeAZ: "" });
    expect(info.iops).toBe(0n);
    const snap = await unary(p.client, VolumeSnapshotter.method.createSnapshot, {
      plugin: "stowage.io/local",
      volumeID: "vol-1",
      volumeAZ: "",
      tags: { "velero.io/backup": "b1", "velero.io/pv": "pv-1" },
    });
    expect(snap.snapshotID).not.toBe("");
    const foreign = { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-x" }, spec: { csi: { driver: "ebs.csi.aws.com", volumeHandle: "vol-aws" } } };
    const none = await unary(p.client, VolumeSnapshotter.method.getVolumeID, { plugin: "stowage.io/local", persistentVolume: Buffer.from(JSON.stringify(foreign)) });
    expect(none.volumeID).toBe("");
    const own = { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-1" }, spec: { csi: { driver: "local.stowage.io", volumeHandle: "vol-1" } } };
    const id = await unary(p.client, VolumeSnapshotter.method.getVolumeID, { plugin: "stowage.io/local", persistentVolume: Buffer.from(JSON.stringify(own)) });
    expect(id.volumeID).toBe("vol-1");
    const set = await unary(p.client, VolumeSnapshotter.method.setVolumeID, { plugin: "stowage.io/local", persistentVolume: Buffer.from(JSON.stringify(own)), volumeID: "vol-2" });
    expect((JSON.parse(Buffer.from(set.persistentVolume).toString("utf8")) as typeof own).spec.csi.volumeHandle).toBe("vol-2");
    await unary(p.client, VolumeSnapshotter.method.deleteSnapshot, { plugin: "stowage.io/local", snapshotID: snap.snapshotID });
  });
});

describe("Velero-mode helpers", () => {
  it("reports the started script, resolved, as the command", () => {
    expect(reexecCommand(["/usr/bin/node", "rel/main.js"], "/usr/bin/node")).toBe(join(process.cwd(), "rel/main.js"));
    expect(reexecCommand(["/opt/plugin"], "/opt/plugin")).toBe("/opt/plugin");
    // A single executable started through PATH or a relative name: argv[1] is that name, not a script.
    expect(reexecCommand(["/plugins/p/p", "p", "--log-level", "info"], "/plugins/p/p", true)).toBe("/plugins/p/p");
  });

  it("drops Velero-injected keys a plugin does not declare, keeps declared and other keys", () => {
    const descriptor = { name: "x.io/y", kind: "object-store" as const, capabilities: [], description: "", configKeys: [{ name: "bucket" }, { name: "region" }] };
    expect(veleroConfig({ bucket: "b", prefix: "p", caCert: "pem", credentialsFile: "/c", region: "r", other: "o" }, descriptor)).toEqual({ bucket: "b", region: "r", other: "o" });
  });
});
