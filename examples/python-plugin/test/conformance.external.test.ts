/**
 * The Python example certifies itself: its message code is generated from the repository's protos
 * with grpcio-tools (into the git-ignored gen/), then the conformance kit runs every case against
 * `python3 plugin.py` through the real host. The Python comes from the venv that
 * `scripts/install-python-tools` builds (scripts/test and .ci/run call it).
 */
import { execFile } from "node:child_process";
import { access, constants, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { runConformance, type ConformanceOutcome } from "@stowage/conformance";

const HERE = fileURLToPath(new URL("..", import.meta.url));
const PYTHON = fileURLToPath(new URL("../../../.tools/python-example-venv/bin/python3", import.meta.url));
const GEN = `${HERE}gen`;
const run = promisify(execFile);

describe("the Python example plugin (python3 plugin.py)", () => {
  let outcome: ConformanceOutcome;
  let report = "";

  beforeAll(async () => {
    try {
      await access(PYTHON, constants.X_OK);
    } catch {
      throw new Error(`${PYTHON} is missing: run \`bash scripts/install-python-tools\` (a venv with the pins of examples/python-plugin/requirements.txt)`);
    }
    await rm(GEN, { recursive: true, force: true });
    await run(PYTHON, ["generate.py", GEN], { cwd: HERE });
    outcome = await runConformance({
      plugin: { command: PYTHON, args: [`${HERE}plugin.py`], label: "python-plugin" },
      config: { largeObjectMiB: 16, objectStore: { config: { buckets: "conformance" }, bucket: "conformance" } },
      output: new Writable({
        write(chunk: Buffer, _encoding, done) {
          report += chunk.toString("utf8");
          done();
        },
      }),
    });
  }, 300_000);

  it("generates the go-plugin services as the package goplugin, so that plugin.py shadows nothing", async () => {
    expect((await readdir(GEN)).sort()).toEqual(["goplugin", "stowage"]);
  });

  it("would fail with go-plugin's protos generated as the package plugin: a script plugin.py shadows it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "stowage-python-shadow-"));
    try {
      const protos = fileURLToPath(new URL("../../../third_party/proto", import.meta.url));
      const gen = join(dir, "gen");
      await mkdir(gen);
      await run(PYTHON, ["-m", "grpc_tools.protoc", `-I${protos}`, `--python_out=${gen}`, `--grpc_python_out=${gen}`, "plugin/grpc_controller.proto"]);
      await writeFile(join(dir, "plugin.py"), 'import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))\nfrom plugin import grpc_controller_pb2\n');
      const failure = await run(PYTHON, [join(dir, "plugin.py")]).then(() => undefined, (error: unknown) => error as { stderr: string });
      expect(failure?.stderr).toMatch(/ImportError: cannot import name 'grpc_controller_pb2' from partially initialized module 'plugin'/u);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("passes every case that applies, MUST and SHOULD, and leaves nothing behind", () => {
    const failed = outcome.results.filter((r) => r.status !== "pass" && r.status !== "skip");
    expect(failed.map((r) => `${r.id} (${r.level}): ${r.message ?? ""}`), report).toEqual([]);
    expect(outcome.exitCode, report).toBe(0);
    expect(outcome.errors).toEqual([]);
    expect(outcome.results.flatMap((r) => r.leaks)).toEqual([]);
    expect(outcome.leaks).toEqual([]);
  });

  it("skips only cases gated on a capability (signed URLs, direct transfer, object protection) or on its absence (ranged reads, metadata)", () => {
    const skipped = outcome.results.filter((r) => r.status === "skip");
    for (const r of skipped) expect(r.message, r.id).toMatch(/^(the plugin does not announce|applies only to plugins without) /);
    expect(skipped.map((r) => r.id).sort()).toEqual([
      "OS-DIRECT-GET",
      "OS-DIRECT-GET-ERRORS",
      "OS-DIRECT-GET-PINNED",
      "OS-DIRECT-PART-CHECKSUM",
      "OS-DIRECT-PUT",
      "OS-DIRECT-PUT-INVALID",
      "OS-DIRECT-PUT-MISMATCH",
      "OS-DIRECT-PUT-MISSING-PART",
      "OS-DIRECT-RPCS",
      "OS-DIRECT-UPLOAD-FINISHED",
      "OS-DIRECT-UPLOAD-ID",
      "OS-LOCK-BUCKET",
      "OS-LOCK-COMPLIANCE",
      "OS-LOCK-DELETE",
      "OS-LOCK-DIRECT-PUT",
      "OS-LOCK-EXPIRY",
      "OS-LOCK-EXTEND",
      "OS-LOCK-GOVERNANCE-BYPASS",
      "OS-LOCK-HOLD",
      "OS-LOCK-INVALID",
      "OS-LOCK-NOT-LOCKABLE",
      "OS-LOCK-OVERWRITE",
      "OS-LOCK-PUT-HEAD",
      "OS-RANGE-UNSUPPORTED",
      "OS-SIGNED-GET",
      "OS-SIGNED-GET-EXPIRY",
      "OS-SIGNED-GET-MISSING-KEY",
      "OS-SIGNED-PUT",
      "OS-SIGNED-PUT-EXPIRY",
      "OS-SIGNED-TTL-INVALID",
    ]);
  });
});
