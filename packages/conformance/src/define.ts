/**
 * Declaring cases: defaults for the optional fields, and the error a case throws when a
 * prerequisite it needs is missing.
 *
 * @packageDocumentation
 */
import type { Capability, PluginKind } from "@stowage/sdk";
import { CaseFailure } from "./harness/expect.js";
import type { CaseContext, ConformanceCase, Level, Requirement } from "./types.js";

/** What {@link defineCase} needs; everything else has a default. */
export interface CaseSpec {
  /** Stable ID. */
  readonly id: string;
  /** One-line title. */
  readonly title: string;
  /** Contract clause(s). */
  readonly clause: string;
  /** Default MUST. */
  readonly level?: Level | undefined;
  /** Kinds. */
  readonly kinds: readonly PluginKind[];
  /** Capabilities required (default none). */
  readonly capabilities?: readonly Capability[] | undefined;
  /** Capabilities that must be absent (default none). */
  readonly withoutCapabilities?: readonly Capability[] | undefined;
  /** Prerequisites (default `["init"]`). */
  readonly requires?: readonly Requirement[] | undefined;
  /** Time limit (default 30 s). */
  readonly timeoutMs?: number | undefined;
  /** The check. */
  run(context: CaseContext): Promise<void>;
}

/** A case from a spec, with defaults filled in. */
export function defineCase(spec: CaseSpec): ConformanceCase {
  return {
    id: spec.id,
    title: spec.title,
    clause: spec.clause,
    level: spec.level ?? "MUST",
    kinds: spec.kinds,
    capabilities: spec.capabilities ?? [],
    withoutCapabilities: spec.withoutCapabilities ?? [],
    requires: spec.requires ?? ["init"],
    timeoutMs: spec.timeoutMs ?? 30_000,
    run: (context) => spec.run(context),
  };
}

/**
 * Thrown by a case that cannot run because something it depends on is missing (a setting, a
 * capability the plugin lacks, a shared fixture that failed): the case is reported as skipped
 * with this message.
 */
export class CaseSkipped extends Error {
  /** @param message - Why the case did not run. */
  constructor(message: string) {
    super(message);
    this.name = "CaseSkipped";
  }
}

/**
 * A failure caused by the kit's configuration rather than the plugin (an Init configuration the
 * plugin refuses, a bucket or volume that does not exist): the run ends with exit status 2.
 */
export class ConfigProblem extends CaseFailure {
  /** @param message - What to fix in the configuration. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigProblem";
  }
}
