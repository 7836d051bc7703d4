/**
 * `@stowage/conformance/vitest`: the kit inside a plugin author's own vitest file — one `describe`
 * per kind, one test per case, skipped (with the reason) when the plugin lacks a capability.
 *
 * ```ts
 * import { registerConformanceSuites } from "@stowage/conformance/vitest";
 *
 * registerConformanceSuites({
 *   plugin: { command: process.execPath, args: ["dist/main.js"] },
 *   config: { objectStore: { config: { buckets: "conformance" }, bucket: "conformance" } },
 * });
 * ```
 *
 * @packageDocumentation
 */
import type { PluginKind } from "@stowage/sdk";
import { afterAll, beforeAll, describe, it } from "vitest";
import { casesFor } from "./catalogue.js";
import { checkConfig, configuredKinds, loadConfigFile, type ConformanceConfig } from "./config.js";
import { CasePatterns } from "./patterns.js";
import { KindSession, Target, newRunId, type TargetOptions } from "./session.js";

/** Options of {@link registerConformanceSuites}. */
export interface ConformanceSuiteOptions extends TargetOptions {
  /** The configuration, the path of a YAML file, or a function producing it (called in `beforeAll`). */
  readonly config: ConformanceConfig | string | (() => ConformanceConfig | Promise<ConformanceConfig>);
  /** Kinds to register (default: the configured kinds when `config` is an object, else both). */
  readonly kind?: PluginKind | readonly PluginKind[] | undefined;
  /** Plugin name, overriding the configuration. */
  readonly pluginName?: string | undefined;
  /** Cases to leave out (patterns such as `OS-PUT-LARGE`). */
  readonly skip?: readonly string[] | undefined;
  /** Cases expected to fail (registered with `it.fails`). */
  readonly knownFailing?: readonly string[] | undefined;
  /** Fail the test of a SHOULD case too (default: a SHOULD failure only logs a warning). */
  readonly strict?: boolean | undefined;
  /** Extra time per test on top of the case's own limit, in ms (default 60 000). */
  readonly extraTimeoutMs?: number | undefined;
}

async function resolveConfig(config: ConformanceSuiteOptions["config"]): Promise<ConformanceConfig> {
  if (typeof config === "string") return loadConfigFile(config);
  if (typeof config === "function") return checkConfig(await config());
  return checkConfig(config);
}

/**
 * Registers the conformance suites in the calling test file. Options may be a function, called in
 * `beforeAll` (so a test can create directories or start servers first).
 */
export function registerConformanceSuites(options: ConformanceSuiteOptions | (() => ConformanceSuiteOptions | Promise<ConformanceSuiteOptions>), registration: { readonly kind?: PluginKind | readonly PluginKind[] } = {}): void {
  const eager = typeof options === "function" ? undefined : options;
  const kindOption = registration.kind ?? eager?.kind;
  const kinds: PluginKind[] =
    kindOption !== undefined
      ? typeof kindOption === "string"
        ? [kindOption]
        : [...(kindOption)]
      : eager !== undefined && typeof eager.config === "object"
        ? configuredKinds(eager.config)
        : ["object-store", "block-store"];
  const skip = new CasePatterns(eager?.skip ?? []);
  const known = new CasePatterns(eager?.knownFailing ?? []);
  const runId = newRunId();
  for (const kind of kinds) {
    describe(`stowage conformance: ${kind}`, () => {
      let target: Target | undefined;
      let session: KindSession | undefined;
      let resolved: ConformanceSuiteOptions | undefined;
      beforeAll(async () => {
        resolved = typeof options === "function" ? await options() : options;
        const config = await resolveConfig(resolved.config);
        target = await Target.open(resolved, config);
        session = KindSession.open(target, { kind, config, runId, pluginName: resolved.pluginName, knownFailing: known });
      }, 120_000);
      afterAll(async () => {
        try {
          const leaks = (await session?.close()) ?? [];
          if (leaks.length > 0) console.warn(`stowage conformance: not cleaned up:\n  ${leaks.join("\n  ")}`);
        } finally {
          await target?.close();
        }
      }, 120_000);
      for (const c of casesFor(kind)) {
        const name = `${c.id} ${c.title}`;
        if (skip.matches(c.id, kind)) {
          it.skip(name);
          continue;
        }
        const timeout = c.timeoutMs + (eager?.extraTimeoutMs ?? 60_000);
        const expectFailure = known.matches(c.id, kind);
        (expectFailure ? it.fails : it)(
          name,
          async (context) => {
            if (session === undefined) throw new Error("the conformance session did not open (see the beforeAll error)");
            const result = await session.runCase(c);
            for (const note of result.notes) await context.annotate(note);
            for (const leak of result.leaks) await context.annotate(`not cleaned up: ${leak}`, "warning");
            if (result.status === "skip") context.skip(result.message);
            if (result.status === "fail" || result.status === "xfail") {
              if (c.level === "SHOULD" && resolved?.strict !== true && result.status === "fail") {
                await context.annotate(`SHOULD (${c.clause}) not met: ${result.message ?? ""}`, "warning");
                return;
              }
              throw new Error(`${c.level} ${c.clause}: ${result.message ?? "failed"}`);
            }
          },
          timeout,
        );
      }
    });
  }
}
