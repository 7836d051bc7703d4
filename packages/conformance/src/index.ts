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
export { runConformance, ExitCode } from "./runner.js";
export type { RunConformanceOptions, ConformanceOutcome } from "./runner.js";
export { sweep } from "./sweep.js";
export type { SweepOptions, SweepOutcome } from "./sweep.js";
export { CASES, casesFor } from "./catalogue.js";
export { ConfigError, loadConfigFile, parseConfig, conformanceJsonSchema } from "./config.js";
export type { ConformanceConfig, ObjectStoreConfig, BlockStoreConfig, PersistentVolumeTemplate } from "./config.js";
export { CasePatterns, loadKnownFailing } from "./patterns.js";
export type { ConformanceCase, CaseResult, CaseStatus, Level, Requirement } from "./types.js";
export type { Summary } from "./report/summary.js";
export type { ReportedPlugin } from "./report/junit.js";
