/**
 * Case selection: `--run`, `--skip` and known-failing lists use glob patterns over case IDs.
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import type { PluginKind } from "@stowage/sdk";
import { ConfigError } from "./config.js";

/**
 * A compiled set of patterns. A pattern is a case ID in which `*` matches any run of characters
 * (`OS-LIST-*`, `*-CANCEL-*`); a pattern with a `/` is matched against `<kind>/<id>`
 * (`block-store/PROTO-*`). Matching ignores letter case.
 */
export class CasePatterns {
  readonly #patterns: readonly { readonly source: string; readonly regexp: RegExp }[];

  /** @param patterns - The patterns; empty ones are ignored. */
  constructor(patterns: readonly string[]) {
    this.#patterns = patterns
      .map((p) => p.trim())
      .filter((p) => p !== "")
      .map((source) => ({
        source,
        regexp: new RegExp(`^${source.split("*").map(escape).join(".*")}$`, "i"),
      }));
  }

  /** Splits comma-separated option values into patterns. */
  static fromOption(values: readonly string[] | string | undefined): CasePatterns {
    const list = values === undefined ? [] : typeof values === "string" ? [values] : values;
    return new CasePatterns(list.flatMap((v) => v.split(",")));
  }

  /** Whether there are no patterns at all. */
  get empty(): boolean {
    return this.#patterns.length === 0;
  }

  /** The patterns as given. */
  get sources(): string[] {
    return this.#patterns.map((p) => p.source);
  }

  /** Whether a case matches any pattern. */
  matches(id: string, kind: PluginKind): boolean {
    return this.#patterns.some((p) => p.regexp.test(p.source.includes("/") ? `${kind}/${id}` : id));
  }
}

function escape(text: string): string {
  return text.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Reads a known-failing file: one pattern per line; `#` starts a comment, blank lines are
 * ignored. Example:
 *
 * ```text
 * # the backend cannot refuse expired URLs before its 60 s clock-skew window
 * OS-SIGNED-GET-EXPIRY
 * ```
 */
export async function loadKnownFailing(path: string): Promise<CasePatterns> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the known-failing file ${path}: ${(error as Error).message}`);
  }
  return new CasePatterns(text.split(/\r?\n/).map((line) => line.replace(/#.*$/, "")));
}
