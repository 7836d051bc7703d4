/**
 * A remote plugin service (docs/protocol.md, network mode): its address resolved to replicas (every
 * A/AAAA record of a `dns:///` name, as a Kubernetes headless Service gives, or a static list),
 * one {@link RemoteReplica} per replica address and client instance, replicas added and retired as
 * the name resolves again, and a {@link ProcessPool} per instance that balances calls across them.
 */
import { lookup, resolve4, resolve6 } from "node:dns/promises";
import { isIP } from "node:net";
import { Code, Reason, StowageError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { PluginConfig, PluginKind } from "../types.js";
import { ProcessPool } from "./process-pool.js";
import type { ExecutableInfo, HostProtocolAdapter, LaunchedProcess, ProcessSource } from "./protocol-adapter.js";
import { RemoteReplica, servedKeys } from "./remote-replica.js";
import { checkTlsFiles, remoteCredentials, type RemoteCredentials, type RemoteTls } from "./remote-tls.js";

/** A plugin service reached over the network (docs/protocol.md, network mode). */
export interface RemotePluginService {
  /**
   * `dns:///name:port` (every A/AAAA record is a replica: a Kubernetes headless Service), or
   * `host:port` (one replica), or a comma-separated list of `host:port` (a static list of replicas).
   */
  readonly address: string;
  /** How the host authenticates to the servers and checks them. */
  readonly tls: RemoteTls;
  /** How often a dns:/// name is resolved again (default 30 000 ms); also re-resolved when no replica answers. */
  readonly resolveIntervalMs?: number | undefined;
}

/** Resolves a DNS name to its IP addresses (an empty list when it has none). */
export type AddressResolver = (name: string) => Promise<string[]>;

/** Default of {@link RemotePluginService.resolveIntervalMs}. */
export const RESOLVE_INTERVAL_DEFAULT_MS = 30_000;

/** A name resolved again when every replica failed, at most this often. */
const MIN_RERESOLVE_MS = 1_000;

/** Settings a {@link RemoteService} gets from the host. */
export interface RemoteServiceSettings {
  readonly adapter: HostProtocolAdapter;
  /** Deadline of GetPluginInfo when connecting to a replica, in ms. */
  readonly connectTimeoutMs: number;
  /** Deadline of a replayed Init, in ms. */
  readonly initTimeoutMs: number;
  readonly logger: Logger;
  /** Resolves `dns:///` names (default: A and AAAA records, else the system's resolver, so `localhost` works). */
  readonly resolver?: AddressResolver | undefined;
}

interface HostPort {
  readonly host: string;
  readonly port: number;
}

type Target = { readonly kind: "dns"; readonly name: HostPort } | { readonly kind: "static"; readonly replicas: readonly HostPort[] };

function parseHostPort(text: string, address: string): HostPort {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s,/]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || !(port >= 1 && port <= 65535)) {
    throw new StowageError(Code.InvalidArgument, `remote plugin service address ${JSON.stringify(address)}: ${JSON.stringify(text)} is not host:port; write dns:///name:port, host:port, [v6]:port, or a comma-separated list of host:port`);
  }
  return { host, port };
}

/** Parses a {@link RemotePluginService.address}. */
export function parseServiceAddress(address: string): Target {
  if (address.startsWith("dns:")) {
    if (!address.startsWith("dns:///")) throw new StowageError(Code.InvalidArgument, `remote plugin service address ${JSON.stringify(address)}: write dns:///name:port (three slashes: no DNS server authority)`);
    return { kind: "dns", name: parseHostPort(address.slice("dns:///".length), address) };
  }
  return { kind: "static", replicas: address.split(",").map((part) => parseHostPort(part.trim(), address)) };
}

function joinHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${String(port)}` : `${host}:${String(port)}`;
}

/** A and AAAA records of `name`; when it has none (`localhost`), what the system's resolver says. */
export async function resolveAddresses(name: string): Promise<string[]> {
  if (isIP(name) !== 0) return [name];
  const [v4, v6] = await Promise.allSettled([resolve4(name), resolve6(name)]);
  const found = [...(v4.status === "fulfilled" ? v4.value : []), ...(v6.status === "fulfilled" ? v6.value : [])];
  if (found.length > 0) return found;
  const all = await lookup(name, { all: true });
  return all.map((a) => a.address);
}

/** One remote plugin service: its replicas and the pools over them. */
export class RemoteService {
  /** The address as configured. */
  readonly address: string;
  readonly #spec: RemotePluginService;
  readonly #target: Target;
  readonly #settings: RemoteServiceSettings;
  readonly #tls: RemoteCredentials;
  /** The names the replicas' certificates must carry, by replica address. */
  readonly #serverNames = new Map<string, string>();
  #addresses: string[] = [];
  readonly #groups = new Map<string, Map<string, RemoteReplica>>();
  readonly #pools = new Map<string, ProcessSource & { close(): Promise<void> }>();
  readonly #retired = new Set<RemoteReplica>();
  #expected: string[] | undefined;
  #info: ExecutableInfo | undefined;
  #timer: NodeJS.Timeout | undefined;
  #resolving: Promise<boolean> | undefined;
  #resolvedAt = 0;
  #closed = false;

  /** @throws StowageError INVALID_ARGUMENT when the address cannot be parsed. */
  constructor(spec: RemotePluginService, settings: RemoteServiceSettings) {
    this.address = spec.address;
    this.#spec = spec;
    this.#target = parseServiceAddress(spec.address);
    this.#settings = settings;
    this.#tls = remoteCredentials(spec.tls, spec.address);
  }

  /** What the service serves (after {@link start}). */
  get info(): ExecutableInfo | undefined {
    return this.#info;
  }

  /**
   * Checks the TLS files, resolves the address and connects to the first replica that answers,
   * learning what the service serves. Throws a StowageError saying what is wrong when none does.
   */
  async start(): Promise<ExecutableInfo> {
    await checkTlsFiles(this.#spec.tls, this.address);
    await this.#resolve(true);
    let last: unknown;
    for (const replica of this.#members("default")) {
      try {
        const handle = await replica.acquire();
        this.#info = handle.info;
        this.#expected = servedKeys(handle.info);
        break;
      } catch (error) {
        last = error;
      }
    }
    if (this.#info === undefined) {
      const cause = StowageError.from(last);
      throw new StowageError(cause.code, `remote plugin service ${this.address}: no replica answered (${String(this.#addresses.length)} tried): ${cause.rawMessage}`, {
        ...(cause.reason === undefined ? {} : { reason: cause.reason }),
        metadata: { ...cause.metadata, address: this.address },
        cause,
      });
    }
    if (this.#target.kind === "dns") {
      this.#timer = setInterval(() => void this.#resolve(false), this.#spec.resolveIntervalMs ?? RESOLVE_INTERVAL_DEFAULT_MS);
      this.#timer.unref();
    }
    return this.#info;
  }

  /**
   * The addresses of the replicas now. `strict`: a failure or an empty answer throws (at start);
   * otherwise it is logged and the previous replicas are kept. Resolves to whether the set changed.
   */
  async #resolve(strict: boolean): Promise<boolean> {
    if (this.#resolving !== undefined) return this.#resolving;
    const resolving = this.#lookUp(strict).finally(() => {
      this.#resolving = undefined;
    });
    this.#resolving = resolving;
    return resolving;
  }

  async #lookUp(strict: boolean): Promise<boolean> {
    this.#resolvedAt = Date.now();
    const target = this.#target;
    const serverName = this.#spec.tls.serverName;
    let next: string[];
    if (target.kind === "static") {
      next = target.replicas.map((r) => joinHostPort(r.host, r.port));
      for (const [i, r] of target.replicas.entries()) this.#serverNames.set(next[i] ?? "", serverName ?? r.host);
    } else {
      const { host, port } = target.name;
      let ips: string[];
      try {
        ips = await (this.#settings.resolver ?? resolveAddresses)(host);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        if (strict) throw new StowageError(Code.Unavailable, `remote plugin service ${this.address}: cannot resolve ${host} (${code}); check the name and the cluster's DNS`, { metadata: { address: this.address } });
        this.#settings.logger.warn({ service: this.address }, `cannot resolve ${host} again (${code}); keeping the ${String(this.#addresses.length)} replicas known`);
        return false;
      }
      if (ips.length === 0) {
        if (strict) throw new StowageError(Code.Unavailable, `remote plugin service ${this.address}: ${host} resolves to no address; are any replicas ready?`, { metadata: { address: this.address } });
        this.#settings.logger.warn({ service: this.address }, `${host} resolves to no address; keeping the ${String(this.#addresses.length)} replicas known`);
        return false;
      }
      next = [...new Set(ips)].sort().map((ip) => joinHostPort(ip, port));
      for (const a of next) this.#serverNames.set(a, serverName ?? host);
    }
    const changed = next.join(",") !== this.#addresses.join(",");
    if (changed && this.#addresses.length > 0) this.#settings.logger.info({ service: this.address, replicas: next }, "remote plugin service replicas changed");
    this.#addresses = next;
    return changed;
  }

  /** The replicas of `instance` for the current addresses: new ones added, vanished ones retired. */
  #members(instance: string): RemoteReplica[] {
    let group = this.#groups.get(instance);
    if (group === undefined) {
      group = new Map();
      this.#groups.set(instance, group);
    }
    if (this.#closed) return [...group.values()];
    for (const address of this.#addresses) {
      if (!group.has(address)) group.set(address, this.#replica(address));
    }
    for (const [address, replica] of group) {
      if (this.#addresses.includes(address)) continue;
      group.delete(address);
      this.#retired.add(replica);
      replica.retire();
    }
    return [...group.values()];
  }

  #replica(address: string): RemoteReplica {
    const { adapter, connectTimeoutMs, initTimeoutMs, logger } = this.#settings;
    return new RemoteReplica({
      service: this.address,
      address,
      serverName: this.#serverNames.get(address) ?? address,
      tls: this.#tls,
      adapter,
      connectTimeoutMs,
      initTimeoutMs,
      logger,
      expected: () => this.#expected,
    });
  }

  /** The replicas of `instance` now (for tests and `plugins()`). */
  replicas(instance = "default"): readonly RemoteReplica[] {
    return this.#members(instance);
  }

  /**
   * Where the clients of `instance` get a replica: the one with the fewest calls in flight; when
   * none can take the call, the name is resolved again (at most once a second) and the pool tried
   * once more.
   */
  source(instance: string): ProcessSource & { close(): Promise<void> } {
    let source = this.#pools.get(instance);
    if (source !== undefined) return source;
    const pool = new ProcessPool(() => this.#members(instance), `remote plugin service ${this.address}`);
    source = {
      acquire: async (): Promise<LaunchedProcess> => {
        if (this.#addresses.length === 0) throw new StowageError(Code.Unavailable, `remote plugin service ${this.address} has no replica`, { reason: Reason.PluginCrashed, metadata: { address: this.address } });
        try {
          return await pool.acquire();
        } catch (error) {
          if (this.#closed || this.#target.kind === "static" || Date.now() - this.#resolvedAt < MIN_RERESOLVE_MS) throw error;
          if (!(await this.#resolve(false))) throw error;
          return pool.acquire();
        }
      },
      rememberInit: (kind: PluginKind, name: string, config: PluginConfig, from: LaunchedProcess): void => {
        pool.rememberInit(kind, name, config, from);
      },
      close: () => pool.close(),
    };
    this.#pools.set(instance, source);
    return source;
  }

  /** Closes every connection (never asks a server to shut down) and stops resolving. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const replicas = [...[...this.#groups.values()].flatMap((g) => [...g.values()]), ...this.#retired];
    await Promise.all(replicas.map((r) => r.close()));
  }
}
