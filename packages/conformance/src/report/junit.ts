/**
 * JUnit XML: one test suite per plugin kind, one test case per conformance case, the way CI
 * systems display test results.
 *
 * @packageDocumentation
 */
import type { PluginKind } from "@stowage/sdk";
import type { CaseResult } from "../types.js";

function escape(text: string): string {
  return (
    text
      .replaceAll("&", "&amp;")
      .replaceAll("<", "&lt;")
      .replaceAll(">", "&gt;")
      .replaceAll('"', "&quot;")
      // XML 1.0 cannot carry most control characters at all.
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, "")
  );
}

/** What the report says about the plugin of each kind. */
export interface ReportedPlugin {
  /** Plugin name. */
  readonly name: string;
  /** Runtime the executable reported. */
  readonly runtime: string;
}

/** Renders results as a JUnit XML document. */
export function junitXml(results: readonly CaseResult[], plugins: Partial<Record<PluginKind, ReportedPlugin>>, runId: string): string {
  const kinds = [...new Set(results.map((r) => r.kind))];
  const suites = kinds.map((kind) => {
    const rs = results.filter((r) => r.kind === kind);
    const failures = rs.filter((r) => r.status === "fail" || r.status === "xpass").length;
    const skipped = rs.filter((r) => r.status === "skip" || r.status === "xfail").length;
    const time = rs.reduce((t, r) => t + r.durationMs, 0) / 1000;
    const plugin = plugins[kind];
    const cases = rs.map((r) => {
      const name = escape(`${r.id} ${r.title}`);
      const attrs = `name="${name}" classname="stowage.conformance.${kind}" time="${(r.durationMs / 1000).toFixed(3)}"`;
      const props = `<properties><property name="clause" value="${escape(r.clause)}"/><property name="level" value="${r.level}"/><property name="status" value="${r.status}"/></properties>`;
      const notes = [...r.notes, ...r.leaks.map((l) => `leak: ${l}`)];
      const out = notes.length === 0 ? "" : `<system-out>${escape(notes.join("\n"))}</system-out>`;
      let body = "";
      if (r.status === "fail" || r.status === "xpass") {
        const type = r.status === "xpass" ? "UnexpectedPass" : r.level === "SHOULD" ? "ShouldViolation" : "MustViolation";
        body = `<failure type="${type}" message="${escape(r.message ?? "")}">${escape(`${r.level} ${r.clause}: ${r.message ?? ""}`)}</failure>`;
      } else if (r.status === "skip" || r.status === "xfail") {
        body = `<skipped message="${escape(r.status === "xfail" ? `known failure: ${r.message ?? ""}` : (r.message ?? ""))}"/>`;
      }
      return `    <testcase ${attrs}>${props}${body}${out}</testcase>`;
    });
    const label = plugin === undefined ? kind : `${kind} ${plugin.name}`;
    return [
      `  <testsuite name="${escape(`stowage conformance: ${label}`)}" tests="${String(rs.length)}" failures="${String(failures)}" errors="0" skipped="${String(skipped)}" time="${time.toFixed(3)}">`,
      `    <properties><property name="run" value="${escape(runId)}"/><property name="runtime" value="${escape(plugin?.runtime ?? "")}"/></properties>`,
      ...cases,
      "  </testsuite>",
    ].join("\n");
  });
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="stowage conformance">\n${suites.join("\n")}\n</testsuites>\n`;
}
