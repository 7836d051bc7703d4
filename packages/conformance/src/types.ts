/**
 * The vocabulary of the kit: cases, the context a case runs in, and results.
 *
 * @packageDocumentation
 */
import type { BlockStore, Capability, ObjectStore, PluginDescriptor, PluginKind } from "@stowage/sdk";
import type { PluginCommand } from "@stowage/sdk/host";
import type { BlockStoreSettings, ObjectStoreSettings } from "./config.js";
import type { ResourceTracker } from "./tracker.js";

/** How binding a case is: a MUST failure fails the run, a SHOULD failure is a warning. */
export type Level = "MUST" | "SHOULD";

/**
 * What a case needs besides capabilities:
 *
 * - `init`: the plugin under test initialised with the configured settings (the `*-INIT` case
 *   passed). Cases without it run even when Init failed.
 * - `command`: the plugin's command line, to launch it outside the host (protocol cases). A run
 *   against a caller's host without a command skips them.
 * - `lockBucket`: `objectStore.lockBucket`, a bucket where objects can be protected (the `OS-LOCK-*`
 *   cases). Without it they are skipped, and the report says why: a plugin that announces
 *   OBJECT_LOCK is then not shown to honour it.
 */
export type Requirement = "init" | "command" | "lockBucket";

/** One conformance case. */
export interface ConformanceCase {
  /** Stable identifier, for example `OS-PUT-EMPTY`; never reused for another behaviour. */
  readonly id: string;
  /** What is checked, in one line. */
  readonly title: string;
  /** The clause of `docs/contract.md` (for example `5.2.3`) or `protocol.md §N` checked. */
  readonly clause: string;
  /** MUST or SHOULD. */
  readonly level: Level;
  /** The plugin kinds the case applies to. */
  readonly kinds: readonly PluginKind[];
  /** Capabilities the plugin must announce; without them the case is skipped. */
  readonly capabilities: readonly Capability[];
  /** Capabilities the plugin must NOT announce (cases that check the refusal of an optional behaviour). */
  readonly withoutCapabilities: readonly Capability[];
  /** Other prerequisites. */
  readonly requires: readonly Requirement[];
  /** Time limit for the case, in milliseconds, cleanup excluded. */
  readonly timeoutMs: number;
  /**
   * The check: resolves when the plugin conforms, throws a `CaseFailure` (or any error) when not.
   *
   * @internal The kit runs it; its context is not part of the package's API.
   */
  run(context: CaseContext): Promise<void>;
}

/** Direct access to the plugin under test, beyond its client. */
export interface PluginAccess {
  /** The command line that starts the executable, when known (protocol cases need it). */
  readonly command: PluginCommand | undefined;
  /** The process ID of the executable the main client talks to, when it is running. */
  pid(): number | undefined;
  /** A client of the same plugin in a separate, fresh plugin process, not initialised. */
  freshObjectStore(instance: string): ObjectStore;
  /** A client of the same plugin in a separate, fresh plugin process, not initialised. */
  freshBlockStore(instance: string): BlockStore;
}

/** Everything a case receives. */
export interface CaseContext {
  /** The kind under test. */
  readonly kind: PluginKind;
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** The initialised ObjectStore client (object-store runs only). */
  readonly objectStore: ObjectStore;
  /** The initialised BlockStore client (block-store runs only). */
  readonly blockStore: BlockStore;
  /** Object-store settings (object-store runs only). */
  readonly objectSettings: ObjectStoreSettings;
  /** Block-store settings (block-store runs only). */
  readonly blockSettings: BlockStoreSettings;
  /** The plugin's Init configuration. */
  readonly pluginConfig: Readonly<Record<string, string>>;
  /** The run's identifier, for example `20260520t101112-3fa1`. */
  readonly runId: string;
  /** Key prefix reserved for this case: `stowage-conformance-<runId>/<caseId>/`. */
  readonly prefix: string;
  /** Tags every snapshot and volume of this run carries. */
  readonly tags: Readonly<Record<string, string>>;
  /** Registers what the case creates; it is removed after the case, in reverse order, whatever happens. */
  readonly tracker: ResourceTracker;
  /** Fires when the case times out or the run is interrupted. */
  readonly signal: AbortSignal;
  /** Low-level access to the plugin. */
  readonly plugin: PluginAccess;
  /**
   * State shared by the cases of one run (for example the snapshot the block-store cases reuse,
   * so a slow backend takes one snapshot per run, not one per case). Resources put here are
   * registered with {@link CaseContext.runTracker}.
   */
  readonly shared: Map<string, unknown>;
  /** Tracker for resources shared by the whole run: removed when the run ends. */
  readonly runTracker: ResourceTracker;
  /** Adds a note to the case's result (shown in reports). */
  note(message: string): void;
}

/**
 * Outcome of one case:
 *
 * - `pass`, `fail`: the case ran;
 * - `skip`: not run (capability not announced, prerequisite missing, filtered out by `--skip`);
 * - `xfail`: failed and listed as known failing (does not fail the run);
 * - `xpass`: passed although listed as known failing (fails the run: the list is stale).
 */
export type CaseStatus = "pass" | "fail" | "skip" | "xfail" | "xpass";

/** The result of one case. */
export interface CaseResult {
  /** Case ID. */
  readonly id: string;
  /** Case title. */
  readonly title: string;
  /** Contract clause. */
  readonly clause: string;
  /** MUST or SHOULD. */
  readonly level: Level;
  /** Kind the case ran for. */
  readonly kind: PluginKind;
  /** Capabilities the case needs. */
  readonly capabilities: readonly Capability[];
  /** Outcome. */
  readonly status: CaseStatus;
  /** Wall time in milliseconds (0 when skipped). */
  readonly durationMs: number;
  /** Why it failed or was skipped. */
  readonly message?: string | undefined;
  /** Notes the case added. */
  readonly notes: readonly string[];
  /** Resources the cleanup could not remove (leaks), described. */
  readonly leaks: readonly string[];
}

/** Whether a result fails the run: a MUST failure, or an unexpected pass of a known-failing case. */
export function failsRun(result: CaseResult, strict = false): boolean {
  return result.status === "xpass" || (result.status === "fail" && (result.level === "MUST" || strict));
}
