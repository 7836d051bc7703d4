/**
 * Test helpers: run the built `stowage` executable in a child process, and temporary directories
 * that are removed after each test.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach } from "vitest";

/** The built CLI. */
export const CLI = fileURLToPath(new URL("../../dist/main.js", import.meta.url));

/** What a finished CLI run produced. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** stdout as text. */
  readonly out: string;
}

/** Options of {@link runCli}. */
export interface RunOptions {
  /** Working directory (required: every test runs in its own temporary directory). */
  readonly cwd: string;
  /** Bytes written to stdin (stdin is closed afterwards either way). */
  readonly input?: Uint8Array | string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

function childEnv(extra: Readonly<Record<string, string>> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (extra?.STOWAGE_ROOT === undefined) delete env.STOWAGE_ROOT;
  return env;
}

/** Starts `node dist/main.js …args` and returns the child (for tests that talk to it while it runs). */
export function startCli(args: readonly string[], options: RunOptions): ChildProcessWithoutNullStreams {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first with "pnpm exec tsc -b packages/cli/tsconfig.build.json"`);
  return spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: childEnv(options.env), stdio: "pipe" });
}

/** Runs `node dist/main.js …args` to completion. */
export async function runCli(args: readonly string[], options: RunOptions): Promise<RunResult> {
  const child = startCli(args, options);
  const stdout: Buffer[] = [];
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  child.stdin.on("error", () => undefined);
  child.stdin.end(options.input);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (c, s) => resolve([c, s]));
  });
  const out = Buffer.concat(stdout);
  return { code, signal, stdout: out, stderr, out: out.toString("utf8") };
}

/** Runs the CLI, expects success, and parses its stdout as the one JSON document it printed. */
export async function runJson(args: readonly string[], options: RunOptions): Promise<unknown> {
  const result = await runCli(args, options);
  if (result.code !== 0) throw new Error(`stowage ${args.join(" ")} exited with ${String(result.code)}: ${result.stderr}`);
  return JSON.parse(result.out) as unknown;
}

const temps: string[] = [];

/** A fresh temporary directory, removed after the current test. */
export async function tempDir(prefix = "stowage-cli-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
