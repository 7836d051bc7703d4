/**
 * The settings of network mode: `serve()`'s `network` option and the flags that give the same
 * settings on the command line (`--listen`, `--tls-cert`, …), merged and checked before the server
 * starts. A bad setting stops the start with a message saying what to fix.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

/** Settings of `serve()`'s network mode (docs/protocol.md "Network mode"); each also has a flag. */
export interface NetworkServeOptions {
  /** `HOST:PORT` to serve mTLS on (`--listen`), e.g. `0.0.0.0:7443`; port 0 picks a free one. */
  readonly listen?: string | undefined;
  /** PEM file of the server's certificate chain (`--tls-cert`); reloaded when it changes. */
  readonly tlsCert?: string | undefined;
  /** PEM file of the server's private key (`--tls-key`); reloaded when it changes. */
  readonly tlsKey?: string | undefined;
  /** PEM file of the CA(s) that sign client certificates (`--tls-client-ca`); reloaded when it changes. */
  readonly tlsClientCa?: string | undefined;
  /** How often the three files are read again, in ms (`--tls-refresh-ms`, default 60000). */
  readonly tlsRefreshMs?: number | undefined;
  /** `HOST:PORT` of a plaintext port serving only `grpc.health.v1.Health` (`--health-listen`), for probes. */
  readonly healthListen?: string | undefined;
  /** JSON file of the allow list (`--allow`); without one every verified client may use every plugin. */
  readonly allow?: string | undefined;
  /** How long in-flight calls may run on after SIGTERM, in ms (`--drain-ms`, default 20000). */
  readonly drainMs?: number | undefined;
  /** A session without calls for this long is closed, in ms (`--session-idle-ms`, default 1800000). */
  readonly sessionIdleMs?: number | undefined;
  /** Most sessions per caller identity (`--max-sessions`, default 64). */
  readonly maxSessions?: number | undefined;
}

/** Network-mode settings after defaults and checks. */
export interface NetworkSettings {
  readonly listen: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly tlsClientCa: string;
  readonly tlsRefreshMs: number;
  readonly healthListen: string | undefined;
  readonly allow: string | undefined;
  readonly drainMs: number;
  readonly sessionIdleMs: number;
  readonly maxSessions: number;
}

/** Defaults of the numeric settings. */
export const NETWORK_DEFAULTS = { tlsRefreshMs: 60_000, drainMs: 20_000, sessionIdleMs: 1_800_000, maxSessions: 64 } as const;

const STRING_FLAGS = { listen: "--listen", tlsCert: "--tls-cert", tlsKey: "--tls-key", tlsClientCa: "--tls-client-ca", healthListen: "--health-listen", allow: "--allow" } as const;
const NUMBER_FLAGS = { tlsRefreshMs: "--tls-refresh-ms", drainMs: "--drain-ms", sessionIdleMs: "--session-idle-ms", maxSessions: "--max-sessions" } as const;

/** The value of `flag` in server-style arguments (`--flag=value` or `--flag value`), the last one winning. */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg.startsWith(`${flag}=`)) value = arg.slice(flag.length + 1);
    else if (arg === flag) value = argv[i + 1];
  }
  return value;
}

/**
 * Reads the network-mode flags from server-style arguments, accepting `--flag=value` and
 * `--flag value` and ignoring every other flag. Numbers are left as given; {@link networkSettings}
 * checks them.
 */
export function networkOptionsFromArgs(argv: readonly string[]): Record<keyof NetworkServeOptions, string | undefined> {
  const out = {} as Record<keyof NetworkServeOptions, string | undefined>;
  for (const [key, flag] of Object.entries({ ...STRING_FLAGS, ...NUMBER_FLAGS }) as [keyof NetworkServeOptions, string][]) out[key] = flagValue(argv, flag);
  return out;
}

/** Whether `serve()` runs in network mode: `--listen` is given or `options` is set. */
export function wantsNetwork(argv: readonly string[], options: NetworkServeOptions | undefined): boolean {
  return options !== undefined || flagValue(argv, STRING_FLAGS.listen) !== undefined;
}

/** Checks `HOST:PORT` (`[v6]:PORT` too); returns it. */
function checkAddress(value: string, flag: string): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) {
    throw new Error(`${flag} ${JSON.stringify(value)} is not HOST:PORT; write e.g. ${flag} 0.0.0.0:7443 (port 0 picks a free port)`);
  }
  return value;
}

function checkCount(value: number | string | undefined, flag: string, fallback: number, minimum: number): number {
  if (value === undefined || value === "") return fallback;
  const n = typeof value === "number" ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < minimum) throw new Error(`${flag} must be a whole number of at least ${String(minimum)}, got ${JSON.stringify(String(value))}`);
  return n;
}

/** Reads a PEM file at start so a wrong path or a wrong file stops the start (never prints its content). */
function checkPem(file: string, flag: string, what: "certificate" | "key"): void {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (error) {
    throw new Error(`cannot read ${flag} ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    if (what === "certificate") new X509Certificate(pem);
    else createPrivateKey(pem);
  } catch (error) {
    throw new Error(`${flag} ${file} is not a PEM ${what === "certificate" ? "certificate" : "private key"} (${(error as Error).message})`, { cause: error });
  }
}

/**
 * Merges `options` (each field wins) over the flags in `argv`, applies the defaults and checks
 * everything: the three TLS files are required (network mode never serves plaintext) and must be
 * readable PEM.
 *
 * @throws Error saying which setting is wrong and how to fix it.
 */
export function networkSettings(argv: readonly string[], options: NetworkServeOptions = {}): NetworkSettings {
  const flags = networkOptionsFromArgs(argv);
  const pick = (key: keyof typeof STRING_FLAGS): string | undefined => {
    const value = options[key] ?? flags[key];
    return value === "" ? undefined : value;
  };
  const listen = pick("listen");
  if (listen === undefined) throw new Error("network mode needs --listen HOST:PORT (or ServeOptions.network.listen), e.g. --listen 0.0.0.0:7443");
  const tls = { tlsCert: pick("tlsCert"), tlsKey: pick("tlsKey"), tlsClientCa: pick("tlsClientCa") };
  const missing = (Object.keys(tls) as (keyof typeof tls)[]).filter((k) => tls[k] === undefined).map((k) => STRING_FLAGS[k]);
  if (tls.tlsCert === undefined || tls.tlsKey === undefined || tls.tlsClientCa === undefined) {
    throw new Error(
      `network mode needs --tls-cert, --tls-key and --tls-client-ca (missing: ${missing.join(", ")}): it never serves plaintext and requires client certificates; give the PEM files of the server's certificate, its private key, and the CA that signs the hosts' client certificates`,
    );
  }
  checkPem(tls.tlsCert, STRING_FLAGS.tlsCert, "certificate");
  checkPem(tls.tlsKey, STRING_FLAGS.tlsKey, "key");
  checkPem(tls.tlsClientCa, STRING_FLAGS.tlsClientCa, "certificate");
  const healthListen = pick("healthListen");
  return {
    listen: checkAddress(listen, STRING_FLAGS.listen),
    tlsCert: tls.tlsCert,
    tlsKey: tls.tlsKey,
    tlsClientCa: tls.tlsClientCa,
    tlsRefreshMs: checkCount(options.tlsRefreshMs ?? flags.tlsRefreshMs, NUMBER_FLAGS.tlsRefreshMs, NETWORK_DEFAULTS.tlsRefreshMs, 1),
    healthListen: healthListen === undefined ? undefined : checkAddress(healthListen, STRING_FLAGS.healthListen),
    allow: pick("allow"),
    drainMs: checkCount(options.drainMs ?? flags.drainMs, NUMBER_FLAGS.drainMs, NETWORK_DEFAULTS.drainMs, 0),
    sessionIdleMs: checkCount(options.sessionIdleMs ?? flags.sessionIdleMs, NUMBER_FLAGS.sessionIdleMs, NETWORK_DEFAULTS.sessionIdleMs, 1),
    maxSessions: checkCount(options.maxSessions ?? flags.maxSessions, NUMBER_FLAGS.maxSessions, NETWORK_DEFAULTS.maxSessions, 1),
  };
}
