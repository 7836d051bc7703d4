/**
 * `stowage conformance` and `stowage new plugin`, run as the built executable.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { runCli, tempDir } from "./support/cli.js";

const FIXTURES = fileURLToPath(new URL("../../conformance/test/fixtures/", import.meta.url));
const GOOD = join(FIXTURES, "good-memory-plugin.mjs");
const WORKSPACE = fileURLToPath(new URL("../../../", import.meta.url));

/** A known-failing list with comments only: nothing is known to fail today. */
const SDK_KNOWN_FAILING = "# no case is known to fail\n";

const MEMORY_CONFIG = `largeObjectSize: 2MiB
objectStore:
  config: { buckets: conformance }
  bucket: conformance
  signedUrlExpiryGraceSeconds: 0.5
`;

function lastLine(text: string): string {
  return text.trimEnd().split("\n").at(-1) ?? "";
}

describe("stowage conformance", () => {
  it("runs the selected cases against the plugin after --, prints the table and the closing line, and writes reports", async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, "conf.yaml"), MEMORY_CONFIG);
    const result = await runCli(["conformance", "--config", "conf.yaml", "--run", "OS-HEAD,PROTO-HEALTH", "--run", "OS-SIGNED-GET", "--report-dir", "out", "--", process.execPath, GOOD], { cwd });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/stowage conformance: object-store plugin fixture\.stowage\.io\/good/);
    expect(result.out).toMatch(/^PROTO-HEALTH\s+MUST\s+.*pass/m);
    expect(result.out).toMatch(/^OS-SIGNED-GET\s+MUST\s+.*skip\s+\(the plugin does not announce SIGNED_GET_URLS\)$/m);
    expect(lastLine(result.out)).toBe("3 passed, 0 failed, 1 skipped");
    const jsonl = (await readFile(join(cwd, "out", "results.jsonl"), "utf8")).trimEnd().split("\n").map((l) => JSON.parse(l) as { id: string; status: string });
    expect(jsonl.map((r) => [r.id, r.status])).toEqual([["OS-INIT", "pass"], ["PROTO-HEALTH", "pass"], ["OS-HEAD", "pass"], ["OS-SIGNED-GET", "skip"]]);
    expect(await readFile(join(cwd, "out", "junit.xml"), "utf8")).toMatch(/<testsuite name="stowage conformance: object-store fixture.stowage.io\/good" tests="4" failures="0" errors="0" skipped="1"/);
  }, 60_000);

  it("exits with 1 on a failure and names it, and with 0 when the failure is listed as known", async () => {
    const cwd = await tempDir();
    await writeFile(join(cwd, "conf.yaml"), MEMORY_CONFIG);
    const broken = join(FIXTURES, "delete-missing-fails.mjs");
    const failed = await runCli(["conformance", "--config", "conf.yaml", "--run", "OS-DELETE*", "--", process.execPath, broken], { cwd });
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/Failures:\n {2}object-store OS-DELETE-IDEMPOTENT \(MUST, clause 5\.6\.2\)\n {4}DeleteObject of a key that never existed failed: NOT_FOUND\/OBJECT_NOT_FOUND/);
    expect(lastLine(failed.out)).toBe("2 passed, 1 failed, 0 skipped");
    await writeFile(join(cwd, "known.txt"), "OS-DELETE-IDEMPOTENT  # fixed in the next release\n");
    const known = await runCli(["conformance", "--config", "conf.yaml", "--run", "OS-DELETE*", "--known-failing", "known.txt", "--", process.execPath, broken], { cwd });
    expect(known.code).toBe(0);
    expect(lastLine(known.out)).toBe("2 passed, 0 failed, 1 skipped");
  }, 60_000);

  it("exits with 2 for usage and configuration errors and with 3 when the plugin cannot start", async () => {
    const cwd = await tempDir();
    const noConfig = await runCli(["conformance", "--", process.execPath, GOOD], { cwd });
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/^stowage: --config is required/);
    await writeFile(join(cwd, "bad.yaml"), "objectStore: { bucket: b, pageSize: 3 }\n");
    const bad = await runCli(["conformance", "--config", "bad.yaml", "--", process.execPath, GOOD], { cwd });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/objectStore has unknown keys \[pageSize\]; valid keys are \[plugin, config, bucket/);
    const kind = await runCli(["conformance", "--kind", "tape", "--config", "bad.yaml"], { cwd });
    expect(kind.code).toBe(2);
    await writeFile(join(cwd, "conf.yaml"), MEMORY_CONFIG);
    const dead = await runCli(["conformance", "--config", "conf.yaml", "--", process.execPath, "-e", "process.stderr.write('dying on purpose\\n'); process.exit(7)"], { cwd });
    expect(dead.code).toBe(3);
    // Printed once, in the kit's report: the CLI does not repeat it on stderr.
    expect(dead.out).toMatch(/^stowage conformance: the plugin could not be started: plugin .*: exited with status 7 before completing the handshake\nIts stderr said:\ndying on purpose\n$/);
    expect(dead.stderr).toBe("");
  }, 60_000);

  it("tests the embedded local plugin by name, with a temporary configuration, when --config is left out", async () => {
    const cwd = await tempDir();
    const result = await runCli(["conformance", "--plugin", "stowage.io/local", "--kind", "block-store", "--run", "BS-*", "--skip", "BS-SNAPSHOT-PROGRESS"], { cwd });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/block-store plugin stowage\.io\/local/);
    expect(result.out).toMatch(/^BS-VOLUME-FROM-SNAPSHOT\s+MUST\s+.*pass/m);
    expect(lastLine(result.out)).toMatch(/^\d+ passed, 0 failed, 2 skipped$/);
  }, 60_000);
});

describe("stowage new plugin", () => {
  it("scaffolds a package that builds with tsc and passes the conformance kit", async () => {
    const cwd = await tempDir();
    const created = await runCli(["new", "plugin", "example.com/scaffolded", "--dir", "plugin", "--sdk", `file:${join(WORKSPACE, "packages/sdk")}`], { cwd });
    expect(created.stderr).toBe("");
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/created stowage-plugin-scaffolded in .*plugin: the ObjectStore example\.com\/scaffolded/);
    const dir = join(cwd, "plugin");
    const manifest = JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(manifest.dependencies["@stowage/sdk"]).toBe(`file:${join(WORKSPACE, "packages/sdk")}`);
    // What `npm install` would do, without the network: link the SDK and the Node types.
    await mkdir(join(dir, "node_modules/@stowage"), { recursive: true });
    await mkdir(join(dir, "node_modules/@types"), { recursive: true });
    await symlink(join(WORKSPACE, "packages/sdk"), join(dir, "node_modules/@stowage/sdk"));
    await symlink(join(WORKSPACE, "node_modules/@types/node"), join(dir, "node_modules/@types/node"));
    const tsc = spawnSync(process.execPath, [join(WORKSPACE, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.status).toBe(0);
    expect(existsSync(join(dir, "dist/main.js"))).toBe(true);
    await writeFile(join(dir, "known-failing.txt"), SDK_KNOWN_FAILING);
    const scaffolded = await readFile(join(dir, "conformance.yaml"), "utf8");
    expect(scaffolded).toContain("largeObjectSize: 64MiB");
    const conf = scaffolded.replace("largeObjectSize: 64MiB", "largeObjectSize: 4MiB");
    await writeFile(join(dir, "conformance.yaml"), conf);
    const run = await runCli(["conformance", "--config", "conformance.yaml", "--known-failing", "known-failing.txt", "--", process.execPath, "dist/main.js"], { cwd: dir });
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/object-store plugin example\.com\/scaffolded/);
    expect(lastLine(run.out)).toMatch(/^\d+ passed, 0 failed, \d+ skipped$/);
    const refused = await runCli(["new", "plugin", "example.com/scaffolded", "--dir", "plugin"], { cwd });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/exists and is not empty/);
  }, 90_000);
});
