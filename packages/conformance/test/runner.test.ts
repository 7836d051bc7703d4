/**
 * The runner's contract with its callers: exit statuses, case selection, known failures, the
 * readable report and its closing line, configuration checking, and --sweep.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import { PluginHost } from "@stowage/sdk/host";
import { silentLogger } from "@stowage/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExitCode, loadConfigFile, parseConfig, runConformance, sweep, ConfigError, CasePatterns, loadKnownFailing } from "../src/index.js";
import { fixture, localPlugin, memoryConfig, tempDir } from "./support/fixtures.js";

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await dir.remove();
});

function capture(): { stream: Writable; text: () => string } {
  let text = "";
  return {
    stream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString("utf8");
        callback();
      },
    }),
    text: () => text,
  };
}

describe("configuration", () => {
  it("reads YAML, turns scalars into strings and expands ${env:NAME}", async () => {
    process.env.STOWAGE_CONFORMANCE_TEST_SECRET = "s3cr3t";
    const path = join(dir.path, "conf.yaml");
    await writeFile(path, "largeObjectMiB: 8\nobjectStore:\n  plugin: stowage.io/local\n  config: { root: /data, createBuckets: true, fsync: 0, key: '${env:STOWAGE_CONFORMANCE_TEST_SECRET}' }\n  bucket: b\n");
    const config = await loadConfigFile(path);
    expect(config.largeObjectMiB).toBe(8);
    const { resolveObjectStoreSettings } = await import("../src/config.js");
    const settings = resolveObjectStoreSettings(config, { runId: "r-abcd" });
    expect(settings.config).toEqual({ root: "/data", createBuckets: "true", fsync: "0", key: "s3cr3t" });
    expect(settings.largeObjectBytes).toBe(8 * 1024 * 1024);
    expect(settings.missingBucket).toBe("stowage-conformance-missing-abcd");
  });

  it("refuses unknown keys, listing the valid ones, and malformed YAML", () => {
    expect(() => parseConfig("objectStore: { bucket: b, buckett: c }")).toThrow(/objectStore has unknown keys \[buckett\]; valid keys are \[plugin, config, bucket/);
    expect(() => parseConfig("objectStore: [")).toThrow(ConfigError);
    expect(() => parseConfig("blockStore: { volumeId: v, pvTemplates: { csi: { spec: {} } } }")).toThrow(/must contain the placeholder \$\{volumeId\}/);
  });

  it("reads known-failing files with comments", async () => {
    const path = join(dir.path, "known-failing.txt");
    await writeFile(path, "# why\nOS-SIGNED-*-EXPIRY  # the backend's clock skew\n\nblock-store/PROTO-SIGINT\n");
    const patterns = await loadKnownFailing(path);
    expect(patterns.sources).toEqual(["OS-SIGNED-*-EXPIRY", "block-store/PROTO-SIGINT"]);
    expect(patterns.matches("OS-SIGNED-GET-EXPIRY", "object-store")).toBe(true);
    expect(patterns.matches("PROTO-SIGINT", "object-store")).toBe(false);
    expect(patterns.matches("PROTO-SIGINT", "block-store")).toBe(true);
    expect(CasePatterns.fromOption(["OS-A,OS-B"]).sources).toEqual(["OS-A", "OS-B"]);
  });
});

describe("exit statuses", () => {
  it("is 2 for a configuration error, before anything is launched", async () => {
    const outcome = await runConformance({ plugin: fixture("good-memory-plugin"), config: { objectStore: { bucket: "b", bogus: 1 } as never } });
    expect(outcome.exitCode).toBe(ExitCode.Usage);
    expect(outcome.errors[0]).toMatch(/unknown keys \[bogus\]/);
    expect(outcome.results).toEqual([]);
  });

  it("is 2 when the plugin refuses the Init configuration or the bucket does not exist", async () => {
    const refused = await runConformance({ plugin: fixture("good-memory-plugin"), config: { objectStore: { config: { buckets: "b", region: "x" }, bucket: "b" } }, run: "OS-HEAD" });
    expect(refused.exitCode).toBe(ExitCode.Usage);
    expect(refused.errors.join("\n")).toMatch(/OS-INIT: Init refused the configuration in objectStore.config: config has invalid keys \[region\]/);
    const noBucket = await runConformance({ plugin: fixture("good-memory-plugin"), config: { objectStore: { config: { buckets: "b" }, bucket: "other" } }, run: "OS-HEAD" });
    expect(noBucket.exitCode).toBe(ExitCode.Usage);
    expect(noBucket.errors.join("\n")).toMatch(/the bucket "other" does not exist/);
  }, 30_000);

  it("is 3 when the plugin cannot start, with the host's explanation", async () => {
    const out = capture();
    const outcome = await runConformance({ plugin: { command: process.execPath, args: ["-e", "process.stderr.write('no cookie for me\\n'); process.exit(1)"] }, config: memoryConfig(), output: out.stream });
    expect(outcome.exitCode).toBe(ExitCode.PluginStart);
    expect(outcome.errors[0]).toMatch(/exited with status 1 before completing the handshake/);
    expect(out.text()).toMatch(/the plugin could not be started/);
    expect(out.text()).toMatch(/no cookie for me/);
  }, 30_000);

  it("is 1 when a known-failing case passes, and 0 when it fails as expected", async () => {
    const stale = await runConformance({ plugin: fixture("good-memory-plugin"), config: memoryConfig(), run: "OS-HEAD", knownFailing: ["OS-HEAD"] });
    expect(stale.results.map((r) => [r.id, r.status])).toEqual([["OS-INIT", "pass"], ["OS-HEAD", "xpass"]]);
    expect(stale.exitCode).toBe(ExitCode.Failed);
    const expected = await runConformance({ plugin: fixture("delete-missing-fails"), config: memoryConfig(), run: "OS-DELETE*", knownFailing: ["OS-DELETE-IDEMPOTENT"] });
    expect(expected.results.map((r) => [r.id, r.status])).toEqual([["OS-INIT", "pass"], ["OS-DELETE", "pass"], ["OS-DELETE-IDEMPOTENT", "xfail"]]);
    expect(expected.exitCode).toBe(ExitCode.Passed);
    expect(expected.summaryLine).toBe("2 passed, 0 failed, 1 skipped");
  }, 30_000);
});

describe("selection and the readable report", () => {
  it("runs the --run cases minus the --skip ones, Init first, and ends with the summary line", async () => {
    const out = capture();
    const outcome = await runConformance({ plugin: fixture("good-memory-plugin"), config: memoryConfig(), run: ["OS-LIST-*", "OS-SIGNED-GET"], skip: ["OS-LIST-PAGINATION-*", "OS-LIST-SIZE"], output: out.stream });
    expect(outcome.results.map((r) => r.id)).toEqual(["OS-INIT", "OS-LIST-PREFIX", "OS-LIST-DELIMITER", "OS-LIST-EMPTY", "OS-LIST-ORDER", "OS-LIST-PAGE-SIZE-INVALID", "OS-LIST-RESUME", "OS-LIST-INVALID-TOKEN", "OS-SIGNED-GET"]);
    expect(outcome.results.at(-1)).toMatchObject({ status: "skip", message: "the plugin does not announce SIGNED_GET_URLS" });
    const lines = out.text().trimEnd().split("\n");
    expect(lines.at(-1)).toBe("8 passed, 0 failed, 1 skipped");
    expect(lines).toContain(lines.find((l) => /^ID\s+LEVEL\s+CLAUSE\s+RESULT\s+TIME$/.test(l)));
    expect(lines.some((l) => /^OS-LIST-ORDER\s+MUST\s+5\.5\.5\s+pass\s+\d+ ms$/.test(l))).toBe(true);
    expect(lines.some((l) => /^OS-SIGNED-GET\s+MUST\s+.*skip\s+\(the plugin does not announce SIGNED_GET_URLS\)$/.test(l))).toBe(true);
  }, 30_000);

  it("skips the protocol cases that need a command line when it is handed a host without one", async () => {
    const host = new PluginHost({ plugins: [fixture("good-memory-plugin")], logger: silentLogger });
    await host.start();
    try {
      const outcome = await runConformance({ host, config: memoryConfig(), run: ["PROTO-HEALTH", "PROTO-NOT-INITIALIZED", "OS-HEAD"] });
      expect(outcome.results.map((r) => [r.id, r.status])).toEqual([
        ["OS-INIT", "pass"],
        ["PROTO-HEALTH", "skip"],
        ["PROTO-NOT-INITIALIZED", "pass"],
        ["OS-HEAD", "pass"],
      ]);
      expect(host.plugins()).toHaveLength(1);
    } finally {
      await host.close();
    }
  }, 30_000);
});

describe("--sweep", () => {
  it("removes objects and tagged snapshots that earlier runs left behind", async () => {
    const objects = join(dir.path, "sweep-objects");
    const blocks = join(dir.path, "sweep-blocks");
    await mkdir(objects);
    const { createLocalVolume } = await import("@stowage/plugin-local");
    const volume = await createLocalVolume(blocks, { sizeBytes: 1 << 20 });
    const host = new PluginHost({ plugins: [localPlugin()], logger: silentLogger });
    await host.start();
    let snapshotId: string;
    try {
      const store = host.objectStore("stowage.io/local");
      await store.init({ root: objects, createBuckets: "true" });
      for (const key of ["stowage-conformance-20260101t000000-dead/OS-HEAD/present", "stowage-conformance-20260101t000000-dead/.stowage-conformance-run", "keep/me"]) {
        await store.putObject({ bucket: "b", key, body: Readable.from([Buffer.from("x")]) });
      }
      const snapshots = host.blockStore("stowage.io/local");
      await snapshots.init({ root: blocks });
      snapshotId = (await snapshots.createSnapshot({ volumeId: volume.volumeId, tags: { "stowage.io/conformance": "true", "stowage.io/conformance-run": "dead" } })).snapshotId;
      await snapshots.createSnapshot({ volumeId: volume.volumeId, tags: { keep: "yes" } });
    } finally {
      await host.close();
    }
    const out = capture();
    const outcome = await sweep({
      plugin: localPlugin(),
      config: { objectStore: { config: { root: objects }, bucket: "b" }, blockStore: { config: { root: blocks }, volumeId: volume.volumeId } },
      output: out.stream,
    });
    expect(outcome.errors).toEqual([]);
    expect(outcome.failed).toEqual([]);
    expect([...outcome.removed].sort()).toEqual([
      "object b/stowage-conformance-20260101t000000-dead/.stowage-conformance-run",
      "object b/stowage-conformance-20260101t000000-dead/OS-HEAD/present",
      `snapshot ${snapshotId}`,
    ]);
    expect(outcome.exitCode).toBe(0);
  }, 60_000);
});

describe("plugins started with protocol: \"velero\"", () => {
  it("launches the protocol cases with Velero's cookie and version, and reads sizes from the size cases only", async () => {
    // A plugin built on the SDK serves Velero's protocol when Velero's cookie is set; the host then
    // reaches it through the Velero adapter, which knows no sizes (contract 7.5).
    const plugin = { ...fixture("good-memory-plugin"), protocol: "velero" as const };
    const outcome = await runConformance({
      plugin,
      config: memoryConfig(),
      run: ["PROTO-HANDSHAKE", "PROTO-HEALTH", "PROTO-SIGINT", "PROTO-SHUTDOWN", "PROTO-MISSING-COOKIE", "OS-HEAD", "OS-HEAD-SIZE", "OS-PUT-SIZES", "OS-OVERWRITE"],
    });
    const status = Object.fromEntries(outcome.results.map((r) => [r.id, r.status]));
    expect(status).toEqual({
      "OS-INIT": "pass",
      "PROTO-HANDSHAKE": "pass",
      "PROTO-MISSING-COOKIE": "pass",
      "PROTO-HEALTH": "pass",
      "PROTO-SIGINT": "pass",
      "PROTO-SHUTDOWN": "pass",
      "OS-PUT-SIZES": "pass",
      "OS-HEAD": "pass",
      "OS-HEAD-SIZE": "fail",
      "OS-OVERWRITE": "pass",
    });
    expect(outcome.results.find((r) => r.id === "OS-HEAD-SIZE")?.message).toMatch(/"twelve": -1 \(unknown\) instead of 12.*contract 7\.5/);
  }, 60_000);
});
