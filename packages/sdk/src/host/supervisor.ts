/**
 * Keeps one plugin executable available: launches it on demand, checks that it keeps answering
 * (health checks), kills it when it stops answering, relaunches it after a crash or a kill with
 * every Init replayed, and gives up with a clear error when it keeps failing.
 */
import { recordProcessCrash, recordProcessStart } from "./process-telemetry.js";
import { existsSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, Reason, StowageError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { PluginConfig, PluginKind } from "../types.js";
import { fromGrpcError } from "../wire/status.js";
import { commandLabel, commandName } from "./command-line.js";
import { HealthMonitor, type HealthCheckSettings } from "./health-monitor.js";
import type { PluginCommand } from "./command-line.js";
import { PluginProcess, type LaunchOptions } from "./plugin-process.js";
import type { PoolMember } from "./process-pool.js";
import type { HostProtocolAdapter, LaunchedProcess } from "./protocol-adapter.js";

/** Restart policy. */
export interface RestartPolicy {
  /** Crashes tolerated within `windowMs` before giving up. */
  readonly maxCrashes: number;
  /** The window, in milliseconds. */
  readonly windowMs: number;
}

/** Supervisor settings. */
export interface SupervisorOptions extends LaunchOptions {
  readonly restart: RestartPolicy;
  readonly shutdownGraceMs: number;
  readonly initTimeoutMs: number;
  readonly logger: Logger;
  readonly healthCheck: HealthCheckSettings;
}

/**
 * Whether a child process has died even though Node has not processed its exit yet: on Linux its
 * `/proc/<pid>/stat` shows a zombie (or is gone). Elsewhere this returns false and the exit event
 * is the only signal.
 */
function processIsDead(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${String(pid)}/stat`, "utf8");
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ENOENT" && existsSync("/proc/self/stat");
  }
  const state = stat.charAt(stat.lastIndexOf(")") + 2);
  return state === "Z" || state === "X";
}

/** Supervises one process of an executable (of one instance of it; a pool holds several). */
export class Supervisor implements PoolMember {
  readonly command: PluginCommand;
  /** The protocol the executable speaks. */
  readonly adapter: HostProtocolAdapter;
  readonly #options: SupervisorOptions;
  readonly #inits = new Map<string, { kind: PluginKind; name: string; config: PluginConfig }>();
  readonly #crashes: number[] = [];
  #current: PluginProcess | undefined;
  #launching: Promise<PluginProcess> | undefined;
  #givenUp: StowageError | undefined;
  #closed = false;
  /**
   * The Init replays of the current process, one after the other: those of its launch, then those
   * remembered from another process of the pool meanwhile, so a newer configuration always lands last.
   */
  #replays: { proc: PluginProcess; done: Promise<void> } | undefined;

  constructor(command: PluginCommand, adapter: HostProtocolAdapter, options: SupervisorOptions) {
    this.command = command;
    this.adapter = adapter;
    this.#options = options;
  }

  /** The running process, if any. */
  get current(): PluginProcess | undefined {
    return this.#current;
  }

  /** Calls in flight to the running process. */
  get outstanding(): number {
    return this.#current?.channel.inFlight ?? 0;
  }

  /** Whether a process is running (a call needs no launch). */
  get running(): boolean {
    return this.#current !== undefined && !this.#current.hasExited;
  }

  /** False once closed or given up after too many crashes. */
  get available(): boolean {
    return !this.#closed && this.#givenUp === undefined;
  }

  /**
   * Records a successful Init, replayed after every relaunch. When it succeeded on another process
   * (a pool's), the running process gets it too before its next call.
   */
  rememberInit(kind: PluginKind, name: string, config: PluginConfig, from: LaunchedProcess): void {
    const init = { kind, name, config: { ...config } };
    this.#inits.set(`${kind}:${name}`, init);
    const proc = this.#current;
    if (proc === undefined || proc === from || proc.hasExited) return;
    this.#queueReplay(proc, () => this.#replay(proc, init)).catch((error: unknown) => {
      // The next acquire starts a process whose launch replays every Init, or fails saying why.
      this.#options.logger.warn({ plugin: commandName(this.command), pid: proc.pid }, `replaying an Init on another process of the pool failed; restarting it: ${StowageError.from(error).rawMessage}`);
      proc.kill();
    });
  }

  /** Runs `replay` on `proc` after the replays already queued on it. */
  #queueReplay(proc: PluginProcess, replay: () => Promise<void>): Promise<void> {
    const before = this.#replays?.proc === proc ? this.#replays.done.catch(() => undefined) : Promise.resolve();
    const entry = { proc, done: before.then(replay) };
    this.#replays = entry;
    const clear = (): void => {
      if (this.#replays === entry) this.#replays = undefined;
    };
    entry.done.then(clear, clear);
    return entry.done;
  }

  /** Waits until every replay queued on `proc` has ended; with `failed`, throws the first that failed. */
  async #replayed(proc: PluginProcess, failed: boolean): Promise<void> {
    while (this.#replays?.proc === proc) {
      const { done } = this.#replays;
      await (failed ? done : done.catch(() => undefined));
    }
  }

  /**
   * A live process: the current one, or a new launch (with every remembered Init replayed) when
   * it has exited. Throws after too many crashes.
   */
  async acquire(): Promise<PluginProcess> {
    if (this.#closed) throw new StowageError(Code.FailedPrecondition, "the plugin host is closed");
    if (this.#givenUp !== undefined) throw this.#givenUp;
    const current = this.#current;
    if (current !== undefined && !current.hasExited) {
      await this.#replayed(current, false);
      if (!current.hasExited && !processIsDead(current.pid)) return current;
      // It died, but Node has not reaped it yet (the exit event is still queued): a call sent now
      // would fail on the dropped connection. Wait for the exit, then relaunch below.
      await Promise.race([current.exited, sleep(2000)]);
    }
    this.#launching ??= this.#launch().finally(() => {
      this.#launching = undefined;
    });
    return this.#launching;
  }

  async #launch(): Promise<PluginProcess> {
    const restarting = this.#current !== undefined;
    let proc: PluginProcess;
    try {
      proc = await PluginProcess.launch(this.command, this.adapter, this.#options);
    } catch (error) {
      if (restarting) this.#recordCrash(StowageError.from(error).rawMessage);
      throw error;
    }
    proc.channel.setErrorMapper(async (error) => {
      const converted = fromGrpcError(error);
      if (converted.code !== Code.Unavailable && converted.code !== Code.Canceled && converted.code !== Code.Internal) return converted;
      const exit = await Promise.race([proc.exited, sleep(250).then(() => undefined)]);
      if (proc.unresponsive !== undefined) return proc.unresponsiveError(converted);
      return exit === undefined || proc.stopping ? converted : proc.crashError(exit, converted);
    });
    const health = new HealthMonitor(proc.channel, this.#options.healthCheck, this.#options.logger.child({ plugin: proc.label, pid: proc.pid }), (detail) => {
      if (proc.stopping || proc.hasExited) return;
      this.#options.logger.error({ plugin: commandName(this.command), pid: proc.pid }, `plugin process stopped answering; killing it (the next call starts it again): ${detail}`);
      this.#recordCrash(`stopped answering: ${detail}`, proc.stderrTail());
      proc.killUnresponsive(detail);
    });
    void proc.exited.then((exit) => {
      health.stop();
      if (!proc.stopping) this.#recordCrash(exit.signal !== null ? `killed by ${exit.signal}` : `exit status ${String(exit.code)}`, proc.stderrTail());
    });
    health.start();
    this.#current = proc;
    recordProcessStart(commandLabel(this.command), restarting, proc.pid);
    if (restarting) this.#options.logger.info({ plugin: this.command.command, pid: proc.pid, replaying: this.#inits.size }, "plugin restarted");
    // A first launch has Inits to replay only in a pool, where another process took them.
    const how = restarting ? "restarted" : "started";
    void this.#queueReplay(proc, async () => {
      for (const init of this.#inits.values()) await this.#replay(proc, init, how);
    }).catch(() => undefined);
    await this.#replayed(proc, true);
    return proc;
  }

  async #replay(proc: PluginProcess, init: { kind: PluginKind; name: string; config: PluginConfig }, how = "started"): Promise<void> {
    try {
      await this.adapter.replayInit?.(proc.channel, init.kind, init.name, init.config, this.#options.initTimeoutMs);
    } catch (error) {
      throw new StowageError(Code.Unavailable, `plugin ${init.name} was ${how} but replaying its Init failed: ${StowageError.from(error).rawMessage}`, {
        reason: Reason.PluginCrashed,
        cause: error,
      });
    }
  }

  #recordCrash(what: string, tail = ""): void {
    recordProcessCrash(commandLabel(this.command));
    const now = Date.now();
    this.#crashes.push(now);
    while (this.#crashes.length > 0 && (this.#crashes[0] ?? now) < now - this.#options.restart.windowMs) this.#crashes.shift();
    if (this.#crashes.length > this.#options.restart.maxCrashes) {
      this.#givenUp = new StowageError(
        Code.Unavailable,
        `plugin ${commandName(this.command)} crashed ${String(this.#crashes.length)} times within ${String(this.#options.restart.windowMs / 1000)} s (last: ${what}); the host stopped restarting it. Fix the plugin or its configuration, then restart the host${tail === "" ? "" : `. Its last stderr lines:\n${tail}`}`,
        { reason: Reason.PluginCrashed, metadata: { command: this.command.command } },
      );
      this.#options.logger.error({ plugin: this.command.command }, this.#givenUp.rawMessage);
    }
  }

  /** Stops the process (Shutdown, grace period, SIGKILL) and refuses further calls. */
  async close(): Promise<void> {
    this.#closed = true;
    const launching = this.#launching;
    if (launching !== undefined) await launching.catch(() => undefined);
    const proc = this.#current;
    if (proc !== undefined) await proc.stop(this.#options.shutdownGraceMs);
  }
}
