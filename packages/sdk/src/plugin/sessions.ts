/**
 * The sessions of network mode: many hosts call one plugin server, each with its own Init
 * configuration, and never share plugin state. Every ObjectStoreService and BlockStoreService call
 * carries the gRPC metadata `stowage-session` (one random value per host connection); the server
 * keeps one {@link PluginRegistry} per (caller identity, session), created on first use, closed
 * when idle for too long or when its identity opens more sessions than allowed (least recently
 * used first). The registry of a session also enforces the allow list.
 */
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { Code, StowageError } from "../errors.js";
import { SecretRedactor, type Logger } from "../logging.js";
import type { BlockStore, ObjectStore, PluginConfig, PluginDescriptor, PluginKind } from "../types.js";
import type { AccessPolicy } from "./allow-list.js";
import { callerIdentity, type CallerIdentity } from "./caller-identity.js";
import type { PluginDefinition } from "./definition.js";
import type { ServiceCall } from "./protocol-adapter.js";
import { PluginRegistry } from "./registry.js";

/** The gRPC metadata key that names the caller's session. */
export const SESSION_METADATA = "stowage-session";

/** What a session value looks like: 16 to 128 characters of `[A-Za-z0-9_-]`. */
export const SESSION_PATTERN = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * The secrets of one session, kept in the process's redactor under owners of their own, so that
 * one session's Init does not replace another's secrets in the process's logs.
 */
class SessionSecrets extends SecretRedactor {
  readonly #shared: SecretRedactor;
  readonly #prefix: string;
  readonly #owners = new Set<string>();

  constructor(shared: SecretRedactor, prefix: string) {
    super();
    this.#shared = shared;
    this.#prefix = prefix;
  }

  override set(owner: string, values: Iterable<string>): void {
    this.#owners.add(owner);
    this.#shared.set(`${this.#prefix}${owner}`, values);
  }

  override get active(): boolean {
    return this.#shared.active;
  }

  override redact(text: string): string {
    return this.#shared.redact(text);
  }

  override contains(text: string): boolean {
    return this.#shared.contains(text);
  }

  /** Forgets this session's secrets (it is closed). */
  clear(): void {
    for (const owner of this.#owners) this.#shared.set(`${this.#prefix}${owner}`, []);
    this.#owners.clear();
  }
}

/** Instance type per kind (as the registry's). */
interface KindMap {
  "object-store": ObjectStore;
  "block-store": BlockStore;
}

/** The registry of one session: refuses the plugins its caller may not use before anything else. */
class SessionRegistry extends PluginRegistry {
  readonly #check: (name: string) => void;

  constructor(definitions: readonly PluginDefinition[], logger: Logger, secrets: SecretRedactor, check: (name: string) => void) {
    super(definitions, logger, secrets);
    this.#check = check;
  }

  override async init(kind: PluginKind, name: string, config: PluginConfig, signal: AbortSignal): Promise<void> {
    this.#check(name);
    await super.init(kind, name, config, signal);
  }

  override get<K extends PluginKind>(kind: K, name: string): KindMap[K] {
    this.#check(name);
    return super.get(kind, name);
  }
}

interface Session {
  readonly caller: CallerIdentity;
  readonly registry: PluginRegistry;
  readonly secrets: SessionSecrets;
  readonly key: string;
  lastUsed: number;
  inFlight: number;
}

/** Options of a {@link SessionTable}. */
export interface SessionTableOptions {
  /** The plugins served. */
  readonly definitions: readonly PluginDefinition[];
  /** The process's logger. */
  readonly logger: Logger;
  /** The process's secret redactor (the logger's). */
  readonly secrets: SecretRedactor;
  /** Who may use which plugin. */
  readonly policy: AccessPolicy;
  /** A session without calls for this long is closed. */
  readonly idleMs: number;
  /** Most sessions one identity keeps; opening one more closes its least recently used idle one. */
  readonly maxSessions: number;
}

/** The most (identity, plugin) pairs whose refusal is logged as a warning; later ones at debug. */
const MAX_WARNED = 1024;

/** A call as the session binding sees it. */
interface BoundCall extends ServiceCall {
  on(event: string, listener: () => void): unknown;
}

/** The sessions of a network-mode server. */
export class SessionTable {
  readonly #options: SessionTableOptions;
  readonly #descriptors: readonly PluginDescriptor[];
  readonly #sessions = new Map<string, Session>();
  readonly #bound = new WeakMap<object, Session | StowageError>();
  readonly #warned = new Set<string>();
  readonly #sweeper: NodeJS.Timeout;
  #next = 0;

  /** @param options - The plugins, the policy and the limits. */
  constructor(options: SessionTableOptions) {
    this.#options = options;
    // Checks the definitions once (names, duplicates): a bad set fails at start, not at the first call.
    this.#descriptors = new PluginRegistry(options.definitions, options.logger, new SecretRedactor()).descriptors();
    this.#sweeper = setInterval(
      () => {
        this.#sweep();
      },
      Math.min(Math.max(Math.floor(options.idleMs / 2), 50), 60_000),
    );
    this.#sweeper.unref();
  }

  /** Every plugin served. */
  get descriptors(): readonly PluginDescriptor[] {
    return this.#descriptors;
  }

  /** How many sessions are open. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The plugins the caller of `call` may use. */
  pluginsFor(call: ServiceCall): readonly PluginDescriptor[] {
    const caller = callerIdentity(call);
    const visible = this.#descriptors.filter((d) => this.#options.policy.allows(caller, d.name));
    if (visible.length === 0) this.#warnRefused(caller, "*");
    return visible;
  }

  /**
   * Binds every handler of a service implementation to the caller's session: the session is found
   * (or opened) as the call arrives, counted busy until the call ends, and handed to
   * {@link registryFor}. A call whose session cannot be had fails with that error when the handler
   * asks for its registry.
   */
  bindSessions(implementation: UntypedServiceImplementation): UntypedServiceImplementation {
    const bound: UntypedServiceImplementation = {};
    for (const [name, handler] of Object.entries(implementation)) {
      const original = handler as (call: BoundCall, callback?: unknown) => void;
      bound[name] = (call: BoundCall, callback?: unknown): void => {
        let session: Session;
        try {
          session = this.#open(call);
        } catch (error) {
          this.#bound.set(call, StowageError.from(error));
          original(call, callback);
          return;
        }
        this.#bound.set(call, session);
        session.inFlight += 1;
        let ended = false;
        const end = (): void => {
          if (ended) return;
          ended = true;
          session.inFlight -= 1;
          session.lastUsed = Date.now();
        };
        call.on("cancelled", end);
        if (typeof callback === "function") {
          const reply = callback as (...args: unknown[]) => void;
          original(call, (...args: unknown[]) => {
            end();
            reply(...args);
          });
        } else {
          call.on("finish", end);
          call.on("close", end);
          call.on("error", end);
          original(call);
        }
      };
    }
    return bound;
  }

  /** The registry of the call's session; throws why the call has none. */
  registryFor(call: ServiceCall): PluginRegistry {
    const bound = this.#bound.get(call) ?? this.#open(call);
    if (bound instanceof StowageError) throw bound;
    return bound.registry;
  }

  /** Closes every session (the server is stopping). */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await Promise.allSettled([...this.#sessions.values()].map((session) => this.#close(session, "the server is stopping")));
  }

  /** Finds or opens the session of a call. */
  #open(call: ServiceCall): Session {
    const value = call.metadata.get(SESSION_METADATA)[0];
    const id = typeof value === "string" ? value : undefined;
    if (id === undefined || !SESSION_PATTERN.test(id)) {
      const got = value === undefined ? "the call has none" : typeof value === "string" ? `got ${String(value.length)} characters, not all of them allowed` : "got a binary value";
      throw new StowageError(
        Code.InvalidArgument,
        `network mode needs the gRPC metadata "${SESSION_METADATA}" on every ObjectStoreService and BlockStoreService call: 16 to 128 characters of A-Z, a-z, 0-9, "_" and "-", one random value per connection (${got}; docs/protocol.md "Network mode")`,
      );
    }
    const caller = callerIdentity(call);
    const key = `${caller.key}\u0000${id}`;
    const found = this.#sessions.get(key);
    if (found !== undefined) {
      found.lastUsed = Date.now();
      return found;
    }
    const own = [...this.#sessions.values()].filter((s) => s.caller.key === caller.key);
    if (own.length >= this.#options.maxSessions) {
      const idle = own.filter((s) => s.inFlight === 0).sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (idle === undefined) {
        throw new StowageError(
          Code.ResourceExhausted,
          `the caller identified as ${caller.display} has ${String(own.length)} sessions with calls in flight, the most this server keeps per identity (--max-sessions): let calls finish, share connections, or raise the limit`,
        );
      }
      void this.#close(idle, "its identity opened more sessions than --max-sessions allows");
    }
    const secrets = new SessionSecrets(this.#options.secrets, `session-${String(this.#next++)}/`);
    const logger = this.#options.logger.child({ identity: caller.display });
    const registry = new SessionRegistry(this.#options.definitions, logger, secrets, (plugin) => {
      if (!this.#options.policy.allows(caller, plugin)) {
        this.#warnRefused(caller, plugin);
        throw this.#options.policy.denied(caller, plugin);
      }
    });
    const session: Session = { caller, registry, secrets, key, lastUsed: Date.now(), inFlight: 0 };
    this.#sessions.set(key, session);
    this.#options.logger.debug({ identity: caller.display, sessions: own.length + 1 }, "session opened");
    return session;
  }

  /** Closes the sessions idle for longer than the limit. */
  #sweep(): void {
    const now = Date.now();
    for (const session of this.#sessions.values()) {
      if (session.inFlight === 0 && now - session.lastUsed > this.#options.idleMs) void this.#close(session, "idle");
    }
  }

  async #close(session: Session, why: string): Promise<void> {
    if (this.#sessions.get(session.key) !== session) return;
    this.#sessions.delete(session.key);
    this.#options.logger.debug({ identity: session.caller.display, why }, "session closed");
    try {
      await session.registry.close();
    } finally {
      session.secrets.clear();
    }
  }

  #warnRefused(caller: CallerIdentity, plugin: string): void {
    const pair = `${caller.key} ${plugin}`;
    const first = !this.#warned.has(pair) && this.#warned.size < MAX_WARNED;
    if (first) this.#warned.add(pair);
    const fields = { identity: caller.display, identities: caller.names.join(", "), plugin };
    const message = plugin === "*" ? "a caller the allow list gives no plugin asked which plugins are served" : "refused a caller the allow list does not give this plugin";
    if (first) this.#options.logger.warn(fields, message);
    else this.#options.logger.debug(fields, message);
  }
}
