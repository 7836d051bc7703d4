/**
 * The case catalogue: every case of the kit, in a stable order, and its rendering as the
 * Markdown table of `docs/conformance.md`.
 *
 * @packageDocumentation
 */
import type { PluginKind } from "@stowage/sdk";
import { blockStoreCases } from "./cases/block-store.js";
import { objectStoreCases } from "./cases/object-store.js";
import { protocolCases } from "./cases/protocol.js";
import type { ConformanceCase } from "./types.js";

/** Every case: protocol cases first, then object-store, then block-store. */
export const CASES: readonly ConformanceCase[] = (() => {
  const all = [...protocolCases, ...objectStoreCases.filter((c) => c.id.startsWith("PROTO-")), ...objectStoreCases.filter((c) => !c.id.startsWith("PROTO-")), ...blockStoreCases];
  const seen = new Set<string>();
  for (const c of all) {
    if (seen.has(c.id)) throw new Error(`duplicate conformance case ID ${c.id}`);
    seen.add(c.id);
  }
  return all;
})();

/** The cases that apply to a kind, in catalogue order. */
export function casesFor(kind: PluginKind): ConformanceCase[] {
  return CASES.filter((c) => c.kinds.includes(kind));
}

/** The case that initialises a kind's plugin; every case that `requires: ["init"]` depends on it. */
export function initCaseId(kind: PluginKind): string {
  return kind === "object-store" ? "OS-INIT" : "BS-INIT";
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/**
 * The catalogue as a Markdown table: ID, kinds, clause, level, the capabilities needed (or that
 * must be absent, marked "not"), and the title.
 */
export function catalogueMarkdown(cases: readonly ConformanceCase[] = CASES): string {
  const rows = cases.map((c) => {
    const kinds = c.kinds.length === 2 ? "both" : c.kinds[0] === "object-store" ? "object" : "block";
    const caps = [...c.capabilities, ...c.withoutCapabilities.map((cap) => `not ${cap}`)].join(", ") || "—";
    return `| \`${c.id}\` | ${kinds} | ${cell(c.clause)} | ${c.level} | ${cell(caps)} | ${cell(c.title)} |`;
  });
  return ["| ID | Kind | Clause | Level | Capability | Checks |", "|---|---|---|---|---|---|", ...rows].join("\n");
}
