/**
 * Liveness checks of a running plugin process: go-plugin's health service
 * (`grpc.health.v1.Health/Check`, service "plugin", contract 2.2), asked at an interval with a
 * deadline of its own. A process that is stopped (SIGSTOP), deadlocked or busy-looping answers no
 * check; after a number of failed checks in a row it is declared unresponsive. A plugin that is
 * slow at its work but still answers checks is healthy. The timers never keep the host's event loop
 * alive.
 */
import { HealthCheckResponse_ServingStatus, Health } from "../gen/grpc/health/v1/health_pb.js";
import type { Logger } from "../logging.js";
import { HEALTH_SERVICE_NAME } from "../protocol/constants.js";
import type { RpcChannel } from "./rpc-channel.js";

/** When and how a plugin process is checked (`PluginHostOptions.healthCheck`). */
export interface HealthCheckOptions {
  /** Time between checks, in ms (default 5000; 0 turns the checks off). */
  readonly intervalMs?: number | undefined;
  /** Deadline of each check, in ms (default 2000). */
  readonly timeoutMs?: number | undefined;
  /** Failed checks in a row after which the process is killed and replaced (default 3). */
  readonly failures?: number | undefined;
}

/** {@link HealthCheckOptions} with every default filled in. */
export type HealthCheckSettings = Required<{ [K in keyof HealthCheckOptions]: number }>;

/** The defaults of {@link HealthCheckOptions}. */
export const HEALTH_CHECK_DEFAULTS: HealthCheckSettings = { intervalMs: 5000, timeoutMs: 2000, failures: 3 };

/** Checks one process until it is stopped or declared unresponsive. */
export class HealthMonitor {
  readonly #channel: RpcChannel;
  readonly #settings: HealthCheckSettings;
  readonly #logger: Logger;
  readonly #onUnresponsive: (detail: string) => void;
  #timer: NodeJS.Timeout | undefined;
  #failed = 0;
  #stopped = false;

  /**
   * @param onUnresponsive - Called once, with the last failure, when `failures` checks in a row failed.
   */
  constructor(channel: RpcChannel, settings: HealthCheckSettings, logger: Logger, onUnresponsive: (detail: string) => void) {
    this.#channel = channel;
    this.#settings = settings;
    this.#logger = logger;
    this.#onUnresponsive = onUnresponsive;
  }

  /** Schedules the first check (nothing happens when checks are off). */
  start(): void {
    if (this.#settings.intervalMs > 0 && this.#settings.failures > 0) this.#schedule();
  }

  /** Stops checking (the process exited or is being stopped). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.#check();
    }, this.#settings.intervalMs);
    this.#timer.unref();
  }

  async #check(): Promise<void> {
    let failure: string | undefined;
    const started = performance.now();
    try {
      const res = await this.#channel.unary(Health.method.check, { service: HEALTH_SERVICE_NAME }, { timeoutMs: this.#settings.timeoutMs });
      if (res.status !== HealthCheckResponse_ServingStatus.SERVING) failure = `it reported ${HealthCheckResponse_ServingStatus[res.status] ?? String(res.status)}`;
    } catch (error) {
      failure = (error as Error).message;
    }
    if (this.#stopped) return;
    const elapsed = performance.now() - started;
    if (failure !== undefined && elapsed > 2 * this.#settings.timeoutMs + 100) {
      // The deadline fired long after it was due: the host's own event loop was blocked, so the
      // check says nothing about the plugin (its answer may be waiting unread).
      this.#logger.debug({ elapsedMs: Math.round(elapsed) }, `health check inconclusive, the host was busy: ${failure}`);
      this.#schedule();
      return;
    }
    if (failure === undefined) {
      if (this.#failed > 0) this.#logger.info({ failed: this.#failed }, "plugin answers health checks again");
      this.#failed = 0;
      this.#logger.trace("health check passed");
      this.#schedule();
      return;
    }
    this.#failed += 1;
    this.#logger.warn({ failed: this.#failed, of: this.#settings.failures }, `health check failed: ${failure}`);
    if (this.#failed >= this.#settings.failures) {
      this.stop();
      this.#onUnresponsive(`${String(this.#failed)} health checks in a row failed (every ${String(this.#settings.intervalMs)} ms, ${String(this.#settings.timeoutMs)} ms each; last: ${failure})`);
      return;
    }
    this.#schedule();
  }
}
