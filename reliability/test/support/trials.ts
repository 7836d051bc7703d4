/**
 * What every fault trial shares: bounded run counts, a record of each trial's outcome (rendered
 * into docs/reliability.md by scripts/reliability-report.mjs), and readings of a process's open
 * descriptors and resident memory from /proc.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Where trial outcomes are appended, one JSON object per line. */
export const trialLog = join(repoRoot, "reports", "reliability.jsonl");

/**
 * How many times to run a trial: `base` times `STOWAGE_TRIAL_SCALE` (default 1, so CI stays
 * bounded; raise it for a longer soak), at least 1.
 */
export function runs(base: number): number {
  const scale = Number(process.env.STOWAGE_TRIAL_SCALE ?? "1");
  return Math.max(1, Math.round(base * (Number.isFinite(scale) && scale > 0 ? scale : 1)));
}

/** One trial's outcome. */
export interface TrialOutcome {
  /** Short name, for example "kill plugin-local mid-PUT". */
  readonly trial: string;
  /** How many times it ran. */
  readonly runs: number;
  /** The outcome in a few words, with the figures measured. */
  readonly result: string;
}

/** Appends a trial's outcome to {@link trialLog}. */
export function recordTrial(outcome: TrialOutcome): void {
  mkdirSync(dirname(trialLog), { recursive: true });
  appendFileSync(trialLog, `${JSON.stringify({ ...outcome, at: new Date().toISOString() })}\n`);
}

/** How many file descriptors a process holds open (the entries of /proc/<pid>/fd). */
export function openFileDescriptors(pid: number): number {
  return readdirSync(`/proc/${String(pid)}/fd`).length;
}

/** A process's resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${String(pid)}/status`, "utf8"));
  if (match?.[1] === undefined) throw new Error(`no VmRSS for pid ${String(pid)}`);
  return Number(match[1]) * 1024;
}
