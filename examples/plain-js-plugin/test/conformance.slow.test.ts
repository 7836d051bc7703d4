/**
 * The plain-JavaScript example certifies itself in the workspace: the conformance kit runs every
 * case against `node plugin.mjs` through the real host, the plugin loading the .proto files of the
 * workspace's @stowage/sdk (copied into packages/sdk/proto by `pnpm run build`). The packed-install
 * test (packaging/) certifies it again against the installed packages.
 */
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { runConformance, type ConformanceOutcome } from "@stowage/conformance";

const PLUGIN = fileURLToPath(new URL("../plugin.mjs", import.meta.url));

describe("the plain-JavaScript example plugin (node plugin.mjs)", () => {
  let outcome: ConformanceOutcome;
  let report = "";

  beforeAll(async () => {
    outcome = await runConformance({
      plugin: { command: process.execPath, args: [PLUGIN], label: "plain-js-plugin" },
      config: { largeObjectMiB: 16, objectStore: { config: { buckets: "conformance" }, bucket: "conformance" } },
      output: new Writable({
        write(chunk: Buffer, _encoding, done) {
          report += chunk.toString("utf8");
          done();
        },
      }),
    });
  }, 300_000);

  it("passes every case that applies, MUST and SHOULD, and leaves nothing behind", () => {
    const failed = outcome.results.filter((r) => r.status !== "pass" && r.status !== "skip");
    expect(failed.map((r) => `${r.id} (${r.level}): ${r.message ?? ""}`), report).toEqual([]);
    expect(outcome.exitCode, report).toBe(0);
    expect(outcome.errors).toEqual([]);
    expect(outcome.results.flatMap((r) => r.leaks)).toEqual([]);
    expect(outcome.leaks).toEqual([]);
  });

  it("skips only cases gated on a capability (signed URLs, direct transfer, object protection) or on its absence (ranged reads)", () => {
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
