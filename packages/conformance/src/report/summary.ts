/**
 * Counting results and the closing line `N passed, N failed, N skipped`.
 *
 * @packageDocumentation
 */
import type { CaseResult } from "../types.js";

/** Counts of a run. */
export interface Summary {
  /** Cases that passed. */
  readonly passed: number;
  /** Cases that failed (MUST and SHOULD) plus known-failing cases that passed. */
  readonly failed: number;
  /** Cases not run, plus known-failing cases that failed as expected. */
  readonly skipped: number;
  /** Known-failing cases that failed as expected (counted in `skipped`). */
  readonly knownFailures: number;
  /** SHOULD-level failures (counted in `failed`, but they do not fail the run). */
  readonly shouldFailures: number;
}

/** Counts `results`. */
export function summarize(results: readonly CaseResult[]): Summary {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let knownFailures = 0;
  let shouldFailures = 0;
  for (const r of results) {
    if (r.status === "pass") passed++;
    else if (r.status === "fail" || r.status === "xpass") {
      failed++;
      if (r.status === "fail" && r.level === "SHOULD") shouldFailures++;
    } else {
      skipped++;
      if (r.status === "xfail") knownFailures++;
    }
  }
  return { passed, failed, skipped, knownFailures, shouldFailures };
}

/** The closing line: exactly `N passed, N failed, N skipped`. */
export function summaryLine(summary: Summary): string {
  return `${String(summary.passed)} passed, ${String(summary.failed)} failed, ${String(summary.skipped)} skipped`;
}
