/**
 * Sessions: the plugin under test as the kit sees it (a host, a plugin name, a command line) and
 * one kind's run of cases against it — capability checks, the lazily run Init case, per-case
 * time limits, resource cleanup and known-failing bookkeeping. Shared by {@link runConformance}
 * and the vitest integration.
 *
 * @packageDocumentation
 */
import { randomBytes } from "node:crypto";
import { silentLogger, type BlockStore, type Logger, type ObjectStore, type PluginDescriptor, type PluginKind } from "@stowage/sdk";
import { PluginHost, type PluginCommand } from "@stowage/sdk/host";
import { casesFor, initCaseId } from "./catalogue.js";
import {
  ConfigError,
  resolveBlockStoreSettings,
  resolveObjectStoreSettings,
  resolveStartTimeoutMs,
  type BlockStoreSettings,
  type ConformanceConfig,
  type ObjectStoreSettings,
} from "./config.js";
import { CaseSkipped, ConfigProblem } from "./define.js";
import { abbreviateLongRuns, CaseFailure, describeFailure } from "./harness/expect.js";
import type { CasePatterns } from "./patterns.js";
import { ResourceTracker, type CleanupFailure } from "./tracker.js";
import type { CaseContext, CaseResult, CaseStatus, ConformanceCase, PluginAccess } from "./types.js";

/** The plugin executable could not be started (exit status 3). */
export class PluginStartError extends Error {
  /** @param message - What the host reported. */
  constructor(message: string) {
    super(message);
    this.name = "PluginStartError";
  }
}

/** Which plugin to test, and how to reach it. Give `host`, or `plugin` and/or `pluginDir`. */
export interface TargetOptions {
  /** A started host: the kit uses it (its default client instance is re-initialised) and leaves it running. */
  readonly host?: PluginHost | undefined;
  /** Executables the kit launches in a host of its own: paths, or commands with arguments. */
  readonly plugin?: string | PluginCommand | readonly (string | PluginCommand)[] | undefined;
  /** A plugin directory the kit's own host discovers. */
  readonly pluginDir?: string | undefined;
  /** The command line of the plugin, for the protocol cases, when `host` is given. */
  readonly command?: PluginCommand | undefined;
  /** Logger of the kit's own host and of the plugins' forwarded logs (default: none). */
  readonly logger?: Logger | undefined;
}

/** A new run ID: UTC time to the second and four random hex digits, for example `20260520t101112-3fa1`. */
export function newRunId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "").toLowerCase();
  return `${stamp}-${randomBytes(2).toString("hex")}`;
}

/** The key prefix of a run: every object the kit writes is under it. */
export function runPrefix(runId: string): string {
  return `stowage-conformance-${runId}/`;
}

/** The prefix of every run's keys, which `--sweep` removes. */
export const SWEEP_PREFIX = "stowage-conformance-";

/** Tag on every snapshot and volume the kit creates (value `true`), used by `--sweep`. */
export const CONFORMANCE_TAG = "stowage.io/conformance";
/** Tag carrying the run ID. */
export const RUN_TAG = "stowage.io/conformance-run";

/** The host the kit talks through, and whether it owns it. */
export class Target {
  /** The host. */
  readonly host: PluginHost;
  readonly #owned: boolean;
  readonly #commands: readonly PluginCommand[];
  readonly #command: PluginCommand | undefined;

  private constructor(host: PluginHost, owned: boolean, commands: readonly PluginCommand[], command: PluginCommand | undefined) {
    this.host = host;
    this.#owned = owned;
    this.#commands = commands;
    this.#command = command;
  }

  /**
   * Opens the target: the caller's host, or a new host for `plugin`/`pluginDir`, started here.
   * Throws {@link PluginStartError} when an executable cannot start and {@link ConfigError} when
   * there is nothing to launch.
   */
  static async open(options: TargetOptions, config: ConformanceConfig): Promise<Target> {
    if (options.host !== undefined) return new Target(options.host, false, [], options.command);
    const list = options.plugin === undefined ? [] : Array.isArray(options.plugin) ? options.plugin : [options.plugin];
    const commands = (list as readonly (string | PluginCommand)[]).map((p) => (typeof p === "string" ? { command: p } : p));
    if (commands.length === 0 && options.pluginDir === undefined) throw new ConfigError("nothing to test: give the plugin's command (after --), --plugin NAME with a plugin directory, or a host");
    const host = new PluginHost({
      plugins: commands,
      pluginDir: options.pluginDir,
      logger: options.logger ?? silentLogger,
      handshakeTimeoutMs: resolveStartTimeoutMs(config),
      // Bodies go through the plugin's PutObject and GetObject, which the cases test; the
      // direct-transfer cases call its plans themselves.
      directTransfer: false,
    });
    try {
      await host.start();
    } catch (error) {
      throw new PluginStartError(describeFailure(error).replace(/^FAILED_PRECONDITION: /, ""));
    }
    return new Target(host, true, commands, undefined);
  }

  /** The command line that starts the executable serving a plugin, when it can be known. */
  commandFor(kind: PluginKind, name: string): PluginCommand | undefined {
    if (this.#command !== undefined) return this.#command;
    const hosted = this.host.plugins().find((p) => p.descriptor.kind === kind && p.descriptor.name === name);
    if (hosted === undefined) return undefined;
    const matching = this.#commands.filter((c) => c.command === hosted.command);
    if (matching.length === 1) return matching[0];
    if (matching.length > 1 || !this.#owned) return undefined;
    return { command: hosted.command };
  }

  /** Closes the host if the kit started it. */
  async close(): Promise<void> {
    if (this.#owned) await this.host.close();
  }
}

/** Options of {@link KindSession.open}. */
export interface SessionOptions {
  /** The kind under test. */
  readonly kind: PluginKind;
  /** The configuration. */
  readonly config: ConformanceConfig;
  /** The run ID (default: a new one). */
  readonly runId?: string | undefined;
  /** Plugin name, overriding the configuration's `plugin`. */
  readonly pluginName?: string | undefined;
  /** Known-failing patterns. */
  readonly knownFailing?: CasePatterns | undefined;
  /** Fires to interrupt the run. */
  readonly signal?: AbortSignal | undefined;
}

function errorText(error: unknown): string {
  if (error instanceof CaseSkipped || error instanceof Error) return error.message;
  return String(error);
}

/** One kind's cases against one plugin. */
export class KindSession {
  /** The kind. */
  readonly kind: PluginKind;
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** The runtime the executable reported. */
  readonly runtime: string;
  /** The run ID. */
  readonly runId: string;
  /** Messages of configuration problems met while running (exit status 2). */
  readonly configProblems: string[] = [];
  readonly #target: Target;
  readonly #objectSettings: ObjectStoreSettings | undefined;
  readonly #blockSettings: BlockStoreSettings | undefined;
  readonly #objectStore: ObjectStore | undefined;
  readonly #blockStore: BlockStore | undefined;
  readonly #knownFailing: CasePatterns | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #shared = new Map<string, unknown>();
  readonly #runTracker = new ResourceTracker();
  #init: Promise<CaseResult> | undefined;

  private constructor(fields: {
    target: Target;
    kind: PluginKind;
    descriptor: PluginDescriptor;
    runtime: string;
    runId: string;
    objectSettings?: ObjectStoreSettings | undefined;
    blockSettings?: BlockStoreSettings | undefined;
    knownFailing?: CasePatterns | undefined;
    signal?: AbortSignal | undefined;
  }) {
    this.#target = fields.target;
    this.kind = fields.kind;
    this.descriptor = fields.descriptor;
    this.runtime = fields.runtime;
    this.runId = fields.runId;
    this.#objectSettings = fields.objectSettings;
    this.#blockSettings = fields.blockSettings;
    this.#knownFailing = fields.knownFailing;
    this.#signal = fields.signal;
    if (fields.kind === "object-store") this.#objectStore = fields.target.host.objectStore(fields.descriptor.name);
    else this.#blockStore = fields.target.host.blockStore(fields.descriptor.name);
  }

  /** Resolves the plugin of `options.kind` on the target; throws {@link ConfigError} when it is not there. */
  static open(target: Target, options: SessionOptions): KindSession {
    const runId = options.runId ?? newRunId();
    const objectSettings = options.kind === "object-store" ? resolveObjectStoreSettings(options.config, { runId }) : undefined;
    const blockSettings = options.kind === "block-store" ? resolveBlockStoreSettings(options.config, { runId }) : undefined;
    const wanted = options.pluginName ?? objectSettings?.plugin ?? blockSettings?.plugin;
    const served = target.host.plugins().filter((p) => p.descriptor.kind === options.kind);
    const section = options.kind === "object-store" ? "objectStore" : "blockStore";
    let chosen = wanted === undefined ? undefined : served.find((p) => p.descriptor.name === wanted);
    if (wanted === undefined) {
      if (served.length !== 1) {
        throw new ConfigError(
          served.length === 0
            ? `the plugins serve no ${options.kind}; nothing to test for ${section}`
            : `the plugins serve several ${options.kind} plugins [${served.map((p) => p.descriptor.name).join(", ")}]; name one in ${section}.plugin or with --plugin`,
        );
      }
      chosen = served[0];
    }
    if (chosen === undefined) {
      throw new ConfigError(`no ${options.kind} plugin named ${JSON.stringify(wanted)}; the plugins serve [${served.map((p) => p.descriptor.name).join(", ")}]`);
    }
    return new KindSession({
      target,
      kind: options.kind,
      descriptor: chosen.descriptor,
      runtime: chosen.runtime,
      runId,
      objectSettings,
      blockSettings,
      knownFailing: options.knownFailing,
      signal: options.signal,
    });
  }

  /** The cases of this kind, in catalogue order. */
  cases(): ConformanceCase[] {
    return casesFor(this.kind);
  }

  /** The ID of the kind's Init case. */
  get initCaseId(): string {
    return initCaseId(this.kind);
  }

  /** Whether a case ID is listed as known failing. */
  isKnownFailing(id: string): boolean {
    return this.#knownFailing?.matches(id, this.kind) ?? false;
  }

  #access(): PluginAccess {
    const host = this.#target.host;
    const { kind, descriptor } = this;
    return {
      command: this.#target.commandFor(kind, descriptor.name),
      pid: () => host.plugins().find((p) => p.descriptor.kind === kind && p.descriptor.name === descriptor.name)?.pid,
      freshObjectStore: (instance) => host.objectStore(descriptor.name, { instance: `stowage-conformance-${kind}-${instance}` }),
      freshBlockStore: (instance) => host.blockStore(descriptor.name, { instance: `stowage-conformance-${kind}-${instance}` }),
    };
  }

  /** Runs the Init case once and returns its result. */
  ensureInit(): Promise<CaseResult> {
    if (this.#init === undefined) {
      const c = this.cases().find((x) => x.id === this.initCaseId);
      if (c === undefined) throw new Error(`no ${this.initCaseId} case`);
      this.#init = this.#execute(c);
    }
    return this.#init;
  }

  /** Whether the Init case has run (so a runner can report it once). */
  get initStarted(): boolean {
    return this.#init !== undefined;
  }

  /** A result; its texts are abbreviated for reports ({@link abbreviateLongRuns}). */
  #result(c: ConformanceCase, status: CaseStatus, durationMs: number, message: string | undefined, notes: readonly string[], leaks: readonly string[]): CaseResult {
    return {
      id: c.id,
      title: c.title,
      clause: c.clause,
      level: c.level,
      kind: this.kind,
      capabilities: c.capabilities,
      status,
      durationMs,
      message: message === undefined ? undefined : abbreviateLongRuns(message),
      notes: notes.map(abbreviateLongRuns),
      leaks: leaks.map(abbreviateLongRuns),
    };
  }

  /** Why a case cannot run here, or undefined. */
  skipReason(c: ConformanceCase): string | undefined {
    const missing = c.capabilities.filter((cap) => !this.descriptor.capabilities.includes(cap));
    if (missing.length > 0) return `the plugin does not announce ${missing.join(", ")}`;
    const present = c.withoutCapabilities.filter((cap) => this.descriptor.capabilities.includes(cap));
    if (present.length > 0) return `applies only to plugins without ${present.join(", ")}`;
    if (c.requires.includes("command") && this.#target.commandFor(this.kind, this.descriptor.name) === undefined) {
      return "the plugin's command line is not known (the kit was handed a host without `command`)";
    }
    if (c.requires.includes("lockBucket") && this.#objectSettings?.lockBucket === undefined) {
      return "objectStore.lockBucket is not configured: the plugin announces OBJECT_LOCK, but the kit has no bucket where objects can be protected, so it cannot check that protection is honoured; set objectStore.lockBucket (docs/conformance.md, Object protection)";
    }
    return undefined;
  }

  /**
   * Runs one case: skipped when a capability or prerequisite is missing (the Init case is run
   * first when needed), otherwise run within its time limit, then its resources are removed.
   */
  async runCase(c: ConformanceCase): Promise<CaseResult> {
    if (c.id === this.initCaseId) return this.ensureInit();
    const reason = this.skipReason(c);
    if (reason !== undefined) return this.#result(c, "skip", 0, reason, [], []);
    if (c.requires.includes("init")) {
      const init = await this.ensureInit();
      if (init.status !== "pass" && init.status !== "xpass") return this.#result(c, "skip", 0, `not run: ${this.initCaseId} did not pass`, [], []);
    }
    return this.#execute(c);
  }

  #timeoutMs(c: ConformanceCase): number {
    return c.timeoutMs + (this.kind === "block-store" && c.id.startsWith("BS-") ? (this.#blockSettings?.snapshotReadyTimeoutMs ?? 0) * 2 : 0);
  }

  async #execute(c: ConformanceCase): Promise<CaseResult> {
    const controller = new AbortController();
    const outer = this.#signal;
    const onOuter = (): void => {
      controller.abort(outer?.reason);
    };
    outer?.addEventListener("abort", onOuter, { once: true });
    if (outer?.aborted === true) controller.abort(outer.reason);
    const tracker = new ResourceTracker();
    const notes: string[] = [];
    const prefix = `${runPrefix(this.runId)}${c.id}/`;
    const store = this.#objectStore;
    const blocks = this.#blockStore;
    const objectSettings = this.#objectSettings;
    const blockSettings = this.#blockSettings;
    const ctx: CaseContext = {
      kind: this.kind,
      descriptor: this.descriptor,
      get objectStore(): ObjectStore {
        if (store === undefined) throw new Error("this case runs against an object store, but the session tests a block store");
        return store;
      },
      get blockStore(): BlockStore {
        if (blocks === undefined) throw new Error("this case runs against a block store, but the session tests an object store");
        return blocks;
      },
      get objectSettings(): ObjectStoreSettings {
        if (objectSettings === undefined) throw new Error("no object-store settings in this session");
        return objectSettings;
      },
      get blockSettings(): BlockStoreSettings {
        if (blockSettings === undefined) throw new Error("no block-store settings in this session");
        return blockSettings;
      },
      pluginConfig: this.#objectSettings?.config ?? this.#blockSettings?.config ?? {},
      runId: this.runId,
      prefix,
      tags: { [CONFORMANCE_TAG]: "true", [RUN_TAG]: this.runId },
      tracker,
      runTracker: this.#runTracker,
      shared: this.#shared,
      signal: controller.signal,
      plugin: this.#access(),
      note: (message) => notes.push(message),
    };
    const limit = this.#timeoutMs(c);
    const started = performance.now();
    let failure: unknown;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error(`the case did not finish within ${String(limit / 1000)} s`));
    }, limit);
    const running = Promise.resolve().then(() => c.run(ctx));
    running.catch(() => undefined);
    try {
      await Promise.race([
        running,
        new Promise<never>((_resolve, reject) => {
          if (controller.signal.aborted) reject(controller.signal.reason as Error);
          controller.signal.addEventListener("abort", () => reject(controller.signal.reason as Error), { once: true });
        }),
      ]);
    } catch (error) {
      failure = error;
      if (controller.signal.aborted) {
        failure = timedOut ? new Error(`timed out after ${String(limit / 1000)} s`) : new Error(`interrupted: ${errorText(outer?.reason)}`);
        // Give the case a moment to notice its signal before its resources are removed.
        await Promise.race([running.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 2000))]);
      }
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener("abort", onOuter);
      // Calls the case left running (a write it gave up waiting for) end with it.
      if (!controller.signal.aborted) controller.abort(new Error("the case is over"));
    }
    const durationMs = Math.round(performance.now() - started);
    const leaks = (await tracker.cleanup()).map((f: CleanupFailure) => `${f.label}: ${f.error}`);
    if (failure instanceof CaseSkipped) return this.#result(c, "skip", durationMs, failure.message, notes, leaks);
    if (failure instanceof ConfigProblem) this.configProblems.push(`${c.id}: ${failure.message}`);
    const known = this.isKnownFailing(c.id);
    if (failure === undefined) return this.#result(c, known ? "xpass" : "pass", durationMs, known ? "passed, but it is listed as known failing: remove it from the list" : undefined, notes, leaks);
    const message = failure instanceof CaseFailure ? failure.message : describeFailure(failure);
    return this.#result(c, known ? "xfail" : "fail", durationMs, message, notes, leaks);
  }

  /** Removes what the run shared (the Init marker, the shared snapshot); returns what could not be removed. */
  async close(): Promise<string[]> {
    return (await this.#runTracker.cleanup()).map((f) => abbreviateLongRuns(`${f.label}: ${f.error}`));
  }
}
