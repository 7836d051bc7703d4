/**
 * The Python example certifies itself: its message code is generated from the repository's protos
 * with grpcio-tools (into the git-ignored gen/), then the conformance kit runs every case against
 * `python3 plugin.py` through the real host. The Python comes from the venv that
 * `scripts/install-python-tools` builds (scripts/test and .ci/run call it).
 */
import { execFile } from "node:child_process";
import { access, constants, readdir, rm } from "node:fs/promises";
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

  it("passes every case that applies, MUST and SHOULD, and leaves nothing behind", () => {
    const failed = outcome.results.filter((r) => r.status !== "pass" && r.status !== "skip");
    expect(failed.map((r) => `${r.id} (${r.level}): ${r.message ?? ""}`), report).toEqual([]);
    expect(outcome.exitCode, report).toBe(0);
    expect(outcome.errors).toEqual([]);
    expect(outcome.results.flatMap((r) => r.leaks)).toEqual([]);
    expect(outcome.leaks).toEqual([]);
  });

  it("skips only cases gated on a capability (signed URLs) or on its absence (ranged reads, metadata)", () => {
    const skipped = outcome.results.filter((r) => r.status === "skip");
    for (const r of skipped) expect(r.message, r.id).toMatch(/^(the plugin does not announce|applies only to plugins without) /);
    expect(skipped.map((r) => r.id).sort()).toEqual(["OS-RANGE-UNSUPPORTED", "OS-SIGNED-GET", "OS-SIGNED-GET-EXPIRY", "OS-SIGNED-GET-MISSING-KEY", "OS-SIGNED-PUT", "OS-SIGNED-PUT-EXPIRY", "OS-SIGNED-TTL-INVALID"]);
  });
});
