import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, tempDir } from "./support/cli.js";

interface DemoReport {
  ok: boolean;
  sizeMiB: number;
  volumeMiB: number;
  dir: string;
  kept: boolean;
  plugin: { name: string; pid: number; runtime: string };
  steps: { name: string; ok: boolean; detail: string; seconds: number }[];
  figures: { putMiBps: number; getMiBps: number; signedGetMiBps: number; snapshotSeconds: number; totalSeconds: number };
  failedStep?: string;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("stowage demo", () => {
  it("passes every step with --size 8 --json, reports figures and leaves nothing behind", async () => {
    const cwd = await tempDir();
    const result = await runCli(["demo", "--size", "8", "--json"], { cwd });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const report = JSON.parse(result.out) as DemoReport;
    expect(report.ok).toBe(true);
    expect(report.failedStep).toBeUndefined();
    expect(report.sizeMiB).toBe(8);
    expect(report.plugin.name).toBe("stowage.io/local");
    expect(report.steps.length).toBeGreaterThanOrEqual(10);
    for (const step of report.steps) expect(step, step.name).toMatchObject({ ok: true });
    const names = report.steps.map((s) => s.name).join("\n");
    for (const word of ["put", "list", "get", "head", "signed", "delete", "snapshot", "restore", "restored bytes match", "volume info", "stop plugin"]) {
      expect(names).toContain(word);
    }
    for (const value of Object.values(report.figures)) expect(value).toBeGreaterThan(0);
    expect(report.figures.totalSeconds).toBeGreaterThanOrEqual(report.figures.snapshotSeconds);
    // The temporary data directory is gone, and so is the plugin process.
    expect(report.kept).toBe(false);
    expect(existsSync(report.dir)).toBe(false);
    expect(isRunning(report.plugin.pid)).toBe(false);
  }, 60_000);

  it("prints a step-by-step text report and keeps --dir", async () => {
    const cwd = await tempDir();
    const dir = join(cwd, "demo-data");
    const result = await runCli(["demo", "--size", "2", "--dir", dir], { cwd });
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/✓ put 2 MiB object/);
    expect(result.out).toMatch(/✓ restored bytes match original/);
    expect(result.out).toMatch(/PUT\s+[\d.]+ MiB\/s/);
    expect(result.out).toMatch(/signed-URL GET\s+[\d.]+ MiB\/s/);
    expect(result.out).toMatch(/✓ all \d+ steps passed/);
    expect(result.out).not.toContain("✗");
    expect(existsSync(join(dir, "objects"))).toBe(true);
    expect(existsSync(join(dir, "blocks"))).toBe(true);
  }, 60_000);

  it("rejects bad options with exit status 2", async () => {
    const cwd = await tempDir();
    const size = await runCli(["demo", "--size", "zero"], { cwd });
    expect(size.code).toBe(2);
    expect(size.stderr).toBe('stowage: --size expects a size (e.g. 256MiB, 1GiB; a bare number is MiB), got "zero"\n');
    const file = join(cwd, "a-file");
    await writeFile(file, "x");
    const dir = await runCli(["demo", "--dir", file], { cwd });
    expect(dir.code).toBe(2);
    expect(dir.stderr).toContain("is not a directory");
  }, 30_000);
});
