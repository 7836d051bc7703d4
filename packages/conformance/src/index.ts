/**
 * `@stowage/conformance`: checks, clause by clause, that a storage plugin honours the Stowage
 * contract (`docs/contract.md`), launching it through the real plugin host.
 *
 * - {@link runConformance}: run the kit from a program (what `stowage conformance` does).
 * - `registerConformanceSuites` from `@stowage/conformance/vitest`: run it inside your own tests.
 * - {@link CASES}: the case catalogue (ID, clause, level, capabilities).
 *
 * @packageDocumentation
 */
export { runConformance, resultsJsonLines, ExitCode } from "./runner.js";
export type { RunConformanceOptions, ConformanceOutcome } from "./runner.js";
export { sweep } from "./sweep.js";
export type { SweepOptions, SweepOutcome } from "./sweep.js";
export { CASES, casesFor, initCaseId, catalogueMarkdown } from "./catalogue.js";
export { ConfigError, loadConfigFile, parseConfig, checkConfig, configuredKinds, resolveObjectStoreSettings, resolveBlockStoreSettings, conformanceJsonSchema } from "./config.js";
export type {
  ConformanceConfig,
  ObjectStoreConfig,
  BlockStoreConfig,
  PersistentVolumeTemplate,
  ObjectStoreSettings,
  BlockStoreSettings,
  ResolveOptions,
} from "./config.js";
export { CasePatterns, loadKnownFailing } from "./patterns.js";
export { KindSession, Target, PluginStartError, newRunId, runPrefix, SWEEP_PREFIX, CONFORMANCE_TAG, RUN_TAG } from "./session.js";
export type { TargetOptions, SessionOptions } from "./session.js";
export { ResourceTracker } from "./tracker.js";
export type { CleanupFailure } from "./tracker.js";
export { defineCase, CaseSkipped, ConfigProblem } from "./define.js";
export type { CaseSpec } from "./define.js";
export { CaseFailure, check, expectError, expectOk } from "./harness/expect.js";
export type { ExpectedError } from "./harness/expect.js";
export { summarize, summaryLine } from "./report/summary.js";
export type { Summary } from "./report/summary.js";
export { junitXml } from "./report/junit.js";
export type { ReportedPlugin } from "./report/junit.js";
export { failsRun } from "./types.js";
export type { ConformanceCase, CaseContext, CaseResult, CaseStatus, Level, PluginAccess, Requirement } from "./types.js";
