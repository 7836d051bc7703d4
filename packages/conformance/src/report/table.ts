/**
 * The readable report: a line per case as it finishes, then failures, leaks and the closing line.
 *
 * @packageDocumentation
 */
import type { ConformanceCase, CaseResult } from "../types.js";
import { summarize, summaryLine } from "./summary.js";

/** Column widths for a set of cases. */
export interface TableLayout {
  /** Width of the ID column. */
  readonly id: number;
  /** Width of the clause column. */
  readonly clause: number;
}

/** Layout fitting `cases`. */
export function tableLayout(cases: readonly ConformanceCase[]): TableLayout {
  return { id: Math.max(2, ...cases.map((c) => c.id.length)), clause: Math.min(24, Math.max(6, ...cases.map((c) => c.clause.length))) };
}

const STATUS: Record<CaseResult["status"], string> = { pass: "pass", fail: "FAIL", skip: "skip", xfail: "xfail", xpass: "XPASS" };

function duration(ms: number): string {
  if (ms === 0) return "";
  return ms < 1000 ? `${String(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text.padEnd(width) : `${text.slice(0, width - 1)}…`;
}

/** The heading line. */
export function tableHeader(layout: TableLayout): string {
  return `${"ID".padEnd(layout.id)}  LEVEL   ${"CLAUSE".padEnd(layout.clause)}  RESULT  TIME`;
}

/** One result's line. */
export function tableRow(layout: TableLayout, r: CaseResult): string {
  const level = r.status === "fail" && r.level === "SHOULD" ? "SHOULD" : r.level;
  const status = r.status === "fail" && r.level === "SHOULD" ? "warn" : STATUS[r.status];
  const detail = r.status === "skip" ? `  (${r.message ?? ""})` : "";
  return `${r.id.padEnd(layout.id)}  ${level.padEnd(6)}  ${clip(r.clause, layout.clause)}  ${status.padEnd(6)}  ${duration(r.durationMs)}${detail}`.trimEnd();
}

/** The lines after the table: failures with their messages, known failures, leaks, and the closing line. */
export function tableFooter(results: readonly CaseResult[], extra: readonly string[] = []): string[] {
  const lines: string[] = [];
  const failed = results.filter((r) => r.status === "fail" || r.status === "xpass");
  if (failed.length > 0) {
    lines.push("", "Failures:");
    for (const r of failed) {
      lines.push(`  ${r.kind} ${r.id} (${r.level}, clause ${r.clause})${r.status === "xpass" ? " — unexpected pass" : r.level === "SHOULD" ? " — a recommendation, does not fail the run" : ""}`);
      for (const line of (r.message ?? "").split("\n")) lines.push(`    ${line}`);
    }
  }
  const known = results.filter((r) => r.status === "xfail");
  if (known.length > 0) {
    lines.push("", `Known failures (listed in --known-failing, counted as skipped): ${known.map((r) => r.id).join(", ")}`);
  }
  const notes = results.filter((r) => r.notes.length > 0 && r.status !== "skip");
  if (notes.length > 0) {
    lines.push("", "Notes:");
    for (const r of notes) for (const n of r.notes) lines.push(`  ${r.id}: ${n}`);
  }
  const leaks = results.flatMap((r) => r.leaks.map((l) => `${r.id}: ${l}`));
  const allLeaks = [...leaks, ...extra];
  if (allLeaks.length > 0) {
    lines.push("", "Not cleaned up (remove by hand, or run again with --sweep):");
    for (const l of allLeaks) lines.push(`  ${l}`);
  }
  lines.push("", summaryLine(summarize(results)));
  return lines;
}
