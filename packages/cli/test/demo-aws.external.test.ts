import { existsSync } from "node:fs";
import { join } from "node:path";
import { toolsDir } from "@stowage/test-servers";
import { describe, expect, it } from "vitest";
import { runCli, tempDir } from "./support/cli.js";

interface DemoReport {
  ok: boolean;
  sizeMiB: number;
  provider: string;
  endpoint?: string;
  dir: string;
  kept: boolean;
  plugin: { name: string; pid: number; runtime: string };
  steps: { name: string; ok: boolean; detail: string; seconds: number }[];
  figures: Record<string, number>;
  failedStep?: string;
  error?: string;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const minioInstalled = existsSync(join(toolsDir(), "bin", "minio"));

describe("stowage demo --provider aws", () => {
  it.skipIf(!minioInstalled)("runs the object steps through stowage.io/aws against a MinIO it starts and stops", async () => {
    const cwd = await tempDir();
    const result = await runCli(["demo", "--provider", "aws", "--size", "12", "--json"], { cwd });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out) as DemoReport;
    expect(report.ok).toBe(true);
    expect(report.provider).toBe("stowage.io/aws");
    expect(report.plugin.name).toBe("stowage.io/aws");
    expect(report.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const step of report.steps) expect(step, step.name).toMatchObject({ ok: true });
    const names = report.steps.map((s) => s.name);
    for (const word of ["start MinIO", "put", "list", "get", "head", "signed", "delete object", "stop plugin", "stop MinIO"]) {
      expect(names.join("\n")).toContain(word);
    }
    expect(names.join("\n")).not.toContain("snapshot");
    const minioStep = report.steps.find((s) => s.name === "start MinIO");
    const minioPid = Number(/in process (\d+)/.exec(minioStep?.detail ?? "")?.[1]);
    expect(minioPid).toBeGreaterThan(0);
    for (const key of ["putMiBps", "getMiBps", "signedGetMiBps"]) expect(report.figures[key], key).toBeGreaterThan(0);
    // No orphans: the plugin, MinIO and the temporary directory are all gone.
    expect(isRunning(report.plugin.pid)).toBe(false);
    expect(isRunning(minioPid)).toBe(false);
    expect(existsSync(report.dir)).toBe(false);
  }, 120_000);

  it("names the install command when MinIO is not installed", async () => {
    const cwd = await tempDir();
    const result = await runCli(["demo", "--provider", "stowage.io/aws", "--size", "1"], { cwd, env: { STOWAGE_TOOLS_DIR: join(cwd, "no-tools") } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('demo failed at "start MinIO"');
    expect(result.stderr).toContain("bash scripts/install-test-servers minio");
    expect(result.out).not.toContain("start plugin host");
  }, 30_000);

  it("rejects an unknown provider with exit status 2", async () => {
    const cwd = await tempDir();
    const result = await runCli(["demo", "--provider", "gcp"], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--provider gcp is not one of: local, stowage.io/local, aws, stowage.io/aws");
  }, 30_000);
});
