/**
 * The case catalogue cannot drift: docs/conformance.md carries exactly the table the code
 * generates (run with STOWAGE_UPDATE_DOCS=1 to rewrite it), and every clause a case cites exists.
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CASES } from "../src/index.js";
import { catalogueMarkdown } from "../src/catalogue.js";

const DOC = fileURLToPath(new URL("../../../docs/conformance.md", import.meta.url));
const CONTRACT = fileURLToPath(new URL("../../../docs/contract.md", import.meta.url));
const PROTOCOL = fileURLToPath(new URL("../../../docs/protocol.md", import.meta.url));
const START = "<!-- catalogue:start (generated from packages/conformance; STOWAGE_UPDATE_DOCS=1 pnpm exec vitest run --project conformance catalogue) -->";
const END = "<!-- catalogue:end -->";

describe("the case catalogue", () => {
  it("has stable, well-formed, unique IDs", () => {
    const ids = CASES.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const c of CASES) {
      expect(c.id).toMatch(/^(PROTO|OS|BS)(-[A-Z0-9]+)+$/);
      expect(c.title.length).toBeGreaterThan(10);
      expect(c.timeoutMs).toBeGreaterThan(0);
      expect(c.kinds.length).toBeGreaterThan(0);
    }
  });

  it("cites only clauses that exist in docs/contract.md and docs/protocol.md", async () => {
    const contract = await readFile(CONTRACT, "utf8");
    const protocol = await readFile(PROTOCOL, "utf8");
    for (const c of CASES) {
      for (const part of c.clause.split(",").map((p) => p.trim())) {
        const section = /^protocol\.md §(\d+(?:\.\d+)?)$/.exec(part);
        if (section !== null) {
          expect(protocol, `${c.id} cites ${part}`).toMatch(new RegExp(`^#{2,3} ${(section[1] ?? "").replace(".", "\\.")}\\.? `, "m"));
          continue;
        }
        for (const clause of part.split("–")) {
          const escaped = clause.replaceAll(".", "\\.");
          const found = new RegExp(`\\*\\*${escaped}\\*\\*|^#{2,3} ${escaped}\\.? `, "m").test(contract);
          expect(found, `${c.id} cites clause ${clause}, which docs/contract.md does not define`).toBe(true);
        }
      }
    }
  });

  it("is the table in docs/conformance.md", async () => {
    const doc = await readFile(DOC, "utf8");
    const table = catalogueMarkdown();
    const start = doc.indexOf(START);
    const end = doc.indexOf(END);
    expect(start, `docs/conformance.md lacks the marker ${START}`).toBeGreaterThanOrEqual(0);
    const current = doc.slice(start + START.length, end).trim();
    if (current !== table && process.env.STOWAGE_UPDATE_DOCS === "1") {
      await writeFile(DOC, `${doc.slice(0, start + START.length)}\n${table}\n${doc.slice(end)}`);
      return;
    }
    expect(current, "the catalogue in docs/conformance.md is stale: rerun with STOWAGE_UPDATE_DOCS=1").toBe(table);
  });
});
