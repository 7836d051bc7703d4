/** Runs the Go velero-harness (Velero's own plugin client) and reads its JSON report. */
import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdir, symlink } from "node:fs/promises";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { toolsDir } from "@stowage/test-servers";

/** The harness binary `scripts/install-velero-plugins` builds from interop/cmd/velero-harness. */
export const HARNESS = join(toolsDir(), "bin", "velero-interop-harness");
/** The Go velero-plugin-for-aws the same script installs (the baseline run). */
export const VELERO_AWS_PLUGIN = join(toolsDir(), "bin", "velero-plugin-for-aws");
/** Stowage's plugin executables, as `pnpm run build` leaves them. */
export const STOWAGE_AWS_MAIN = fileURLToPath(new URL("../../../packages/plugin-aws/dist/main.js", import.meta.url));
export const STOWAGE_LOCAL_MAIN = fileURLToPath(new URL("../../../packages/plugin-local/dist/main.js", import.meta.url));

/** Fails with the command that fixes it when an executable is missing. */
export async function requireExecutable(file: string, fix: string): Promise<void> {
  try {
    await access(file, constants.X_OK);
  } catch {
    throw new Error(`${file} is missing or not executable: ${fix}`);
  }
}

/** Checks for everything the harness runs need, with a message naming the fix. */
export async function requireHarness(): Promise<void> {
  await requireExecutable(HARNESS, "run `bash scripts/install-velero-plugins` (it builds interop/cmd/velero-harness; .ci/run and scripts/test do)");
  await requireExecutable(STOWAGE_AWS_MAIN, "run `pnpm run build`");
  await requireExecutable(STOWAGE_LOCAL_MAIN, "run `pnpm run build`");
}

/** One step of the harness report (see interop/cmd/velero-harness/report.go). */
export interface Step {
  readonly name: string;
  readonly plugin?: string;
  readonly kind?: string;
  readonly ok: boolean;
  readonly detail?: unknown;
  readonly error?: string;
}

/** The harness report. */
export interface Report {
  readonly ok: boolean;
  readonly veleroVersion: string;
  readonly pluginDir: string;
  readonly steps: readonly Step[];
}

/** What one harness run left behind. */
export interface HarnessRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The parsed report; undefined when stdout held none (usage errors). */
  readonly report: Report | undefined;
}

/**
 * Runs `velero-interop-harness run ARGS`. The directory of the Node running the tests goes first on
 * PATH, so the plugins' `#!/usr/bin/env -S node …` shebang finds the same Node 24.
 */
export async function runHarness(args: readonly string[], env: Record<string, string> = {}): Promise<HarnessRun> {
  const child = spawn(HARNESS, ["run", ...args], {
    env: { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  });
  let report: Report | undefined;
  if (stdout.trim() !== "") {
    try {
      report = JSON.parse(stdout) as Report;
    } catch {
      throw new Error(`the harness printed no JSON report (exit ${String(code)}); stdout: ${stdout.slice(0, 2000)}; stderr: ${stderr.slice(-4000)}`);
    }
  }
  return { code, stdout, stderr, report };
}

/** The report's steps for one plugin and kind, in order. */
export function stepsOf(report: Report, plugin: string, kind: "ObjectStore" | "VolumeSnapshotter"): Step[] {
  return report.steps.filter((s) => s.plugin === plugin && s.kind === kind);
}

/** The named step of a plugin; fails when absent. */
export function stepOf(report: Report, plugin: string, kind: "ObjectStore" | "VolumeSnapshotter", name: string): Step {
  const found = stepsOf(report, plugin, kind).find((s) => s.name === name);
  if (found === undefined) throw new Error(`the report has no step ${name} for ${kind} ${plugin}: ${JSON.stringify(report.steps.map((s) => s.name))}`);
  return found;
}

/** Failed steps, formatted for an assertion message. */
export function failures(report: Report): string[] {
  return report.steps.filter((s) => !s.ok).map((s) => `${s.kind ?? ""} ${s.plugin ?? ""} ${s.name}: ${s.error ?? ""}`);
}

/** A Velero plugin directory holding symlinks named `name` to each executable. */
export async function pluginDir(dir: string, executables: Record<string, string>): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const [name, target] of Object.entries(executables)) await symlink(target, join(dir, name));
  return dir;
}

/** Object store steps in the order the harness runs them. */
export const OBJECT_STORE_STEPS = [
  "get-object-store",
  "init",
  "put",
  "put-empty",
  "exists",
  "exists-missing",
  "get",
  "get-missing",
  "list-common-prefixes",
  "list-objects",
  "signed-url",
  "delete",
  "exists-after-delete",
  "list-after-delete",
] as const;

/** Volume snapshotter steps in the order the harness runs them. */
export const SNAPSHOTTER_STEPS = [
  "get-volume-snapshotter",
  "init",
  "get-volume-id",
  "get-volume-id-foreign",
  "set-volume-id",
  "get-volume-info",
  "create-snapshot",
  "create-volume-from-snapshot",
  "get-volume-info-restored",
  "delete-snapshot",
] as const;
