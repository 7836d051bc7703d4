/**
 * `stowage demo`: the tour a newcomer runs. Against the embedded local plugin in its own process
 * it uploads, lists, downloads, inspects, signs, fetches and deletes an object, then snapshots a
 * volume and restores it — checking every byte — and reports what passed and how fast.
 * `--provider aws` runs the object part through `stowage-plugin-aws` against a MinIO server the
 * command starts (and stops) itself.
 *
 * @packageDocumentation
 */
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Code, StowageError } from "@stowage/sdk";
import { PluginHost, type HostBlockStore, type HostObjectStore } from "@stowage/sdk/host";
import { createLocalVolume, localVolumePath, type LocalVolume } from "@stowage/plugin-local";
import type { Command } from "commander";
import { EXIT_FAILURE, exitCodeOf, usageError } from "../exit.js";
import { catchInterrupts, createHost, globalOptions, hostLogger, startHost, type GlobalOptions } from "../host-options.js";
import { MIB, formatBytes, mibPerSecond, printJson, printLines, seconds } from "../output.js";
import { parseSizeOption } from "../parse.js";
import { percentProgress, progressEnabled, tap, transferProgress } from "../progress.js";
import { waitForSnapshot } from "../snapshots.js";
import { LOCAL_PLUGIN } from "../store-options.js";
import { Digest, digestFile, digestStream, pseudoRandomBlock, pseudoRandomBytes } from "../demo/data.js";
import { DemoRun, StepFailed, done, formatFigures } from "../demo/report.js";
import { AWS_PLUGIN, awsPluginCommand, startDemoMinio, type DemoMinio } from "../demo/aws.js";

/** Bucket of the demo object. */
export const DEMO_BUCKET = "demo";
/** Key of the demo object. */
export const DEMO_KEY = "backups/demo-1/demo-1.tar.gz";
/** Content type of the demo object. */
export const DEMO_CONTENT_TYPE = "application/gzip";
/** Seed of the demo data. */
const DEMO_SEED = "stowage-demo";
/** Type and zone of the demo volumes. */
const DEMO_VOLUME_TYPE = "demo-ssd";
const DEMO_ZONE = "demo-zone-1";
/** Size of the demo volume. */
export const DEMO_VOLUME_BYTES = 64 * MIB;

/** The plugins the demo can run, by `--provider` value. */
const PROVIDERS: Readonly<Record<string, string>> = {
  local: LOCAL_PLUGIN,
  [LOCAL_PLUGIN]: LOCAL_PLUGIN,
  aws: AWS_PLUGIN,
  [AWS_PLUGIN]: AWS_PLUGIN,
};

interface DemoOptions {
  readonly size: string;
  readonly provider: string;
  readonly dir?: string;
  readonly keep?: boolean;
}

/** Everything the steps share. */
interface DemoState {
  readonly run: DemoRun;
  readonly globals: GlobalOptions;
  readonly signal: AbortSignal;
  readonly sizeBytes: number;
  readonly dir: string;
  /** The plugin under test: {@link LOCAL_PLUGIN} or {@link AWS_PLUGIN}. */
  readonly provider: string;
  minio?: DemoMinio;
  host?: PluginHost;
  pluginPid?: number | undefined;
  objects?: HostObjectStore;
  blocks?: HostBlockStore;
  objectStored?: boolean;
  volume?: LocalVolume;
  snapshotId?: string;
  restoredId?: string;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new StowageError(Code.DataLoss, message);
}

function short(hex: string): string {
  return `${hex.slice(0, 12)}…`;
}

async function objectSteps(s: DemoState, host: PluginHost): Promise<void> {
  const { run, signal } = s;
  const bars = progressEnabled(s.globals.json);
  const size = formatBytes(s.sizeBytes);

  const objects = await run.step("init object store", async () => {
    const { minio } = s;
    if (minio !== undefined) {
      const client = host.objectStore(AWS_PLUGIN);
      s.objects = client;
      await client.init(minio.config, { signal });
      return done(`s3Url ${minio.server.endpoint}, bucket ${DEMO_BUCKET}`, client);
    }
    const root = join(s.dir, "objects");
    await mkdir(root, { recursive: true });
    const client = host.objectStore(LOCAL_PLUGIN);
    s.objects = client;
    await client.init({ root, createBuckets: "true" }, { signal });
    return done(`root ${root}`, client);
  });

  const sha256 = await run.step(`put ${size} object`, async () => {
    const digest = new Digest();
    const progress = transferProgress("  put", s.sizeBytes, bars);
    const started = performance.now();
    let result;
    try {
      // Generate, hash and upload in one pass, one chunk at a time.
      result = await objects.putObject(
        {
          bucket: DEMO_BUCKET,
          key: DEMO_KEY,
          size: s.sizeBytes,
          contentType: DEMO_CONTENT_TYPE,
          metadata: { "created-by": "stowage-demo" },
          body: tap((chunk) => {
            digest.update(chunk);
            progress.advance(chunk.byteLength);
          })(pseudoRandomBytes(s.sizeBytes, DEMO_SEED)),
        },
        { signal },
      );
    } finally {
      progress.stop();
    }
    const ms = performance.now() - started;
    s.objectStored = true;
    const sent = digest.hex();
    check(digest.bytes === s.sizeBytes, `sent ${digest.bytes} of ${s.sizeBytes} bytes`);
    check(result.size === s.sizeBytes, `the plugin stored ${result.size} bytes, ${s.sizeBytes} were sent`);
    if (result.sha256 !== undefined) check(Buffer.from(result.sha256).toString("hex") === sent, "the plugin's SHA-256 differs from the bytes sent");
    run.figures.putMiBps = mibPerSecond(s.sizeBytes, ms);
    return done(`${DEMO_BUCKET}/${DEMO_KEY}, sha256 ${short(sent)}, ${run.figures.putMiBps} MiB/s`, sent);
  });

  await run.step("list backups/ by /", async () => {
    const prefixes: string[] = [];
    for await (const page of objects.listObjects({ bucket: DEMO_BUCKET, prefix: "backups/", delimiter: "/" }, { signal })) prefixes.push(...page.commonPrefixes);
    const expected = `${dirname(DEMO_KEY)}/`;
    check(prefixes.includes(expected), `expected the common prefix ${expected}, got [${prefixes.join(", ")}]`);
    return done(`common prefix ${expected}`);
  });

  await run.step("get object and verify", async () => {
    const started = performance.now();
    const out = await objects.getObject({ bucket: DEMO_BUCKET, key: DEMO_KEY }, { signal });
    const progress = transferProgress("  get", out.contentLength, bars);
    let got: { sha256: string; bytes: number };
    try {
      got = await digestStream(out.body, (chunk) => progress.advance(chunk.byteLength));
    } finally {
      progress.stop();
    }
    const ms = performance.now() - started;
    check(got.bytes === s.sizeBytes, `read ${got.bytes} bytes, expected ${s.sizeBytes}`);
    check(got.sha256 === sha256, `SHA-256 ${short(got.sha256)} differs from the uploaded ${short(sha256)}`);
    run.figures.getMiBps = mibPerSecond(got.bytes, ms);
    return done(`${formatBytes(got.bytes)}, sha256 matches, ${run.figures.getMiBps} MiB/s`);
  });

  await run.step("head object", async () => {
    const info = await objects.headObject({ bucket: DEMO_BUCKET, key: DEMO_KEY }, { signal });
    check(info !== undefined, "headObject found no object");
    check(info.size === s.sizeBytes, `size ${info.size}, expected ${s.sizeBytes}`);
    if (objects.descriptor.capabilities.includes("OBJECT_METADATA")) {
      check(info.contentType === DEMO_CONTENT_TYPE, `content type ${JSON.stringify(info.contentType)}, expected ${JSON.stringify(DEMO_CONTENT_TYPE)}`);
      check(info.metadata["created-by"] === "stowage-demo", "the user metadata did not round-trip");
    }
    const etag = info.etag.length > 16 ? short(info.etag) : info.etag || "-";
    return done(`size ${info.size}, etag ${etag}, ${info.contentType || "no content type"}`);
  });

  await run.step("signed GET URL over HTTP", async () => {
    const signed = await objects.createSignedUrl({ bucket: DEMO_BUCKET, key: DEMO_KEY, method: "GET", ttlSeconds: 60 }, { signal });
    const started = performance.now();
    // "Connection: close": an idle keep-alive connection would hold the plugin's URL server open
    // and delay the plugin's shutdown until the host kills it.
    const response = await fetch(signed.url, { signal, headers: { connection: "close" } });
    check(response.ok, `GET ${new URL(signed.url).origin}/… answered ${response.status} ${response.statusText}`);
    check(response.body !== null, "the response has no body");
    const progress = transferProgress("  url", s.sizeBytes, bars);
    let got: { sha256: string; bytes: number };
    try {
      got = await digestStream(response.body, (chunk) => progress.advance(chunk.byteLength));
    } finally {
      progress.stop();
    }
    const ms = performance.now() - started;
    check(got.bytes === s.sizeBytes, `fetched ${got.bytes} bytes, expected ${s.sizeBytes}`);
    check(got.sha256 === sha256, "the body fetched through the URL differs from the uploaded object");
    run.figures.signedGetMiBps = mibPerSecond(got.bytes, ms);
    return done(`${new URL(signed.url).origin}, sha256 matches, ${run.figures.signedGetMiBps} MiB/s`);
  });

  await run.step("delete object", async () => {
    await objects.deleteObject({ bucket: DEMO_BUCKET, key: DEMO_KEY }, { signal });
    s.objectStored = false;
    const after = await objects.headObject({ bucket: DEMO_BUCKET, key: DEMO_KEY }, { signal });
    check(after === undefined, "the object is still there after deleteObject");
    return done("headObject now finds nothing");
  });
}

async function blockSteps(s: DemoState, host: PluginHost): Promise<void> {
  const { run, signal } = s;
  const bars = progressEnabled(s.globals.json);
  const root = join(s.dir, "blocks");

  const blocks = await run.step("init block store", async () => {
    await mkdir(root, { recursive: true });
    const client = host.blockStore(LOCAL_PLUGIN);
    s.blocks = client;
    await client.init({ root }, { signal });
    return done(`root ${root}`, client);
  });

  const { volume, volumeSha256 } = await run.step(`create ${formatBytes(DEMO_VOLUME_BYTES)} volume`, async () => {
    const created = await createLocalVolume(root, {
      sizeBytes: DEMO_VOLUME_BYTES,
      volumeType: DEMO_VOLUME_TYPE,
      zone: DEMO_ZONE,
      tags: { app: "stowage-demo" },
      fill: pseudoRandomBlock(MIB, `${DEMO_SEED}-volume`),
    });
    s.volume = created;
    const original = await digestFile(created.path);
    check(original.bytes === DEMO_VOLUME_BYTES, `the volume file holds ${original.bytes} bytes, expected ${DEMO_VOLUME_BYTES}`);
    return done(`${created.volumeId}, sha256 ${short(original.sha256)}`, { volume: created, volumeSha256: original.sha256 });
  });

  const snapshotId = await run.step("snapshot volume", async () => {
    const started = performance.now();
    const created = await blocks.createSnapshot({ volumeId: volume.volumeId, zone: DEMO_ZONE, tags: { demo: "true" } }, { signal });
    s.snapshotId = created.snapshotId;
    let ready = created;
    if (created.state !== "ready") {
      const progress = percentProgress("  snapshot", bars);
      try {
        ready = await waitForSnapshot(blocks, created.snapshotId, { signal, progress });
      } finally {
        progress.stop();
      }
    }
    const ms = performance.now() - started;
    check(ready.volumeId === volume.volumeId, `the snapshot names volume ${ready.volumeId}, expected ${volume.volumeId}`);
    check(ready.tags.demo === "true", "the snapshot lost its tag");
    if (ready.sizeBytes !== 0) check(ready.sizeBytes === DEMO_VOLUME_BYTES, `snapshot size ${ready.sizeBytes}, expected ${DEMO_VOLUME_BYTES}`);
    run.figures.snapshotSeconds = seconds(ms);
    return done(`${created.snapshotId}, ${created.state} → ready`, created.snapshotId);
  });

  const restoredId = await run.step("restore volume from snapshot", async () => {
    const id = await blocks.createVolumeFromSnapshot({ snapshotId, volumeType: DEMO_VOLUME_TYPE, zone: DEMO_ZONE }, { signal });
    s.restoredId = id;
    check(id !== volume.volumeId, "the restored volume has the original's ID");
    return done(id, id);
  });

  await run.step("restored bytes match original", async () => {
    const restoredPath = localVolumePath(root, restoredId);
    const restored = await digestFile(restoredPath);
    check(restored.bytes === DEMO_VOLUME_BYTES, `the restored volume holds ${restored.bytes} bytes, expected ${DEMO_VOLUME_BYTES}`);
    check(restored.sha256 === volumeSha256, `the restored volume's SHA-256 ${short(restored.sha256)} differs from the original's`);
    return done(`${formatBytes(restored.bytes)}, sha256 ${short(restored.sha256)} on both`);
  });

  await run.step("volume info", async () => {
    const info = await blocks.getVolumeInfo({ volumeId: restoredId, zone: DEMO_ZONE }, { signal });
    check(info.volumeId === restoredId, `GetVolumeInfo described ${info.volumeId}`);
    check(info.sizeBytes === DEMO_VOLUME_BYTES, `size ${info.sizeBytes}, expected ${DEMO_VOLUME_BYTES}`);
    return done(`${formatBytes(info.sizeBytes)}, type ${info.volumeType || "-"}, zone ${info.zone || "-"}`);
  });
}

/** Whether `call` fails with NOT_FOUND. */
async function isGone(call: () => Promise<unknown>): Promise<boolean> {
  try {
    await call();
    return false;
  } catch (error) {
    if (error instanceof StowageError && error.code === Code.NotFound) return true;
    throw error;
  }
}

async function cleanupSteps(s: DemoState): Promise<void> {
  // Clean-up ignores the interrupt signal (it must still happen) but not forever.
  const options = { timeoutMs: 30_000 };
  const { objects, blocks } = s;
  if (s.objectStored === true && objects !== undefined) {
    await s.run.cleanup("delete leftover object", async () => {
      await objects.deleteObject({ bucket: DEMO_BUCKET, key: DEMO_KEY }, options);
      return done(`${DEMO_BUCKET}/${DEMO_KEY}`);
    });
  }
  if (blocks === undefined || (s.snapshotId === undefined && s.volume === undefined)) return;
  await s.run.cleanup("delete snapshot and volumes", async () => {
    const deleted: string[] = [];
    const { snapshotId } = s;
    if (snapshotId !== undefined) {
      await blocks.deleteSnapshot(snapshotId, options);
      check(await isGone(() => blocks.getSnapshot(snapshotId, options)), `snapshot ${snapshotId} still exists after deleteSnapshot`);
      deleted.push(snapshotId);
    }
    for (const volumeId of [s.restoredId, s.volume?.volumeId]) {
      if (volumeId === undefined) continue;
      await blocks.deleteVolume({ volumeId, zone: DEMO_ZONE }, options);
      check(await isGone(() => blocks.getVolumeInfo({ volumeId, zone: DEMO_ZONE }, options)), `volume ${volumeId} still exists after deleteVolume`);
      deleted.push(volumeId);
    }
    return done(`${deleted.join(", ")} gone`);
  });
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function demo(options: DemoOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const sizeBytes = parseSizeOption(options.size, "--size", MIB, MIB, 1024 * 1024 * MIB);
  const provider = PROVIDERS[options.provider];
  if (provider === undefined) throw usageError(`--provider ${options.provider} is not one of: ${Object.keys(PROVIDERS).join(", ")}`);
  const aws = provider === AWS_PLUGIN;
  const temporary = options.dir === undefined;
  if (options.dir !== undefined) {
    const info = await stat(options.dir).catch(() => undefined);
    if (info !== undefined && !info.isDirectory()) throw usageError(`--dir ${options.dir} exists and is not a directory`);
  }
  const dir = options.dir === undefined ? await mkdtemp(join(tmpdir(), "stowage-demo-")) : resolve(options.dir);
  if (!temporary) await mkdir(dir, { recursive: true });
  const interrupts = catchInterrupts();
  const run = new DemoRun(!globals.json);
  const started = performance.now();
  const s: DemoState = { run, globals, signal: interrupts.signal, sizeBytes, dir, provider };
  if (!globals.json) {
    printLines(
      aws
        ? `stowage demo: a ${formatBytes(s.sizeBytes)} object through ${AWS_PLUGIN} against a local MinIO server (the EBS block-store part is skipped), in ${dir}`
        : `stowage demo: a ${formatBytes(s.sizeBytes)} object and a ${formatBytes(DEMO_VOLUME_BYTES)} volume through ${LOCAL_PLUGIN}, in ${dir}`,
    );
  }
  let plugin: { name: string; pid: number | undefined; runtime: string } | undefined;
  let endpoint: string | undefined;
  try {
    if (aws) {
      await run.step("start MinIO", async () => {
        const started = await startDemoMinio(dir, DEMO_BUCKET, interrupts.signal);
        s.minio = started;
        endpoint = started.server.endpoint;
        return done(`${started.server.endpoint} in process ${started.server.pid}, bucket ${DEMO_BUCKET} created`);
      });
    }
    const host = await run.step("start plugin host", async () => {
      // The demo runs one known plugin: other plugin options do not apply.
      const created = aws
        ? new PluginHost({ plugins: [awsPluginCommand(globals.logLevel)], logger: hostLogger(globals) })
        : await createHost({ ...globals, pluginDir: undefined, plugins: [], embedded: true });
      s.host = created;
      await startHost(created, { ...globals, embedded: !aws });
      const served = created.plugins().filter((p) => p.descriptor.name === provider);
      const kinds = served.map((p) => p.descriptor.kind);
      check(kinds.includes("object-store") && kinds.includes("block-store"), `${provider} serves [${kinds.join(", ")}], expected both kinds`);
      plugin = { name: provider, pid: served[0]?.pid, runtime: served[0]?.runtime ?? "" };
      s.pluginPid = plugin.pid;
      return done(`${provider} (${kinds.join(" + ")}) in process ${plugin.pid ?? "?"}, ${plugin.runtime}`, created);
    });
    await objectSteps(s, host);
    // The block-store part needs EBS (or moto); the AWS demo covers the object store only.
    if (!aws) await blockSteps(s, host);
  } catch (error) {
    if (!(error instanceof StepFailed)) throw error;
  } finally {
    await cleanupSteps(s);
    const { host } = s;
    if (host !== undefined) {
      await run.cleanup("stop plugin process", async () => {
        await host.close();
        const pid = s.pluginPid;
        check(pid === undefined || !isRunning(pid), `plugin process ${pid ?? "?"} is still running after close`);
        return done(pid === undefined ? "closed" : `process ${pid} exited`);
      });
    }
    const { minio } = s;
    if (minio !== undefined) {
      await run.cleanup("stop MinIO", async () => {
        await minio.server.stop();
        const pid = minio.server.pid;
        check(pid <= 0 || !isRunning(pid), `MinIO process ${pid} is still running after stop`);
        return done(`process ${pid} exited, data removed`);
      });
    }
    interrupts.dispose();
    if (temporary && options.keep !== true) await rm(dir, { recursive: true, force: true });
  }
  run.figures.totalSeconds = seconds(performance.now() - started);
  const kept = !temporary || options.keep === true;
  if (globals.json) {
    printJson({
      ok: run.ok,
      sizeMiB: sizeBytes / MIB,
      provider,
      volumeMiB: aws ? 0 : DEMO_VOLUME_BYTES / MIB,
      ...(endpoint === undefined ? {} : { endpoint }),
      dir,
      kept,
      plugin,
      steps: run.steps.map((step) => ({ name: step.name, ok: step.ok, detail: step.detail, seconds: seconds(step.ms) })),
      figures: run.figures,
      ...(run.failed === undefined ? {} : { failedStep: run.failed.name, error: run.failed.detail }),
    });
  } else {
    printLines("", "figures", ...formatFigures(run.figures), "");
    if (kept) printLines(`data kept in ${dir}`);
    printLines(run.failed === undefined ? `✓ all ${run.steps.length} steps passed` : `✗ the demo failed at "${run.failed.name}"`);
  }
  if (run.failed !== undefined) {
    process.stderr.write(`stowage: demo failed at "${run.failed.name}": ${run.failed.detail}\n`);
    process.exitCode = interrupts.signal.aborted ? exitCodeOf(interrupts.signal.reason) : EXIT_FAILURE;
  }
}

/** Registers `stowage demo` on `program`. */
export function registerDemoCommand(program: Command): void {
  program
    .command("demo")
    .description("run every ObjectStore and BlockStore call against the embedded local plugin (or the object calls through stowage.io/aws against a MinIO it starts), verify the bytes and report speeds")
    .option("--size <size>", "size of the demo object: a size (256MiB, 1GiB) or MiB", "256MiB")
    .option("--provider <name>", `plugin to demonstrate: local (${LOCAL_PLUGIN}) or aws (${AWS_PLUGIN}, against a MinIO server the demo starts; install it with: bash scripts/install-test-servers minio)`, "local")
    .option("--dir <path>", "data directory (default: a fresh temporary directory, removed at the end)")
    .option("--keep", "keep the temporary data directory")
    .action(demo);
}
