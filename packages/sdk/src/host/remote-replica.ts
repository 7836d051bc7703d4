/**
 * One replica of a remote plugin service (docs/protocol.md, network mode) as a member of a
 * {@link ProcessPool}: an mTLS gRPC connection to one `ip:port`, with a session of its own (the
 * `stowage-session` metadata on every call), the host's Inits replayed whenever the replica may
 * have lost them (a new or re-established connection, or a call refused NOT_INITIALIZED), and
 * transport errors that name the replica.
 */
import { randomBytes } from "node:crypto";
import { Client, connectivityState, Metadata, type ServiceError } from "@grpc/grpc-js";
import { Code, Reason, StowageError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { PluginConfig, PluginKind } from "../types.js";
import { fromGrpcError } from "../wire/status.js";
import type { PoolMember } from "./process-pool.js";
import type { ExecutableInfo, HostProtocolAdapter, LaunchedProcess } from "./protocol-adapter.js";
import type { RemoteCredentials } from "./remote-tls.js";
import { RpcChannel } from "./rpc-channel.js";

/** The metadata key that carries a host's session on every call to a network-mode server. */
export const SESSION_METADATA = "stowage-session";

/** Settings of one {@link RemoteReplica}. */
export interface ReplicaSettings {
  /** The service's address as configured (`dns:///name:port`), for messages. */
  readonly service: string;
  /** `host:port` of this replica. */
  readonly address: string;
  /** The name its certificate must carry. */
  readonly serverName: string;
  /** The service's credentials. */
  readonly tls: RemoteCredentials;
  /** The protocol spoken (Stowage's: network mode serves no other). */
  readonly adapter: HostProtocolAdapter;
  /** Deadline of GetPluginInfo when connecting, in ms. */
  readonly connectTimeoutMs: number;
  /** Deadline of a replayed Init, in ms. */
  readonly initTimeoutMs: number;
  readonly logger: Logger;
  /**
   * The plugins (`kind:name`, sorted) the service served when the host started; a replica that
   * serves others is refused. Undefined while the host is starting (the first replica sets it).
   */
  readonly expected: () => readonly string[] | undefined;
}

interface RememberedInit {
  readonly kind: PluginKind;
  readonly name: string;
  readonly config: PluginConfig;
}

/** The sorted `kind:name` list of what an executable or replica serves. */
export function servedKeys(info: ExecutableInfo): string[] {
  return info.plugins.map((p) => `${p.kind}:${p.name}`).sort();
}

/** Keepalive pings every 10 s, 5 s to answer, also without calls: a vanished replica fails its calls within seconds. */
const KEEPALIVE = { "grpc.keepalive_time_ms": 10_000, "grpc.keepalive_timeout_ms": 5_000, "grpc.keepalive_permit_without_calls": 1 } as const;

/** Longest wait before a replica that failed to connect is tried again. */
const MAX_BACKOFF_MS = 30_000;

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

/** Whether a gRPC error came from the server (a status with Stowage's details) rather than from the transport. */
function fromServer(error: unknown): boolean {
  const metadata = (error as Partial<ServiceError> | undefined)?.metadata;
  return metadata instanceof Metadata && metadata.get("grpc-status-details-bin").length > 0;
}

/** A replica of a remote plugin service (a {@link PoolMember}). */
export class RemoteReplica implements PoolMember {
  readonly #settings: ReplicaSettings;
  /** The session of this host on this replica: 128 random bits. */
  readonly #session = randomBytes(16).toString("hex");
  readonly #inits = new Map<string, RememberedInit>();
  /** The Inits this replica holds in the current session (the same objects as in `#inits` when current). */
  readonly #applied = new Map<string, RememberedInit>();
  #client: Client | undefined;
  #handle: LaunchedProcess | undefined;
  #connecting: Promise<LaunchedProcess> | undefined;
  #replaying: Promise<void> | undefined;
  #failure: { error: StowageError; until: number; backoffMs: number } | undefined;
  #lastTransportError: string | undefined;
  /** What a probe found wrong with TLS while the connection is failing. */
  #diagnosis: string | undefined;
  #retired = false;
  #closed = false;
  #retireTimer: NodeJS.Timeout | undefined;

  constructor(settings: ReplicaSettings) {
    this.#settings = settings;
  }

  /** `host:port` of the replica. */
  get address(): string {
    return this.#settings.address;
  }

  /** Calls in flight on its connection. */
  get outstanding(): number {
    return this.#handle?.channel.inFlight ?? 0;
  }

  /** Whether it is connected (a call needs no connection first). */
  get running(): boolean {
    return this.#handle !== undefined && this.#state() === connectivityState.READY;
  }

  /** False once closed or retired (its address left the service). */
  get available(): boolean {
    return !this.#closed && !this.#retired;
  }

  #state(): connectivityState | undefined {
    return this.#client?.getChannel().getConnectivityState(false);
  }

  /** What the replica is, for messages. */
  #what(): string {
    return `the replica ${this.#settings.address} of remote plugin service ${this.#settings.service}`;
  }

  /**
   * Records an Init that succeeded on `from`. When `from` is this replica's connection its session
   * holds it; otherwise it is replayed here before the next call.
   */
  rememberInit(kind: PluginKind, name: string, config: PluginConfig, from: LaunchedProcess): void {
    const key = `${kind}:${name}`;
    const init = { kind, name, config: { ...config } };
    this.#inits.set(key, init);
    if (from === this.#handle && this.#handle !== undefined) this.#applied.set(key, init);
    else this.#applied.delete(key);
  }

  /**
   * The replica's connection, connected (GetPluginInfo, the first time) and holding every
   * remembered Init. Fails at once while the replica cannot be reached, so the pool tries another.
   */
  async acquire(): Promise<LaunchedProcess> {
    if (this.#closed) throw new StowageError(Code.FailedPrecondition, "the plugin host is closed");
    if (this.#retired) throw new StowageError(Code.Unavailable, `${this.#what()} left the service (its address is no longer resolved); retry`, { reason: Reason.PluginCrashed, metadata: this.#metadata() });
    let handle = this.#handle;
    if (handle === undefined) {
      const failure = this.#failure;
      if (failure !== undefined && Date.now() < failure.until) throw failure.error;
      this.#connecting ??= this.#connect().finally(() => {
        this.#connecting = undefined;
      });
      handle = await this.#connecting;
    } else if (this.#state() !== connectivityState.READY) {
      await this.#ready();
    }
    await this.#replayMissing(handle);
    return handle;
  }

  /**
   * Waits until the connection is READY (connecting it when idle), so a call is not sent to a
   * replica that cannot take it; fails at once while grpc-js waits out a failed connection's
   * backoff (it reconnects on its own), so the pool tries another replica.
   */
  async #ready(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    const channel = client.getChannel();
    const deadline = Date.now() + this.#settings.connectTimeoutMs;
    const unreachable = (why: string): StowageError =>
      new StowageError(Code.Unavailable, `${this.#what()} cannot be reached (${why}); the call goes to another replica when there is one`, { reason: Reason.PluginCrashed, metadata: this.#metadata() });
    for (;;) {
      const state = channel.getConnectivityState(true);
      if (state === connectivityState.READY) return;
      if (state === connectivityState.TRANSIENT_FAILURE) throw unreachable(this.#diagnosis ?? this.#lastTransportError ?? "its last connection attempt failed");
      if (state === connectivityState.SHUTDOWN) throw new StowageError(Code.FailedPrecondition, "the plugin host is closed");
      await new Promise<void>((resolve, reject) => {
        channel.watchConnectivityState(state, deadline, (error) => {
          if (error === undefined) resolve();
          else reject(unreachable(`no connection within ${String(this.#settings.connectTimeoutMs)} ms`));
        });
      });
    }
  }

  #metadata(): Record<string, string> {
    return { address: this.#settings.service, replica: this.#settings.address };
  }

  #newClient(): Client {
    const { address, serverName, tls } = this.#settings;
    const client = new Client(address, tls.credentials, {
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
      "grpc.enable_retries": 0,
      "grpc.default_authority": serverName,
      // Node refuses an IP address as a TLS server name; an IP is checked against the IP SANs as it is.
      ...(isIpAddress(serverName) ? {} : { "grpc.ssl_target_name_override": serverName }),
      ...KEEPALIVE,
    });
    this.#watch(client);
    return client;
  }

  /** Leaving READY means the replica may have restarted: the next acquire replays every Init. */
  #watch(client: Client): void {
    const channel = client.getChannel();
    let state = channel.getConnectivityState(false);
    const next = (): void => {
      if (state === connectivityState.SHUTDOWN) return;
      channel.watchConnectivityState(state, Infinity, () => {
        const now = channel.getConnectivityState(false);
        if (now === connectivityState.READY) this.#diagnosis = undefined;
        if (now === connectivityState.TRANSIENT_FAILURE && state !== connectivityState.TRANSIENT_FAILURE) this.#diagnoseInBackground();
        if (state === connectivityState.READY && now !== connectivityState.READY && this.#applied.size > 0) {
          this.#settings.logger.debug({ replica: this.#settings.address, service: this.#settings.service }, "remote replica connection lost; its Inits are replayed before the next call");
          this.#applied.clear();
        }
        state = now;
        next();
      });
    };
    next();
  }

  /** grpc-js says only that a connection failed: one probe says whether TLS refused it, for the next errors. */
  #diagnoseInBackground(): void {
    const { tls, address, serverName } = this.#settings;
    void tls.probe(address, serverName).then(
      (diagnosis) => {
        if (this.#state() === connectivityState.TRANSIENT_FAILURE) this.#diagnosis = diagnosis;
      },
      () => undefined,
    );
  }

  async #connect(): Promise<LaunchedProcess> {
    const { adapter, connectTimeoutMs, logger, service, address } = this.#settings;
    this.#client ??= this.#newClient();
    const client = this.#client;
    const channel = new RpcChannel(client, { [SESSION_METADATA]: this.#session });
    channel.setErrorMapper((error) => this.#mapError(error));
    try {
      const listing = await adapter.describe(channel, connectTimeoutMs, logger);
      if (listing.problems.length > 0) {
        throw new StowageError(Code.FailedPrecondition, `${this.#what()}: its ${adapter.describeMethod} answer breaks the contract, so the host refuses it:\n- ${listing.problems.join("\n- ")}`, { metadata: this.#metadata() });
      }
      // Never a data channel across the network: bodies travel in gRPC messages over TLS, or directly.
      const info: ExecutableInfo = { contractVersion: listing.contractVersion, runtime: listing.runtime, plugins: listing.plugins, dataChannelAddress: "" };
      const expected = this.#settings.expected();
      if (expected !== undefined && servedKeys(info).join(",") !== expected.join(",")) {
        throw new StowageError(
          Code.FailedPrecondition,
          `${this.#what()} serves [${servedKeys(info).join(", ")}] but the service served [${expected.join(", ")}] when the host started; run the same plugin image and allow list on every replica`,
          { metadata: this.#metadata() },
        );
      }
      const handle: LaunchedProcess = { channel, info, pid: -1, name: `${service} (replica ${address})` };
      this.#applied.clear();
      this.#handle = handle;
      this.#failure = undefined;
      logger.debug({ service, replica: address, plugins: servedKeys(info), runtime: info.runtime }, "connected to a remote plugin replica");
      return handle;
    } catch (error) {
      const converted = await this.#diagnose(StowageError.from(error));
      const backoffMs = Math.min(MAX_BACKOFF_MS, (this.#failure?.backoffMs ?? 500) * 2);
      this.#failure = { error: converted, until: Date.now() + backoffMs, backoffMs };
      logger.warn({ service, replica: address }, `cannot use a remote plugin replica: ${converted.rawMessage}`);
      throw converted;
    }
  }

  /**
   * A connection failure grpc-js explains no further ("Failed to connect") may be a TLS refusal that
   * only a handshake of our own reveals (a server drops a client certificate it does not trust
   * after a TLS 1.3 handshake): one probe, and the error says what it found.
   */
  async #diagnose(error: StowageError): Promise<StowageError> {
    const { tls, address, serverName } = this.#settings;
    if (error.code !== Code.Unavailable || tls.explain(error.rawMessage, serverName) !== undefined) return error;
    if (!/Failed to connect|Connection dropped|Socket closed|ECONNRESET/i.test(error.rawMessage)) return error;
    const diagnosis = await tls.probe(address, serverName).catch(() => undefined);
    if (diagnosis === undefined) return error;
    return new StowageError(Code.Unavailable, `${this.#what()} cannot be used: ${diagnosis}`, { reason: Reason.PluginCrashed, metadata: this.#metadata(), cause: error });
  }

  /** Replays every remembered Init this replica's session does not hold, one at a time. */
  async #replayMissing(handle: LaunchedProcess): Promise<void> {
    for (;;) {
      if (this.#replaying !== undefined) {
        await this.#replaying;
        continue;
      }
      const missing = [...this.#inits.entries()].filter(([key, init]) => this.#applied.get(key) !== init);
      if (missing.length === 0) return;
      const replaying = (async () => {
        for (const [key, init] of missing) {
          try {
            await this.#settings.adapter.replayInit?.(handle.channel, init.kind, init.name, init.config, this.#settings.initTimeoutMs);
          } catch (error) {
            const converted = await this.#diagnose(StowageError.from(error));
            throw new StowageError(Code.Unavailable, `${this.#what()} could not be given the Init of plugin ${init.name} again: ${converted.rawMessage}`, {
              reason: Reason.PluginCrashed,
              metadata: this.#metadata(),
              cause: error,
            });
          }
          // A newer Init may have arrived meanwhile; it is replayed on the next turn.
          if (this.#inits.get(key) === init) this.#applied.set(key, init);
        }
      })();
      this.#replaying = replaying;
      try {
        await replaying;
      } finally {
        this.#replaying = undefined;
      }
    }
  }

  /** Whether the host remembers an Init of a plugin named `name` (of either kind). */
  #initialised(name: string | undefined): boolean {
    return name !== undefined && [...this.#inits.values()].some((i) => i.name === name);
  }

  /**
   * A failed call's error: NOT_INITIALIZED for a plugin the host did initialise means the replica
   * lost the session (it restarted, or evicted it), so it becomes UNAVAILABLE and the Inits are
   * replayed before the next call; transport errors name the replica and say what a TLS failure means.
   */
  #mapError(error: unknown): StowageError {
    const converted = fromGrpcError(error);
    if (converted.reason === Reason.NotInitialized && this.#initialised(converted.metadata.plugin)) {
      this.#applied.clear();
      return new StowageError(
        Code.Unavailable,
        `${this.#what()} lost its configuration (it restarted, or dropped the host's session); the host re-sends Init before the next call: retry`,
        { reason: Reason.PluginCrashed, metadata: this.#metadata(), cause: converted },
      );
    }
    if (fromServer(error)) return converted;
    const dropped =
      converted.code === Code.Unavailable ||
      (converted.code === Code.Internal && /RST_STREAM|Connection dropped|Protocol error|ECONNRESET/i.test(converted.rawMessage)) ||
      (converted.code === Code.Canceled && this.#state() !== connectivityState.READY);
    if (!dropped) return converted;
    // grpc-js appends an empty resolution note to connection failures.
    const detail = converted.rawMessage.replace(/[.\s]*Resolution note:\s*$/, "");
    this.#lastTransportError = detail;
    const explained = this.#settings.tls.explain(detail, this.#settings.serverName);
    return new StowageError(
      Code.Unavailable,
      `${this.#what()} failed the call: ${detail}${explained === undefined ? "; the next calls go to the other replicas, and to this one once it answers again" : `. ${explained}`}`,
      { reason: Reason.PluginCrashed, metadata: this.#metadata(), cause: converted },
    );
  }

  /** Takes the replica out of the pool (its address was no longer resolved); closes it once its calls have ended. */
  retire(): void {
    if (this.#retired || this.#closed) return;
    this.#retired = true;
    this.#settings.logger.info({ service: this.#settings.service, replica: this.#settings.address }, "remote plugin replica left the service; closing its connection once its calls end");
    const check = (): void => {
      if (this.outstanding > 0 && !this.#closed) return;
      clearInterval(this.#retireTimer);
      void this.close();
    };
    this.#retireTimer = setInterval(check, 250);
    this.#retireTimer.unref();
    check();
  }

  /** Closes the connection (a remote server is never asked to shut down). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#retireTimer);
    await this.#connecting?.catch(() => undefined);
    this.#client?.close();
  }
}
