/**
 * The PluginHost a backup server starts at boot: discovers plugin executables, launches and
 * supervises them, and hands out typed ObjectStore and BlockStore clients.
 */
import { availableParallelism } from "node:os";
import { Code, Reason, StowageError } from "../errors.js";
import { createHclogLogger, type Logger } from "../logging.js";
import type { PluginDescriptor, PluginKind } from "../types.js";
import { commandName } from "./command-line.js";
import { discoverExecutables } from "./discover.js";
import { HEALTH_CHECK_DEFAULTS, type HealthCheckOptions, type HealthCheckSettings } from "./health-monitor.js";
import { hostAdapter } from "../protocols/registry.js";
import { STOWAGE_PROTOCOL } from "../protocol/constants.js";
import type { PluginCommand } from "./command-line.js";
import type { ClientSettings, HostBlockStore, HostObjectStore, TransferEvent } from "./protocol-adapter.js";
import { DIRECT_TRANSFER_DEFAULTS, DirectTransferExecutor } from "./direct-transfer.js";
import { Supervisor, type RestartPolicy, type SupervisorOptions } from "./supervisor.js";
import { ProcessPool } from "./process-pool.js";
import type { HostProtocolAdapter } from "./protocol-adapter.js";
import { isTimeout, MAX_TIMEOUT_MS } from "./validate.js";
import { CallLimiter, type CallLimits } from "./call-limiter.js";
import { GuardedBlockStore } from "./guarded-block-store.js";
import { GuardedObjectStore } from "./guarded-object-store.js";
import type { Guard } from "./guard-runner.js";
import { OperationTelemetry } from "./operation-telemetry.js";
import { RETRY_DEFAULTS, RetryBudget, type RetryOptions, type RetrySettings } from "./retry.js";
import { parseServiceAddress, RemoteService, type RemotePluginService } from "./remote-service.js";
import type { ProcessSource } from "./protocol-adapter.js";

/** Options of {@link PluginHost}. */
export interface PluginHostOptions {
  /** Directory searched recursively for plugin executables (every regular file with an execute bit). */
  readonly pluginDir?: string | undefined;
  /** Executables to launch in addition to the discovered ones (paths or full commands). */
  readonly plugins?: readonly (string | PluginCommand)[] | undefined;
  /** Where host and plugin logs go (default: hclog-shaped JSON on stderr at `info`). */
  readonly logger?: Logger | undefined;
  /** Time a plugin has to print its handshake and answer GetPluginInfo (default 30 000 ms). */
  readonly handshakeTimeoutMs?: number | undefined;
  /** Deadline for unary calls that set none (default 120 000 ms; 0 disables). Streams have none by default. */
  readonly defaultTimeoutMs?: number | undefined;
  /**
   * Longest time a streaming call (PUT and GET bodies, listings) may wait on the plugin without a
   * message or body byte moving; it then fails with `DEADLINE_EXCEEDED` (default 120 000 ms; 0
   * disables). Time spent waiting on the caller (a slow body source, a reader that pauses) does
   * not count.
   */
  readonly streamIdleTimeoutMs?: number | undefined;
  /**
   * Liveness checks of every running plugin process (grpc.health.v1 "plugin"): every `intervalMs`
   * (default 5000; 0 turns them off), each with a deadline of `timeoutMs` (default 2000); after
   * `failures` (default 3) failed checks in a row the process is killed, its in-flight calls fail
   * with `UNAVAILABLE`/`PLUGIN_UNRESPONSIVE`, and the next call starts it again with its Inits replayed.
   */
  readonly healthCheck?: HealthCheckOptions | undefined;
  /** Restart policy after crashes (default: give up after 5 crashes within 60 s). */
  readonly restart?: RestartPolicy | undefined;
  /** Time a plugin has to exit after Shutdown before it is killed (default 2000 ms). */
  readonly shutdownGraceMs?: number | undefined;
  /** Move object bodies over the plugin's data channel when it offers one (default true). */
  readonly dataChannel?: boolean | undefined;
  /**
   * Direct transfer (contract 5.8): with plugins that announce `DIRECT_TRANSFER`, the host sends the
   * requests they sign to the store itself, so bodies of known size do not pass through the plugin
   * (default true). `false` turns it off; an object tunes it.
   */
  readonly directTransfer?: boolean | DirectTransferOptions | undefined;
  /** Called once per put and get with the path its body took (direct, data channel or messages). */
  readonly onTransfer?: ((event: TransferEvent) => void) | undefined;
  /** What to do when an executable fails to start: `fail` the whole start (default) or `skip` it with an error log. */
  readonly onLaunchError?: "fail" | "skip" | undefined;
  /**
   * Retries of idempotent calls (head, get until its header, list until its first page, delete,
   * signed URLs, Init, protection calls; a put only with `retryBody`; snapshot and volume reads and
   * deletes, listing pages, the PersistentVolume functions; never the creates) that fail with
   * `UNAVAILABLE`, `RESOURCE_EXHAUSTED` or `ABORTED`: exponential backoff with full jitter, the
   * plugin's `retry_after_ms` hint, a retry budget per plugin. Off by default (`false`); `{}` turns
   * them on with the defaults (3 attempts).
   */
  readonly retry?: false | RetryOptions | undefined;
  /** Limits of calls in flight per client (one plugin instance). */
  readonly limits?: HostLimits | undefined;
  /**
   * Processes per plugin executable and instance (default 1): with more, each call goes to the
   * process with the fewest calls in flight, every Init is replayed on each, and each is relaunched
   * on its own. An executable serving several plugins gets the largest count among them.
   */
  readonly processes?: ProcessCounts | undefined;
  /** What OpenTelemetry spans may carry. */
  readonly telemetry?: TelemetryOptions | undefined;
  /**
   * Plugin services reached over the network with mutual TLS (docs/protocol.md, network mode):
   * their replicas are members of a pool like processes, with their own sessions per client
   * instance, Inits replayed on each, and calls to the replica with the fewest in flight.
   */
  readonly remote?: readonly RemotePluginService[] | undefined;
}

/** {@link PluginHostOptions.limits}. */
export interface HostLimits {
  /** The limits of every plugin that `plugins` does not name. */
  readonly default?: CallLimits | undefined;
  /** Limits by plugin name. */
  readonly plugins?: Readonly<Record<string, CallLimits>> | undefined;
}

/** How many processes of one executable: a number from 1 to 64, or `auto` (the machine's cores). */
export type ProcessCount = number | "auto";

/** {@link PluginHostOptions.processes}. */
export interface ProcessCounts {
  /** The count of every plugin that `plugins` does not name (default 1). */
  readonly default?: ProcessCount | undefined;
  /** Counts by plugin name. */
  readonly plugins?: Readonly<Record<string, ProcessCount>> | undefined;
}

/** {@link PluginHostOptions.telemetry}. */
export interface TelemetryOptions {
  /** Put object keys on spans (`stowage.object.key`); default false, because keys can be personal data. */
  readonly recordKeys?: boolean | undefined;
}

/** Tuning of {@link PluginHostOptions.directTransfer}. */
export interface DirectTransferOptions {
  /** Parts in flight per put (default 4; a plan may allow fewer), or ranges open at once per get. */
  readonly concurrency?: number | undefined;
  /** Bytes per ranged GET (default 32 MiB); the bodies stream, so memory does not grow with it. */
  readonly readPartSize?: number | undefined;
  /** Attempts per part before the put or get fails (default 4). */
  readonly attempts?: number | undefined;
  /** Bytes of part buffers one put may hold (default 48 MiB; at least one part is always held). */
  readonly partMemory?: number | undefined;
  /** Puts of fewer bytes go through the plugin, whose one call costs less than a plan's round trips (default 4 MiB). */
  readonly minPutSize?: number | undefined;
}

/** A plugin the host can hand out. */
export interface HostedPlugin {
  /** What the plugin announced. */
  readonly descriptor: PluginDescriptor;
  /** The executable that serves it, or the address of the remote plugin service. */
  readonly command: string;
  /** Its current process ID (the first process of a pool), or undefined while not running (always for a remote plugin). */
  readonly pid: number | undefined;
  /** The IDs of every running process of its pool (of the default instance). */
  readonly pids: readonly number[];
  /** The runtime the executable reported. */
  readonly runtime: string;
}

/** Options of {@link PluginHost.objectStore} and {@link PluginHost.blockStore}. */
export interface ClientOptions {
  /**
   * An instance key. Clients with different keys get separate plugin processes, so two storage
   * locations of the same provider never reconfigure each other's plugin. Default `"default"`.
   */
  readonly instance?: string | undefined;
}

/** The keys of `value` whose values are defined. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Checks the numeric options: from 0 to what a timer can hold (a mistake here would disable a safeguard). */
function checkOptions(options: PluginHostOptions): void {
  const numbers: [string, number | undefined][] = [
    ["handshakeTimeoutMs", options.handshakeTimeoutMs],
    ["defaultTimeoutMs", options.defaultTimeoutMs],
    ["streamIdleTimeoutMs", options.streamIdleTimeoutMs],
    ["shutdownGraceMs", options.shutdownGraceMs],
    ["healthCheck.intervalMs", options.healthCheck?.intervalMs],
    ["healthCheck.timeoutMs", options.healthCheck?.timeoutMs],
    ["healthCheck.failures", options.healthCheck?.failures],
  ];
  for (const [name, value] of numbers) {
    if (value !== undefined && !isTimeout(value)) {
      throw new StowageError(Code.InvalidArgument, `PluginHost option ${name} must be a number from 0 to ${String(MAX_TIMEOUT_MS)}; got ${String(value)}`);
    }
  }
  const direct = typeof options.directTransfer === "object" ? options.directTransfer : {};
  const counts: [string, number | undefined, number, number][] = [
    ["directTransfer.concurrency", direct.concurrency, 1, 64],
    ["directTransfer.readPartSize", direct.readPartSize, 64 * 1024, 1024 * 1024 * 1024],
    ["directTransfer.attempts", direct.attempts, 1, 10],
    ["directTransfer.partMemory", direct.partMemory, 0, 64 * 1024 * 1024 * 1024],
    ["directTransfer.minPutSize", direct.minPutSize, 0, Number.MAX_SAFE_INTEGER],
    ...retryCounts(options.retry),
    ...limitCounts("limits.default", options.limits?.default),
    ...Object.entries(options.limits?.plugins ?? {}).flatMap(([name, limits]) => limitCounts(`limits.plugins[${JSON.stringify(name)}]`, limits)),
  ];
  for (const [name, value, min, max] of counts) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < min || value > max)) {
      throw new StowageError(Code.InvalidArgument, `PluginHost option ${name} must be an integer from ${String(min)} to ${String(max)}; got ${String(value)}`);
    }
  }
  const processes: unknown = options.processes;
  if (processes !== undefined && (typeof processes !== "object" || processes === null || Array.isArray(processes))) {
    throw new StowageError(Code.InvalidArgument, `PluginHost option processes must be an object such as { default: 2, plugins: { "stowage.io/aws": "auto" } }; got ${JSON.stringify(processes) ?? typeof processes}`);
  }
  for (const [name, count] of processCounts(options.processes)) {
    if (count !== undefined && count !== "auto" && !(Number.isSafeInteger(count) && count >= 1 && count <= MAX_PROCESSES)) {
      throw new StowageError(Code.InvalidArgument, `PluginHost option ${name} must be an integer from 1 to ${String(MAX_PROCESSES)} or "auto"; got ${JSON.stringify(count) ?? String(count)}`);
    }
  }
  for (const [i, remote] of (options.remote ?? []).entries()) checkRemote(remote, i);
  const ratio = options.retry === false ? undefined : options.retry?.budgetRatio;
  if (ratio !== undefined && !(ratio >= 0 && ratio <= 1)) throw new StowageError(Code.InvalidArgument, `PluginHost option retry.budgetRatio must be from 0 to 1; got ${String(ratio)}`);
}

/** Checks one entry of `remote`: its address parses, its files are named, its intervals are sensible. */
function checkRemote(remote: RemotePluginService, i: number): void {
  const where = `PluginHost option remote[${String(i)}]`;
  if (typeof remote.address !== "string" || remote.address === "") throw new StowageError(Code.InvalidArgument, `${where}.address must be dns:///name:port, host:port or a comma-separated list of host:port`);
  parseServiceAddress(remote.address);
  for (const file of ["caFile", "certFile", "keyFile"] as const) {
    const value: unknown = remote.tls[file];
    if (typeof value !== "string" || value === "") throw new StowageError(Code.InvalidArgument, `${where}.tls.${file} must name a PEM file; the network mode never runs without mutual TLS`);
  }
  const intervals: [string, number | undefined][] = [
    ["resolveIntervalMs", remote.resolveIntervalMs],
    ["tls.refreshIntervalMs", remote.tls.refreshIntervalMs],
  ];
  for (const [name, value] of intervals) {
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 100 || value > MAX_TIMEOUT_MS)) {
      throw new StowageError(Code.InvalidArgument, `${where}.${name} must be an integer from 100 to ${String(MAX_TIMEOUT_MS)}; got ${String(value)}`);
    }
  }
}

function retryCounts(retry: false | RetryOptions | undefined): [string, number | undefined, number, number][] {
  if (retry === undefined || retry === false) return [];
  return [
    ["retry.attempts", retry.attempts, 1, 10],
    ["retry.initialBackoffMs", retry.initialBackoffMs, 1, MAX_TIMEOUT_MS],
    ["retry.maxBackoffMs", retry.maxBackoffMs, 1, MAX_TIMEOUT_MS],
    ["retry.maxRetryAfterMs", retry.maxRetryAfterMs, 0, MAX_TIMEOUT_MS],
  ];
}

/** The process counts given, by option name. */
function processCounts(processes: ProcessCounts | undefined): [string, ProcessCount | undefined][] {
  return [["processes.default", processes?.default], ...Object.entries(processes?.plugins ?? {}).map(([name, count]): [string, ProcessCount] => [`processes.plugins[${JSON.stringify(name)}]`, count])];
}

/** The most processes one pool may have. */
const MAX_PROCESSES = 64;

function limitCounts(name: string, limits: CallLimits | undefined): [string, number | undefined, number, number][] {
  return [
    [`${name}.maxInFlight`, limits?.maxInFlight, 1, 1_000_000],
    [`${name}.maxQueued`, limits?.maxQueued, 0, 1_000_000],
  ];
}

/** Identifies a command line: the executable and its arguments. */
function commandKey(command: PluginCommand): string {
  return [command.protocol ?? STOWAGE_PROTOCOL, command.command, ...(command.args ?? [])].join("\0");
}

interface Served {
  readonly descriptor: PluginDescriptor;
  /** The executable, or for a remote plugin its address (as `command`). */
  readonly command: PluginCommand;
  readonly runtime: string;
  /** The remote plugin service that serves it, when it is remote. */
  readonly remote?: RemoteService | undefined;
}

/** What serves `served`, for messages. */
function servedBy(served: Served): string {
  return served.remote === undefined ? commandName(served.command) : `remote plugin service ${served.remote.address}`;
}

/** The processes of one executable instance. */
interface Pool {
  readonly adapter: HostProtocolAdapter;
  readonly members: Supervisor[];
  readonly source: ProcessPool;
}

/**
 * Discovers, launches and supervises plugin executables.
 *
 * @example
 * ```ts
 * const host = new PluginHost({ pluginDir: "/plugins" });
 * await host.start();
 * const store = host.objectStore("stowage.io/local");
 * await store.init({ root: "/backups" });
 * await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("hi")]) });
 * await host.close();
 * ```
 */
export class PluginHost {
  readonly #options: PluginHostOptions;
  readonly #logger: Logger;
  readonly #served = new Map<string, Served>();
  readonly #pools = new Map<string, Pool>();
  readonly #objectStores = new Map<string, HostObjectStore>();
  readonly #telemetry: OperationTelemetry[] = [];
  readonly #budgets = new Map<string, RetryBudget>();
  readonly #blockStores = new Map<string, HostBlockStore>();
  readonly #remotes: RemoteService[] = [];
  #started = false;
  #closed = false;
  readonly #directTransfer: DirectTransferExecutor | undefined;

  constructor(options: PluginHostOptions = {}) {
    checkOptions(options);
    this.#options = options;
    this.#logger = options.logger ?? createHclogLogger({ module: "stowage-host" });
    if (options.directTransfer !== false) {
      const tuning = typeof options.directTransfer === "object" ? options.directTransfer : {};
      this.#directTransfer = new DirectTransferExecutor({
        enabled: true,
        concurrency: tuning.concurrency ?? DIRECT_TRANSFER_DEFAULTS.concurrency,
        readPartSize: tuning.readPartSize ?? DIRECT_TRANSFER_DEFAULTS.readPartSize,
        attempts: tuning.attempts ?? DIRECT_TRANSFER_DEFAULTS.attempts,
        idleTimeoutMs: options.streamIdleTimeoutMs ?? DIRECT_TRANSFER_DEFAULTS.idleTimeoutMs,
        partMemory: tuning.partMemory ?? DIRECT_TRANSFER_DEFAULTS.partMemory,
        minPutSize: tuning.minPutSize ?? DIRECT_TRANSFER_DEFAULTS.minPutSize,
      });
    }
  }

  #supervisorOptions(): SupervisorOptions {
    return {
      handshakeTimeoutMs: this.#options.handshakeTimeoutMs ?? 30_000,
      logger: this.#logger,
      restart: this.#options.restart ?? { maxCrashes: 5, windowMs: 60_000 },
      shutdownGraceMs: this.#options.shutdownGraceMs ?? 2_000,
      initTimeoutMs: this.#options.defaultTimeoutMs ?? 120_000,
      dataChannel: this.#options.dataChannel ?? true,
      healthCheck: this.#healthCheck(),
    };
  }

  #healthCheck(): HealthCheckSettings {
    const given = this.#options.healthCheck ?? {};
    return {
      intervalMs: given.intervalMs ?? HEALTH_CHECK_DEFAULTS.intervalMs,
      timeoutMs: given.timeoutMs ?? HEALTH_CHECK_DEFAULTS.timeoutMs,
      failures: given.failures ?? HEALTH_CHECK_DEFAULTS.failures,
    };
  }

  #clientOptions(): ClientSettings {
    return {
      defaultTimeoutMs: this.#options.defaultTimeoutMs ?? 120_000,
      dataChannel: this.#options.dataChannel ?? true,
      streamIdleTimeoutMs: this.#options.streamIdleTimeoutMs ?? 120_000,
      logger: this.#logger,
      directTransfer: this.#directTransfer,
      onTransfer: this.#options.onTransfer,
    };
  }

  /**
   * Discovers and launches every executable, connects to every remote plugin service, and learns
   * which plugins each serves. Fails with a clear error when an executable cannot start or no
   * replica of a remote service answers (unless `onLaunchError: "skip"`), or when two executables
   * or services serve the same plugin name and kind.
   */
  async start(): Promise<void> {
    if (this.#started) throw new StowageError(Code.FailedPrecondition, "PluginHost.start() was already called");
    this.#started = true;
    const given: PluginCommand[] = [];
    if (this.#options.pluginDir !== undefined) {
      for (const path of await discoverExecutables(this.#options.pluginDir)) given.push({ command: path });
    }
    for (const p of this.#options.plugins ?? []) given.push(typeof p === "string" ? { command: p } : p);
    const failures: string[] = [];
    // The same command line twice would be launched twice, and each process would serve the same plugins.
    const commands = given.filter((command, i) => {
      const first = given.findIndex((other) => commandKey(other) === commandKey(command)) === i;
      if (!first) failures.push(`plugin ${commandName(command)} is given twice (in the plugin directory or the plugins list); list each executable once`);
      return first;
    });
    const launched = await Promise.allSettled(
      commands.map(async (command) => {
        const supervisor = new Supervisor(command, this.#adapter(command), this.#supervisorOptions());
        try {
          return { supervisor, proc: await supervisor.acquire() };
        } catch (error) {
          await supervisor.close();
          throw error;
        }
      }),
    );
    for (const [i, result] of launched.entries()) {
      const command = commands[i];
      if (command === undefined) continue;
      if (result.status === "rejected") {
        const message = StowageError.from(result.reason).rawMessage;
        if (this.#options.onLaunchError === "skip") this.#logger.error({ plugin: commandName(command) }, `skipping plugin executable: ${message}`);
        else failures.push(message);
        continue;
      }
      const { supervisor, proc } = result.value;
      const pool = this.#newPool(command, supervisor);
      this.#pools.set(`${commandKey(command)}\0\0default`, pool);
      const listed = new Set<string>();
      for (const descriptor of proc.info.plugins) {
        const id = `${descriptor.kind}:${descriptor.name}`;
        const existing = this.#served.get(id);
        if (listed.has(id)) {
          failures.push(`plugin ${commandName(command)} lists the ${descriptor.kind} plugin ${descriptor.name} twice; (kind, name) must be unique within one executable (contract 3.1.9)`);
          continue;
        }
        listed.add(id);
        if (existing !== undefined) {
          failures.push(`${descriptor.kind} plugin ${descriptor.name} is served by both ${servedBy(existing)} and ${commandName(command)}; remove one of them`);
          continue;
        }
        this.#served.set(id, { descriptor, command, runtime: proc.info.runtime });
      }
      this.#grow(pool, command);
    }
    await this.#startRemote(failures);
    if (failures.length > 0) {
      await this.close();
      throw new StowageError(Code.FailedPrecondition, failures.join("\n"));
    }
    this.#logger.debug({ plugins: [...this.#served.keys()] }, "plugin host started");
  }

  /**
   * Connects to every remote plugin service (the first replica that answers) and learns what each
   * serves, with the same refusals as for executables; failures are added to `failures` (or
   * logged and skipped with `onLaunchError: "skip"`).
   */
  async #startRemote(failures: string[]): Promise<void> {
    const specs = this.#options.remote ?? [];
    const adapter = hostAdapter(STOWAGE_PROTOCOL);
    const seen = new Set<string>();
    const services: RemoteService[] = [];
    for (const spec of specs) {
      if (seen.has(spec.address)) {
        failures.push(`remote plugin service ${spec.address} is given twice; list each service once`);
        continue;
      }
      seen.add(spec.address);
      const service = new RemoteService(spec, {
        adapter,
        connectTimeoutMs: this.#options.handshakeTimeoutMs ?? 30_000,
        initTimeoutMs: this.#options.defaultTimeoutMs ?? 120_000,
        logger: this.#logger,
      });
      services.push(service);
      this.#remotes.push(service);
    }
    const started = await Promise.allSettled(services.map((s) => s.start()));
    for (const [i, result] of started.entries()) {
      const service = services[i];
      if (service === undefined) continue;
      if (result.status === "rejected") {
        const message = StowageError.from(result.reason).rawMessage;
        if (this.#options.onLaunchError === "skip") this.#logger.error({ service: service.address }, `skipping remote plugin service: ${message}`);
        else failures.push(message);
        continue;
      }
      const info = result.value;
      for (const descriptor of info.plugins) {
        const id = `${descriptor.kind}:${descriptor.name}`;
        const existing = this.#served.get(id);
        if (existing !== undefined) {
          failures.push(`${descriptor.kind} plugin ${descriptor.name} is served by both ${servedBy(existing)} and remote plugin service ${service.address}; remove one of them`);
          continue;
        }
        this.#served.set(id, { descriptor, command: { command: service.address, protocol: STOWAGE_PROTOCOL }, runtime: info.runtime, remote: service });
      }
    }
  }

  /** Every plugin the host can hand out, sorted by kind and name. */
  plugins(): HostedPlugin[] {
    return [...this.#served.values()]
      .map((s) => {
        if (s.remote !== undefined) return { descriptor: s.descriptor, command: s.remote.address, pid: undefined, pids: [], runtime: s.runtime };
        const members = this.#pools.get(`${commandKey(s.command)}\0\0default`)?.members ?? [];
        const pids = members.flatMap((m) => (m.running && m.current !== undefined ? [m.current.pid] : []));
        return { descriptor: s.descriptor, command: s.command.command, pid: members[0]?.current?.pid, pids, runtime: s.runtime };
      })
      .sort((a, b) => a.descriptor.kind.localeCompare(b.descriptor.kind) || a.descriptor.name.localeCompare(b.descriptor.name));
  }

  #lookup(kind: PluginKind, name: string): Served {
    if (!this.#started || this.#closed) throw new StowageError(Code.FailedPrecondition, "the plugin host is not running: call start() first");
    const served = this.#served.get(`${kind}:${name}`);
    if (served === undefined) {
      const known = [...this.#served.values()].filter((s) => s.descriptor.kind === kind).map((s) => s.descriptor.name);
      throw new StowageError(Code.NotFound, `no ${kind} plugin named ${JSON.stringify(name)}; available: [${known.join(", ")}]`, {
        reason: Reason.PluginNotFound,
        metadata: { plugin: name },
      });
    }
    return served;
  }

  /** The protocol `command` names (an unknown one fails here, naming the executable). */
  #adapter(command: PluginCommand): HostProtocolAdapter {
    try {
      return hostAdapter(command.protocol);
    } catch (error) {
      throw new StowageError(Code.InvalidArgument, `plugin ${commandName(command)}: ${StowageError.from(error).rawMessage}`, { metadata: { command: command.command } });
    }
  }

  /** A pool of `command`'s processes, starting from `first`. */
  #newPool(command: PluginCommand, first: Supervisor): Pool {
    const members = [first];
    return { adapter: first.adapter, members, source: new ProcessPool(() => members, `plugin executable ${commandName(command)}`) };
  }

  /** Adds the (not yet launched) processes `processes` asks for the plugins `command` serves. */
  #grow(pool: Pool, command: PluginCommand): void {
    const counts = [...this.#served.values()].filter((s) => commandKey(s.command) === commandKey(command)).map((s) => this.#processCount(s.descriptor.name));
    const size = Math.max(1, ...counts);
    while (pool.members.length < size) pool.members.push(new Supervisor(command, pool.adapter, this.#supervisorOptions()));
  }

  #processCount(name: string): number {
    const count = this.#options.processes?.plugins?.[name] ?? this.#options.processes?.default ?? 1;
    return count === "auto" ? Math.min(MAX_PROCESSES, availableParallelism()) : count;
  }

  /** Where the clients of `served` for `instance` get a process or a replica, and the protocol they speak. */
  #source(served: Served, instance: string): { adapter: HostProtocolAdapter; source: ProcessSource } {
    if (served.remote !== undefined) return { adapter: hostAdapter(STOWAGE_PROTOCOL), source: served.remote.source(instance) };
    const pool = this.#pool(served.command, instance);
    return { adapter: pool.adapter, source: pool.source };
  }

  #pool(command: PluginCommand, instance: string): Pool {
    const key = `${commandKey(command)}\0\0${instance}`;
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = this.#newPool(command, new Supervisor(command, this.#adapter(command), this.#supervisorOptions()));
      this.#grow(pool, command);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** A client for the named ObjectStore plugin. Call `init` on it before anything else. */
  objectStore(name: string, options: ClientOptions = {}): HostObjectStore {
    const served = this.#lookup("object-store", name);
    const instance = options.instance ?? "default";
    const key = `${name}\0${instance}`;
    let client = this.#objectStores.get(key);
    if (client === undefined) {
      const { adapter, source } = this.#source(served, instance);
      const inner = adapter.objectStore(source, served.descriptor, this.#clientOptions());
      client = new GuardedObjectStore(inner, this.#guard(name, instance));
      this.#objectStores.set(key, client);
    }
    return client;
  }

  /** A client for the named BlockStore plugin. Call `init` on it before anything else. */
  blockStore(name: string, options: ClientOptions = {}): HostBlockStore {
    const served = this.#lookup("block-store", name);
    const instance = options.instance ?? "default";
    const key = `${name}\0${instance}`;
    let client = this.#blockStores.get(key);
    if (client === undefined) {
      const { adapter, source } = this.#source(served, instance);
      const inner = adapter.blockStore(source, served.descriptor, this.#clientOptions());
      client = new GuardedBlockStore(inner, this.#guard(name, instance));
      this.#blockStores.set(key, client);
    }
    return client;
  }

  /** The limits, retries and telemetry of one ObjectStore client; the retry budget is the plugin's. */
  #guard(name: string, instance: string): Guard {
    const given = this.#options.retry;
    const retry: RetrySettings = given === undefined || given === false ? { ...RETRY_DEFAULTS, attempts: 1 } : { ...RETRY_DEFAULTS, ...(definedOnly(given) as Partial<RetrySettings>) };
    let budget = this.#budgets.get(name);
    if (budget === undefined) {
      budget = new RetryBudget(retry.budgetRatio);
      this.#budgets.set(name, budget);
    }
    const telemetry = new OperationTelemetry(name, instance, this.#options.telemetry?.recordKeys === true);
    this.#telemetry.push(telemetry);
    const limits = this.#options.limits?.plugins?.[name] ?? this.#options.limits?.default;
    return { limiter: new CallLimiter(name, limits), retry, budget, telemetry };
  }

  /**
   * Stops every plugin process (Shutdown RPC, grace period, SIGKILL) and waits for them to exit;
   * closes the connections to remote plugin services (which keep running).
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const telemetry of this.#telemetry) telemetry.forget();
    await Promise.all([...[...this.#pools.values()].map((p) => p.source.close()), ...this.#remotes.map((r) => r.close())]);
    await this.#directTransfer?.close();
  }
}
