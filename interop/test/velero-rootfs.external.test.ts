/**
 * Stowage's Velero plugin images, installed and run the way Velero installs and runs plugins, in a
 * root file system shaped like Velero's server image (glibc, CA certificates, time zone data, a
 * non-root user; no shell, no env, no Node, no libstdc++, no libgcc_s):
 *
 * 1. each image (`bash scripts/build-images`, from `pnpm run package`'s single-file executables) is
 *    unpacked from its OCI layout, every blob checked against its digest;
 * 2. its own entrypoint, from its config, runs chrooted into it as its own user with the server's
 *    /plugins bind-mounted at /target, as a Kubernetes node runs an init container: the image's copier,
 *    not the test, puts the plugin into /plugins;
 * 3. the Go harness on Velero's own plugin client (`interop/cmd/velero-harness`) runs as the "Velero
 *    server" chrooted into that root file system as uid 65532, in its own mount and PID namespaces,
 *    and passes the object round trip against MinIO (`stowage.io/aws`) and the object and
 *    volume-snapshotter round trips on disk (`stowage.io/local`).
 *
 * Needs root (unshare, chroot, mounts; CI runs as root), and fails naming the command that builds
 * whatever is missing: `pnpm run package`, `bash scripts/build-images`, `bash scripts/velero-rootfs`,
 * `bash scripts/install-velero-plugins`.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, chown, copyFile, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLocalVolume, localVolumePath, type LocalVolume } from "@stowage/plugin-local";
import { startMinio, type MinioServer } from "@stowage/test-servers";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HARNESS, OBJECT_STORE_STEPS, SNAPSHOTTER_STEPS, failures, stepOf, stepsOf, type Report } from "./support/harness.js";
import {
  CP_PLUGIN,
  IMAGES,
  ROOTFS,
  SEA,
  STOWAGE_IMAGE,
  forbiddenOutsidePlugins,
  killAll,
  mountsUnder,
  readLayout,
  requireExecutable,
  requirePath,
  run,
  runEntrypoint,
  runInRootfs,
  runOk,
  veleroWouldStart,
  walk,
  type LayoutImage,
  type Run,
  type TreeEntry,
} from "./support/rootfs.js";

const PLUGINS = ["stowage-plugin-aws", "stowage-plugin-local"] as const;
type Plugin = (typeof PLUGINS)[number];
/** The non-root user of Velero's plugin images, and here of the server. */
const NONROOT = { uid: 65532, gid: 65532 };
const BUCKET = "stowage-rootfs";
const LOCAL_BUCKET = "local-rootfs";
const VOLUME_BYTES = 2 * 1024 * 1024 + 4096;
const PACKAGE = "run `pnpm run package` (it writes .build/sea/<bin>/)";
const IMAGES_FIX = "run `bash scripts/build-images` (pnpm run images)";

/** image.json, written by `stowage-image build`. */
interface ImageSummary {
  readonly name: string;
  readonly ref: string;
  readonly digest: string;
  readonly platform: string;
  readonly created: string;
  readonly labels: Record<string, string>;
  readonly archive: string;
  readonly layerBytes: number;
  readonly files: readonly { path: string; mode: string; size: number; sha256: string }[];
}

/** What the test learnt about one image. */
interface ImageRun {
  readonly summary: ImageSummary;
  readonly layout: LayoutImage;
  readonly unpackedConfig: unknown;
  readonly tree: TreeEntry[];
  readonly entrypoint: Run;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Checks for everything the run needs, naming the command that makes what is missing. */
async function requireInputs(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("this test needs root (unshare, chroot and bind mounts); CI runs it as root");
  await requireExecutable(HARNESS, "run `bash scripts/install-velero-plugins` (it builds interop/cmd/velero-harness)");
  await requireExecutable(STOWAGE_IMAGE, IMAGES_FIX);
  await requireExecutable(CP_PLUGIN, IMAGES_FIX);
  for (const plugin of PLUGINS) {
    await requireExecutable(join(SEA, plugin, plugin), PACKAGE);
    await requirePath(join(IMAGES, plugin, "image.json"), IMAGES_FIX);
    const summary = JSON.parse(await readFile(join(IMAGES, plugin, "image.json"), "utf8")) as ImageSummary;
    // An image built from an older executable or copier would prove nothing about the current ones.
    const built = Object.fromEntries(summary.files.map((f) => [f.path, f.sha256]));
    if (built[`/plugins/${plugin}/${plugin}`] !== (await sha256File(join(SEA, plugin, plugin))) || built["/bin/cp-plugin"] !== (await sha256File(CP_PLUGIN))) {
      throw new Error(`${join(IMAGES, plugin)} was built from another ${plugin} or cp-plugin than .build/sea and .tools/bin hold: ${IMAGES_FIX}`);
    }
  }
  await requirePath(join(ROOTFS, "etc", "passwd"), "run `bash scripts/velero-rootfs`");
  for (const tool of ["unshare", "chroot", "cp"]) {
    const found = await run("/bin/sh", ["-c", `command -v ${tool}`]);
    if (found.code !== 0) throw new Error(`${tool} is missing (util-linux and GNU coreutils provide unshare, chroot and cp)`);
  }
}

describe("cp-plugin, the images' entrypoint", () => {
  let dir: string;

  beforeAll(async () => {
    await requireExecutable(CP_PLUGIN, IMAGES_FIX);
    dir = await mkdtemp(join(tmpdir(), "stowage-cp-plugin-"));
  });

  afterAll(async () => {
    killAll();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("copies a tree into a directory under its own name, keeping modes exactly; a second run overwrites the first", async () => {
    const source = join(dir, "src", "plugin");
    await mkdir(join(source, "lib"), { recursive: true });
    await writeFile(join(source, "plugin"), "v1");
    await chmod(join(source, "plugin"), 0o755);
    await writeFile(join(source, "lib", "lib.so"), "library");
    await chmod(join(source, "lib", "lib.so"), 0o644);
    await chmod(join(source, "lib"), 0o750);
    const target = join(dir, "target");
    await mkdir(target);

    const first = await run(CP_PLUGIN, [source, `${target}/`]);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toBe(`cp-plugin: copied ${source} to ${join(target, "plugin")} (2 files)\n`);
    const copied = await walk(target);
    expect(copied.map((e) => [e.path, e.type, e.mode.toString(8)])).toEqual([
      ["/plugin", "dir", "755"],
      ["/plugin/lib", "dir", "750"],
      ["/plugin/lib/lib.so", "file", "644"],
      ["/plugin/plugin", "file", "755"],
    ]);

    await writeFile(join(source, "plugin"), "v2");
    expect((await run(CP_PLUGIN, [source, target])).code).toBe(0);
    expect(await readFile(join(target, "plugin", "plugin"), "utf8")).toBe("v2");
    // Written under a temporary name and renamed: nothing else is left beside the files.
    expect((await readdir(join(target, "plugin"))).sort()).toEqual(["lib", "plugin"]);
  });

  it("copies one source to a destination that does not exist; refuses a missing source and bad usage", async () => {
    const file = join(dir, "single");
    await writeFile(file, "x");
    await chmod(file, 0o700);
    expect((await run(CP_PLUGIN, [file, join(dir, "copy")])).code).toBe(0);
    expect((await stat(join(dir, "copy"))).mode & 0o7777).toBe(0o700);

    const missing = await run(CP_PLUGIN, [join(dir, "absent"), `${dir}/`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no such file or directory");
    const twoIntoFile = await run(CP_PLUGIN, [file, file, join(dir, "nowhere")]);
    expect(twoIntoFile.code).toBe(1);
    expect(twoIntoFile.stderr).toContain("must be an existing directory");
    expect((await run(CP_PLUGIN, [file])).code).toBe(2);
  });
});

describe("Stowage's plugin images, installed and run as Velero does, in a root file system like Velero's server image", () => {
  let scratch: string;
  let server: string;
  let minio: MinioServer;
  let admin: MinioClient;
  let rootfsBefore: TreeEntry[];
  let serverAfter: TreeEntry[];
  const images = new Map<Plugin, ImageRun>();
  let volume: LocalVolume;
  let harness: Run;
  let report: Report;

  beforeAll(async () => {
    await requireInputs();
    scratch = await realpath(await mkdtemp(join(tmpdir(), "stowage-velero-rootfs-")));
    // A copy of the root file system, so the built one stays as scripts/velero-rootfs made it.
    server = join(scratch, "server");
    await runOk("cp", ["-a", ROOTFS, server]);
    await chown(join(server, "plugins"), NONROOT.uid, NONROOT.gid);
    rootfsBefore = await walk(server);

    for (const plugin of PLUGINS) {
      const summary = JSON.parse(await readFile(join(IMAGES, plugin, "image.json"), "utf8")) as ImageSummary;
      const layout = await readLayout(join(IMAGES, plugin, "layout"));
      const imageRoot = join(scratch, `image-${plugin}`);
      const unpacked = await runOk(STOWAGE_IMAGE, ["unpack", "--layout", join(IMAGES, plugin, "layout"), "--dest", imageRoot]);
      const tree = await walk(imageRoot);
      // The mount point of Velero's plugin volume in the init container (the kubelet makes it).
      await mkdir(join(imageRoot, "target"));
      const entrypoint = await runEntrypoint(imageRoot, join(server, "plugins"), layout.config);
      images.set(plugin, { summary, layout, unpackedConfig: JSON.parse(unpacked.stdout), tree, entrypoint });
    }
    serverAfter = await walk(server);

    // The "Velero server": the harness on Velero's own plugin client, a static Go binary.
    await copyFile(HARNESS, join(server, "velero"));
    await chmod(join(server, "velero"), 0o755);

    minio = await startMinio();
    const url = new URL(minio.endpoint);
    admin = new MinioClient({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: minio.region });
    await admin.makeBucket(BUCKET, minio.region);
    // Velero mounts its credentials secret at /credentials and points AWS_SHARED_CREDENTIALS_FILE there.
    await mkdir(join(server, "credentials"));
    await writeFile(join(server, "credentials", "cloud"), `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`, { mode: 0o644 });
    // Velero's scratch volume (an emptyDir, like /plugins).
    await mkdir(join(server, "scratch"), { mode: 0o777 });
    await chown(join(server, "scratch"), NONROOT.uid, NONROOT.gid);
    await mkdir(join(server, "data", "objects"), { recursive: true });
    volume = await createLocalVolume(join(server, "data", "blocks"), { volumeId: "vol-source", sizeBytes: VOLUME_BYTES, volumeType: "ssd", iops: 750, zone: "zone-a", fill: Uint8Array.from("stowage-velero-rootfs", (c) => c.charCodeAt(0)) });
    await runOk("chown", ["-R", `${String(NONROOT.uid)}:${String(NONROOT.gid)}`, join(server, "data")]);

    harness = await runInRootfs(
      server,
      NONROOT,
      // What Velero's Deployment sets (the last four), and the PATH and HOME a runtime sets.
      {
        PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        HOME: "/nonexistent",
        VELERO_SCRATCH_DIR: "/scratch",
        VELERO_NAMESPACE: "velero",
        LD_LIBRARY_PATH: "/plugins",
        AWS_SHARED_CREDENTIALS_FILE: "/credentials/cloud",
      },
      "/velero",
      [
        "run",
        "--plugin-dir=/plugins",
        "--log-level=debug",
        `--object-store=stowage.io/aws=${JSON.stringify({ bucket: BUCKET, prefix: "velero", s3Url: minio.endpoint, region: minio.region, s3ForcePathStyle: "true" })}`,
        `--object-store=stowage.io/local=${JSON.stringify({ bucket: LOCAL_BUCKET, prefix: "", root: "/data/objects", createBuckets: "true" })}`,
        "--volume-snapshotter=stowage.io/local",
        `--volume-snapshotter-config=${JSON.stringify({ root: "/data/blocks" })}`,
        `--volume-id=${volume.volumeId}`,
        "--volume-az=zone-a",
        "--volume-type=ssd",
        "--volume-iops=750",
      ],
    );
    if (harness.stdout.trim() === "") throw new Error(`the harness printed no report (exit ${String(harness.code ?? harness.signal)}): ${harness.stderr.slice(-6000)}`);
    report = JSON.parse(harness.stdout) as Report;
  }, 300_000);

  afterAll(async () => {
    killAll();
    await minio?.stop();
    if (scratch === undefined) return;
    // Every mount was made in a namespace that is gone; a mount left here would be a bug, and
    // deleting through it (a bound /dev) must never happen.
    const left = await mountsUnder(scratch);
    if (left.length > 0) throw new Error(`mounts left under ${scratch} (not deleted): ${left.join(", ")}`);
    await rm(scratch, { recursive: true, force: true });
  });

  it("the root file system has glibc and CA certificates, and no shell, env, node, libstdc++ or libgcc_s; /plugins is empty", async () => {
    const paths = rootfsBefore.map((e) => e.path);
    expect(forbiddenOutsidePlugins(rootfsBefore)).toEqual([]);
    expect(paths).not.toContain("/bin/sh");
    expect(paths).not.toContain("/usr/bin/env");
    expect(paths.filter((p) => p.startsWith("/plugins/"))).toEqual([]);
    expect(rootfsBefore.find((e) => e.path === "/plugins")).toMatchObject({ type: "dir", uid: NONROOT.uid });
    expect(rootfsBefore.find((e) => e.path === "/tmp")).toMatchObject({ type: "dir", mode: 0o1777 });
    expect(paths).toContain("/lib64/ld-linux-x86-64.so.2");
    expect(paths).toContain("/lib/x86_64-linux-gnu/libc.so.6");
    expect(paths).toContain("/usr/share/zoneinfo/UTC");
    expect(await readFile(join(server, "etc", "passwd"), "utf8")).toMatch(/^nonroot:x:65532:65532:/m);
    expect((await readFile(join(server, "etc", "ssl", "certs", "ca-certificates.crt"), "utf8")).match(/-----BEGIN CERTIFICATE-----/g)?.length).toBeGreaterThan(100);
  });

  it.each(PLUGINS)("%s: one gzip layer in an OCI layout; user 65532:65532, entrypoint /bin/cp-plugin /plugins/<bin> /target/, linux/amd64, labels", async (plugin) => {
    const { layout, summary, unpackedConfig } = images.get(plugin)!;
    const version = (JSON.parse(await readFile(new URL(`../../packages/${plugin.replace("stowage-", "")}/package.json`, import.meta.url), "utf8")) as { version: string }).version;
    expect(layout.index.mediaType).toBe("application/vnd.oci.image.index.v1+json");
    expect(layout.index.manifests[0]).toMatchObject({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: summary.digest,
      annotations: { "org.opencontainers.image.ref.name": version },
      platform: { os: "linux", architecture: "amd64" },
    });
    expect(layout.manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(layout.manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json");
    expect(layout.manifest.layers.map((l) => l.mediaType)).toEqual(["application/vnd.oci.image.layer.v1.tar+gzip"]);
    expect(layout.config).toMatchObject({ os: "linux", architecture: "amd64", created: summary.created });
    expect(layout.config.config.User).toBe("65532:65532");
    expect(layout.config.config.Entrypoint).toEqual(["/bin/cp-plugin", `/plugins/${plugin}`, "/target/"]);
    expect(layout.config.config.Cmd).toBeUndefined();
    expect(layout.config.config.Labels).toMatchObject({
      "org.opencontainers.image.title": plugin,
      "org.opencontainers.image.version": version,
      "org.opencontainers.image.source": expect.stringMatching(/^(https?|ssh|git):\/\/|^git@/) as unknown,
      "org.opencontainers.image.revision": expect.stringMatching(/^[0-9a-f]{40}$/) as unknown,
    });
    // `stowage-image unpack` read (and verified) the same config.
    expect(unpackedConfig).toEqual(layout.config);
  });

  it.each(PLUGINS)("%s: the image holds the copier, the executable and its libraries; under /plugins only the executable is executable", (plugin) => {
    const { tree } = images.get(plugin)!;
    expect(tree.map((e) => [e.path, e.type, e.mode.toString(8), e.uid])).toEqual([
      ["/bin", "dir", "755", 0],
      ["/bin/cp-plugin", "file", "755", 0],
      ["/plugins", "dir", "755", 0],
      [`/plugins/${plugin}`, "dir", "755", 0],
      [`/plugins/${plugin}/lib`, "dir", "755", 0],
      [`/plugins/${plugin}/lib/libgcc_s.so.1`, "file", "644", 0],
      [`/plugins/${plugin}/lib/libstdc++.so.6`, "file", "644", 0],
      [`/plugins/${plugin}/${plugin}`, "file", "755", 0],
    ]);
    expect(veleroWouldStart(tree)).toEqual([`/plugins/${plugin}/${plugin}`]);
  });

  it("each image's entrypoint, run as its user, copied its plugin into the server's /plugins; Velero would start exactly the two executables", async () => {
    for (const plugin of PLUGINS) {
      const { entrypoint } = images.get(plugin)!;
      expect(entrypoint, entrypoint.stderr).toMatchObject({ code: 0, stderr: "" });
      expect(entrypoint.stdout).toBe(`cp-plugin: copied /plugins/${plugin} to /target/${plugin} (3 files)\n`);
      // The copy is the packaged executable, byte for byte.
      expect(await sha256File(join(server, "plugins", plugin, plugin))).toBe(await sha256File(join(SEA, plugin, plugin)));
    }
    const plugins = serverAfter.filter((e) => e.path.startsWith("/plugins/"));
    expect(plugins.map((e) => [e.path, e.type, e.mode.toString(8), e.uid])).toEqual(
      PLUGINS.flatMap((plugin) => [
        [`/plugins/${plugin}`, "dir", "755", NONROOT.uid],
        [`/plugins/${plugin}/lib`, "dir", "755", NONROOT.uid],
        [`/plugins/${plugin}/lib/libgcc_s.so.1`, "file", "644", NONROOT.uid],
        [`/plugins/${plugin}/lib/libstdc++.so.6`, "file", "644", NONROOT.uid],
        [`/plugins/${plugin}/${plugin}`, "file", "755", NONROOT.uid],
      ]),
    );
    expect(veleroWouldStart(serverAfter)).toEqual(PLUGINS.map((plugin) => `/plugins/${plugin}/${plugin}`));
    // Outside /plugins the server's file system is what it was: still no shell, node or C++ runtime.
    expect(forbiddenOutsidePlugins(serverAfter)).toEqual([]);
    expect(serverAfter.filter((e) => !e.path.startsWith("/plugins/"))).toEqual(rootfsBefore);
  });

  it("Velero's client, chrooted into that file system as 65532, discovers both plugins at their /plugins paths and passes every step", () => {
    expect(failures(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(harness.code).toBe(0);
    expect(report.pluginDir).toBe("/plugins");
    const listing = report.steps[0]?.detail as Record<string, { name: string; command: string }[] | undefined>;
    for (const kind of ["ObjectStore", "VolumeSnapshotter"]) {
      expect(Object.fromEntries((listing[kind] ?? []).map((e) => [e.name, e.command]))).toEqual({
        "stowage.io/aws": "/plugins/stowage-plugin-aws/stowage-plugin-aws",
        "stowage.io/local": "/plugins/stowage-plugin-local/stowage-plugin-local",
      });
    }
  });

  it("stowage.io/aws (credentials from AWS_SHARED_CREDENTIALS_FILE, as Velero sets it): the object round trip against MinIO", async () => {
    const steps = stepsOf(report, "stowage.io/aws", "ObjectStore");
    expect(steps.map((s) => s.name)).toEqual([...OBJECT_STORE_STEPS]);
    expect(stepOf(report, "stowage.io/aws", "ObjectStore", "put").detail).toEqual({ keys: 3, sizes: [5 * 1024 * 1024 + 123, 29, 29] });
    const get = stepOf(report, "stowage.io/aws", "ObjectStore", "get").detail as { key: string; bytes: number }[];
    expect(get.map((g) => g.bytes)).toEqual([5 * 1024 * 1024 + 123, 29, 29]);
    expect(stepOf(report, "stowage.io/aws", "ObjectStore", "signed-url").detail).toMatchObject({ status: 200, host: new URL(minio.endpoint).host });
    expect(stepOf(report, "stowage.io/aws", "ObjectStore", "put-empty").detail).toMatchObject({ refused: true, stored: false });
    // Nothing left in the bucket, checked without the plugin.
    const keys: string[] = [];
    for await (const item of admin.listObjectsV2(BUCKET, "", true) as AsyncIterable<{ name?: string }>) if (item.name !== undefined) keys.push(item.name);
    expect(keys).toEqual([]);
  });

  it("stowage.io/local: the object round trip and the volume-snapshotter round trip, on files the plugin wrote as 65532", async () => {
    expect(stepsOf(report, "stowage.io/local", "ObjectStore").map((s) => s.name)).toEqual([...OBJECT_STORE_STEPS]);
    expect(stepOf(report, "stowage.io/local", "ObjectStore", "signed-url").detail).toMatchObject({ status: 200 });
    expect(stepsOf(report, "stowage.io/local", "VolumeSnapshotter").map((s) => s.name)).toEqual([...SNAPSHOTTER_STEPS]);
    const restored = (stepOf(report, "stowage.io/local", "VolumeSnapshotter", "create-volume-from-snapshot").detail as { volumeId: string }).volumeId;
    expect(stepOf(report, "stowage.io/local", "VolumeSnapshotter", "get-volume-info-restored").detail).toEqual({ volumeId: restored, volumeType: "ssd", iops: 750 });
    const copy = localVolumePath(join(server, "data", "blocks"), restored);
    expect(sha256(await readFile(copy))).toBe(sha256(await readFile(volume.path)));
    // The plugin ran as the server's non-root user: the restored volume is that user's.
    expect((await stat(copy)).uid).toBe(NONROOT.uid);
    expect(await readdir(join(server, "data", "objects"))).toEqual([LOCAL_BUCKET]);
  });

  it("control: the same executable without its lib/ directory cannot start there (the file system has no C++ runtime)", async () => {
    await mkdir(join(server, "probe"));
    await copyFile(join(SEA, "stowage-plugin-local", "stowage-plugin-local"), join(server, "probe", "stowage-plugin-local"));
    await chmod(join(server, "probe", "stowage-plugin-local"), 0o755);
    const probe = await runInRootfs(server, NONROOT, { PATH: "/usr/bin:/bin" }, "/probe/stowage-plugin-local", []);
    expect(probe.code).toBe(127);
    expect(probe.stderr).toContain("libstdc++.so.6: cannot open shared object file");
  });

  it("building stowage-plugin-local's image again from the same inputs gives the same digest and the same archive", async () => {
    const { summary } = images.get("stowage-plugin-local")!;
    const out = join(scratch, "rebuild");
    const rebuilt = await runOk(STOWAGE_IMAGE, [
      "build",
      "--name=stowage-plugin-local",
      `--dir=${join(SEA, "stowage-plugin-local")}`,
      `--copier=${CP_PLUGIN}`,
      `--out=${out}`,
      `--version=${summary.ref}`,
      `--source=${summary.labels["org.opencontainers.image.source"] ?? ""}`,
      `--revision=${summary.labels["org.opencontainers.image.revision"] ?? ""}`,
      `--created=${String(Date.parse(summary.created) / 1000)}`,
      `--platform=${summary.platform}`,
    ]);
    expect((JSON.parse(rebuilt.stdout) as ImageSummary).digest).toBe(summary.digest);
    expect(await sha256File(join(out, "image.tar"))).toBe(await sha256File(summary.archive));
  });
});
