/**
 * `runConformance`: the kit's library entry. Launches (or uses) a host, runs the selected cases of
 * each kind, writes the reports and computes the exit status.
 *
 * @packageDocumentation
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Writable } from "node:stream";
import type { PluginKind } from "@stowage/sdk";
import { casesFor, initCaseId } from "./catalogue.js";
import { checkConfig, ConfigError, configuredKinds, loadConfigFile, type ConformanceConfig } from "./config.js";
import { CasePatterns } from "./patterns.js";
import { junitXml, type ReportedPlugin } from "./report/junit.js";
import { summarize, summaryLine, type Summary } from "./report/summary.js";
import { tableFooter, tableHeader, tableLayout, tableRow } from "./report/table.js";
import { KindSession, newRunId, PluginStartError, Target, type TargetOptions } from "./session.js";
import { failsRun, type CaseResult } from "./types.js";

/** Exit statuses of a run. */
export const ExitCode = {
  /** Every MUST case passed (SHOULD failures and known failures allowed). */
  Passed: 0,
  /** A MUST case failed, or a known-failing case passed. */
  Failed: 1,
  /** A usage or configuration error. */
  Usage: 2,
  /** The plugin could not be started. */
  PluginStart: 3,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Options of {@link runConformance}. */
export interface RunConformanceOptions extends TargetOptions {
  /** The configuration, or the path of a YAML file. */
  readonly config: ConformanceConfig | string;
  /** Kinds to test (default: every kind the configuration has a section for). */
  readonly kind?: PluginKind | readonly PluginKind[] | undefined;
  /** Plugin name, overriding the configuration's `plugin` for every kind. */
  readonly pluginName?: string | undefined;
  /** Run only cases matching these patterns (`OS-LIST-*`; comma-separated values are split). */
  readonly run?: string | readonly string[] | undefined;
  /** Leave out cases matching these patterns. */
  readonly skip?: string | readonly string[] | undefined;
  /** Cases expected to fail: patterns, or {@link CasePatterns} from `loadKnownFailing`. */
  readonly knownFailing?: readonly string[] | CasePatterns | undefined;
  /** Write `results.jsonl` and `junit.xml` here. */
  readonly reportDir?: string | undefined;
  /** Also fail the run on SHOULD failures. */
  readonly strict?: boolean | undefined;
  /** The run ID (default: time and random digits). */
  readonly runId?: string | undefined;
  /** Where the readable report goes as the run proceeds (default: nowhere). */
  readonly output?: Writable | undefined;
  /** Called with each result as it arrives. */
  readonly onResult?: ((result: CaseResult) => void) | undefined;
  /** Interrupts the run; cases stop and resources are still removed. */
  readonly signal?: AbortSignal | undefined;
}

/** What a run produced. */
export interface ConformanceOutcome {
  /** The run ID. */
  readonly runId: string;
  /** Every result, in the order the cases ran. */
  readonly results: readonly CaseResult[];
  /** Counts. */
  readonly summary: Summary;
  /** `N passed, N failed, N skipped`. */
  readonly summaryLine: string;
  /** The exit status a command line tool ends with. */
  readonly exitCode: ExitCode;
  /** The plugin tested for each kind. */
  readonly plugins: Partial<Record<PluginKind, ReportedPlugin>>;
  /** Usage, configuration and start-up errors (exit statuses 2 and 3). */
  readonly errors: readonly string[];
  /** Resources shared by the run that could not be removed. */
  readonly leaks: readonly string[];
}

function write(output: Writable | undefined, lines: string | readonly string[]): void {
  if (output === undefined) return;
  output.write(`${(typeof lines === "string" ? [lines] : lines).join("\n")}\n`);
}

/** Lines of `results.jsonl`: one JSON object per result. */
export function resultsJsonLines(results: readonly CaseResult[], plugins: Partial<Record<PluginKind, ReportedPlugin>>, runId: string): string {
  return results.map((r) => JSON.stringify({ run: runId, plugin: plugins[r.kind]?.name, runtime: plugins[r.kind]?.runtime, ...r })).join("\n") + (results.length > 0 ? "\n" : "");
}

async function writeReports(dir: string, results: readonly CaseResult[], plugins: Partial<Record<PluginKind, ReportedPlugin>>, runId: string): Promise<void> {
  const path = resolve(dir);
  await mkdir(path, { recursive: true });
  await writeFile(join(path, "results.jsonl"), resultsJsonLines(results, plugins, runId));
  await writeFile(join(path, "junit.xml"), junitXml(results, plugins, runId));
}

function outcome(fields: Omit<ConformanceOutcome, "summary" | "summaryLine">): ConformanceOutcome {
  const summary = summarize(fields.results);
  return { ...fields, summary, summaryLine: summaryLine(summary) };
}

/**
 * Runs the conformance kit. Never throws for problems of the plugin or the configuration: they
 * are in the outcome's `errors` and `exitCode` (2: usage or configuration, 3: the plugin could
 * not start).
 *
 * @example
 * ```ts
 * const outcome = await runConformance({
 *   plugin: { command: process.execPath, args: ["dist/main.js"] },
 *   config: { objectStore: { config: { root: "/tmp/objects", createBuckets: "true" }, bucket: "conformance" } },
 *   output: process.stdout,
 * });
 * process.exitCode = outcome.exitCode;
 * ```
 */
export async function runConformance(options: RunConformanceOptions): Promise<ConformanceOutcome> {
  const runId = options.runId ?? newRunId();
  const results: CaseResult[] = [];
  const plugins: Partial<Record<PluginKind, ReportedPlugin>> = {};
  const leaks: string[] = [];
  const output = options.output;
  let config: ConformanceConfig;
  try {
    config = typeof options.config === "string" ? await loadConfigFile(options.config) : checkConfig(options.config);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    write(output, `stowage conformance: ${message}`);
    return outcome({ runId, results, exitCode: ExitCode.Usage, plugins, errors: [message], leaks });
  }
  const kinds = options.kind === undefined ? configuredKinds(config) : typeof options.kind === "string" ? [options.kind] : [...(options.kind)];
  if (kinds.length === 0) {
    const message = "the configuration has neither an objectStore nor a blockStore section: nothing to test";
    write(output, `stowage conformance: ${message}`);
    return outcome({ runId, results, exitCode: ExitCode.Usage, plugins, errors: [message], leaks });
  }
  const runPatterns = CasePatterns.fromOption(options.run);
  const skipPatterns = CasePatterns.fromOption(options.skip);
  const knownFailing = options.knownFailing instanceof CasePatterns ? options.knownFailing : new CasePatterns(options.knownFailing ?? []);
  let target: Target;
  try {
    target = await Target.open(options, config);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    write(output, `stowage conformance: ${error instanceof PluginStartError ? "the plugin could not be started: " : ""}${message}`);
    return outcome({ runId, results, exitCode: error instanceof PluginStartError ? ExitCode.PluginStart : ExitCode.Usage, plugins, errors: [message], leaks });
  }
  const errors: string[] = [];
  let configProblem = false;
  const interrupted = (): boolean => options.signal?.aborted === true;
  try {
    for (const kind of kinds) {
      if (interrupted()) break;
      let session: KindSession;
      try {
        session = KindSession.open(target, { kind, config, runId, pluginName: options.pluginName, knownFailing, signal: options.signal });
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        errors.push(error.message);
        write(output, `stowage conformance: ${error.message}`);
        configProblem = true;
        continue;
      }
      plugins[kind] = { name: session.descriptor.name, runtime: session.runtime };
      const selected = casesFor(kind).filter((c) => (runPatterns.empty || runPatterns.matches(c.id, kind)) && !skipPatterns.matches(c.id, kind));
      const initId = initCaseId(kind);
      const needsInit = selected.some((c) => c.requires.includes("init") && session.skipReason(c) === undefined);
      const initCase = casesFor(kind).find((c) => c.id === initId);
      const ordered = needsInit && initCase !== undefined && !selected.includes(initCase) ? [initCase, ...selected] : selected;
      const layout = tableLayout(ordered);
      write(output, ["", `stowage conformance: ${kind} plugin ${session.descriptor.name} (${session.runtime}), run ${runId}`, "", tableHeader(layout)]);
      try {
        for (const c of ordered) {
          if (interrupted()) break;
          const result = await session.runCase(c);
          results.push(result);
          options.onResult?.(result);
          write(output, tableRow(layout, result));
        }
      } finally {
        leaks.push(...(await session.close()));
      }
      if (session.configProblems.length > 0) {
        configProblem = true;
        errors.push(...session.configProblems);
      }
    }
  } finally {
    await target.close();
  }
  if (options.reportDir !== undefined) {
    try {
      await writeReports(options.reportDir, results, plugins, runId);
    } catch (error) {
      errors.push(`could not write the reports to ${options.reportDir}: ${(error as Error).message}`);
      configProblem = true;
    }
  }
  const failing = results.some((r) => failsRun(r, options.strict ?? false));
  const exitCode = configProblem ? ExitCode.Usage : failing ? ExitCode.Failed : ExitCode.Passed;
  if (configProblem && errors.length > 0) write(output, ["", ...errors.map((e) => `configuration problem: ${e}`)]);
  write(output, tableFooter(results, leaks));
  return outcome({ runId, results, exitCode, plugins, errors, leaks });
}

