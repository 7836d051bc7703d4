/**
 * Timeouts of a plugin's calls to its storage backend, so that no call waits forever on a store
 * that stopped answering: one set of configuration keys for every plugin, per-request deadlines,
 * and a watchdog for response bodies that stall mid-way.
 *
 * A backend that does not answer within these timeouts fails the call with
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE` (retry with backoff); only the caller's own deadline gives
 * `DEADLINE_EXCEEDED`, and the caller's cancellation `CANCELLED`.
 *
 * @packageDocumentation
 */
import type { Readable } from "node:stream";
import { StowageError } from "../errors.js";
import type { ConfigKeySpec, PluginConfig } from "../types.js";
import { abortError } from "./abort.js";
import { defineConfig, duration, type ConfigKeyDeclaration } from "./config-schema.js";
import { backendUnavailable } from "./http-status.js";

/** The timeouts of one plugin instance, in milliseconds. */
export interface BackendTimeouts {
  /** Longest wait for a connection (TCP and TLS) to the backend. */
  readonly connectTimeoutMs: number;
  /**
   * Longest wait for one backend request, its retries included, until its response starts (an
   * upload request includes sending its body).
   */
  readonly requestTimeoutMs: number;
  /** Longest time a request's connection may carry no byte in either direction, mid-body included. */
  readonly idleTimeoutMs: number;
}

/** Defaults, in seconds (the historical unit of the keys, and of a bare number in them). */
export const DEFAULT_BACKEND_TIMEOUTS = {
  /** `connectTimeout`. */
  connectTimeoutSeconds: 10,
  /** `requestTimeout`. */
  requestTimeoutSeconds: 120,
  /** `idleTimeout`. */
  idleTimeoutSeconds: 60,
} as const;

/** The names of the timeout keys: durations, named without a unit. */
export type BackendTimeoutKey = "connectTimeout" | "requestTimeout" | "idleTimeout";

/**
 * The old, unit-suffixed names of the timeout keys (`connectTimeoutSeconds`,
 * `requestTimeoutSeconds`, `idleTimeoutSeconds`): accepted in configurations as aliases of the
 * {@link BackendTimeoutKey}s. Passed to {@link backendTimeoutDeclarations}, one declares the key
 * under its old name, without alias, as before.
 */
export type LegacyBackendTimeoutKey = `${BackendTimeoutKey}Seconds`;

const ALL_KEYS: readonly BackendTimeoutKey[] = ["connectTimeout", "requestTimeout", "idleTimeout"];

function canonicalKey(key: BackendTimeoutKey | LegacyBackendTimeoutKey): BackendTimeoutKey {
  return key.endsWith("Seconds") ? (key.slice(0, -"Seconds".length) as BackendTimeoutKey) : (key as BackendTimeoutKey);
}

function legacyKey(key: BackendTimeoutKey): LegacyBackendTimeoutKey {
  return `${key}Seconds`;
}

/** The declarations of the timeout keys, for {@link defineConfig}; see {@link backendTimeoutDeclarations}. */
export type BackendTimeoutDeclarations<K extends BackendTimeoutKey | LegacyBackendTimeoutKey> = Readonly<Record<K, ConfigKeyDeclaration<number>>>;

/**
 * The declarations of the backend timeout keys for {@link defineConfig}: `connectTimeout`,
 * `requestTimeout` and `idleTimeout`, durations of at least 1 s (`30s`, `2m`; a bare number is
 * whole seconds, their historical unit), parsed to milliseconds, each with its old name
 * (`connectTimeoutSeconds`, …) as an alias. Every cloud plugin declares them under these names, so
 * one setting means the same thing everywhere; {@link backendTimeouts} turns the parsed values into
 * {@link BackendTimeouts}.
 *
 * @param keys - The keys a plugin enforces; default all three. An old name (`requestTimeoutSeconds`)
 *   declares the key under that name, without alias, as this function did before the rename.
 * @param docs - What each key bounds in this plugin, for its docs table (the reported description stays the shared one).
 */
export function backendTimeoutDeclarations<const K extends BackendTimeoutKey | LegacyBackendTimeoutKey = BackendTimeoutKey>(
  keys: readonly K[] = ALL_KEYS as readonly K[],
  docs: Partial<Readonly<Record<NoInfer<K>, string>>> = {},
): BackendTimeoutDeclarations<K> {
  const d = DEFAULT_BACKEND_TIMEOUTS;
  const all: Record<BackendTimeoutKey, string> = {
    connectTimeout: `Longest wait for a connection to the store (TCP and TLS). Default ${String(d.connectTimeoutSeconds)}.`,
    requestTimeout: `Longest wait for one request to the store, its retries included, until its answer starts (an upload request includes sending its part or block). Default ${String(d.requestTimeoutSeconds)}. Raise it for large parts on slow links.`,
    idleTimeout: `Longest time a request may move no byte in either direction, mid-body included (a store that stopped mid-transfer). Default ${String(d.idleTimeoutSeconds)}.`,
  };
  const out: Partial<Record<K, ConfigKeyDeclaration<number>>> = {};
  for (const name of keys) {
    const key = canonicalKey(name);
    const text = all[key];
    out[name] = {
      description: `${text} A duration (30s, 2m) or whole seconds. A store that misses it fails the call with UNAVAILABLE/BACKEND_UNAVAILABLE.`,
      docs: `${docs[name] ?? text} A duration (\`30s\`, \`2m\`) or whole seconds, at least 1 s. A store that misses it fails the call with UNAVAILABLE/BACKEND_UNAVAILABLE.`,
      ...(name === key ? { aliases: [legacyKey(key)] } : {}),
      value: duration({
        default: d[legacyKey(key)] * 1000,
        bareUnit: "s",
        bareIntegerOnly: true,
        min: 1000,
        invalid: (k, value) => `config key ${k} must be a duration of at least 1s (e.g. 30s, 2m; a bare number is whole seconds), got ${JSON.stringify(value)}`,
        outOfRange: (k, value) => `config key ${k} must be at least 1 (seconds), got ${value}`,
      }),
    };
  }
  return out as BackendTimeoutDeclarations<K>;
}

/**
 * The configuration keys of the backend timeouts, with their descriptions, for a plugin that checks
 * its configuration with `validateConfig` rather than {@link defineConfig}: `connectTimeout`,
 * `requestTimeout` and `idleTimeout` (durations of at least 1 s; a bare number is whole seconds),
 * each followed by its old name (`connectTimeoutSeconds`, …), described as its alias, so that both
 * names pass `validateConfig`; {@link parseBackendTimeouts} reads either.
 *
 * @param keys - The keys a plugin enforces; default all three. An old name gives that key alone, as
 *   this function did before the rename.
 */
export function backendTimeoutConfigKeys(keys: readonly (BackendTimeoutKey | LegacyBackendTimeoutKey)[] = ALL_KEYS): ConfigKeySpec[] {
  return defineConfig(backendTimeoutDeclarations(keys)).keys.flatMap((spec) =>
    (ALL_KEYS as readonly string[]).includes(spec.name) ? [spec, { name: legacyKey(spec.name as BackendTimeoutKey), description: `Alias of ${spec.name} (its old name).` }] : [spec],
  );
}

/**
 * The timeouts from the values a {@link defineConfig} schema parsed (milliseconds under the key
 * names, or under the old names for a schema declared with them); keys a plugin does not declare
 * take {@link DEFAULT_BACKEND_TIMEOUTS}.
 */
export function backendTimeouts(values: Partial<Readonly<Record<BackendTimeoutKey | LegacyBackendTimeoutKey, number>>>): BackendTimeouts {
  const d = DEFAULT_BACKEND_TIMEOUTS;
  return {
    connectTimeoutMs: values.connectTimeout ?? values.connectTimeoutSeconds ?? d.connectTimeoutSeconds * 1000,
    requestTimeoutMs: values.requestTimeout ?? values.requestTimeoutSeconds ?? d.requestTimeoutSeconds * 1000,
    idleTimeoutMs: values.idleTimeout ?? values.idleTimeoutSeconds ?? d.idleTimeoutSeconds * 1000,
  };
}

/**
 * Reads the timeout keys of {@link backendTimeoutDeclarations} (and their old names) from a
 * configuration map (other keys are ignored); absent keys take {@link DEFAULT_BACKEND_TIMEOUTS}. A
 * bad value fails with `INVALID_CONFIG` naming the key as the configuration spelt it.
 */
export function parseBackendTimeouts(config: PluginConfig): BackendTimeouts {
  const names = new Set<string>([...ALL_KEYS, ...ALL_KEYS.map(legacyKey)]);
  return backendTimeouts(defineConfig(backendTimeoutDeclarations()).parse(Object.fromEntries(Object.entries(config).filter(([k]) => names.has(k)))));
}

function seconds(ms: number): string {
  return `${String(Math.round(ms / 100) / 10)} s`;
}

/** A deadline for one backend request; see {@link requestDeadline}. */
export interface RequestDeadline {
  /** Fires when the caller's signal fires (with its reason) or the timeout passes (with an `UNAVAILABLE` StowageError). */
  readonly signal: AbortSignal;
  /** Whether the timeout (not the caller) fired the signal. */
  readonly timedOut: () => boolean;
  /** Stops the timer and detaches from the caller's signal. Call it when the request is answered. */
  readonly clear: () => void;
}

/**
 * A signal for one backend request: it follows the caller's signal and fires by itself after
 * `timeoutMs` with `UNAVAILABLE`/`BACKEND_UNAVAILABLE` ("`what`: the store did not answer within
 * … (requestTimeoutSeconds)", naming the key by its old name, an alias of `requestTimeout`, as the
 * error's `timeout` metadata does: a stable identifier). Call `clear()` once the request is answered.
 */
export function requestDeadline(caller: AbortSignal | undefined, timeoutMs: number, what: string): RequestDeadline {
  const controller = new AbortController();
  let expired = false;
  const onCaller = (): void => {
    controller.abort(caller?.reason);
  };
  if (caller?.aborted === true) controller.abort(caller.reason);
  else caller?.addEventListener("abort", onCaller, { once: true });
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(
      backendUnavailable(`${what}: the store did not answer within ${seconds(timeoutMs)} (requestTimeoutSeconds); it is unreachable or stalled, retry later`, {
        metadata: { timeout: "requestTimeoutSeconds" },
      }),
    );
  }, timeoutMs);
  timer.unref();
  return {
    signal: controller.signal,
    timedOut: () => expired,
    clear: () => {
      clearTimeout(timer);
      caller?.removeEventListener("abort", onCaller);
    },
  };
}

/**
 * Runs one backend request under {@link requestDeadline}. When the deadline's signal fired, the
 * call fails with its reason as a StowageError, whatever the library threw: the caller's
 * cancellation (`CANCELLED`), the caller's deadline (`DEADLINE_EXCEEDED`) or the request timeout
 * (`UNAVAILABLE`/`BACKEND_UNAVAILABLE`). Other failures are passed on unchanged for the plugin to map.
 *
 * @example
 * ```ts
 * const out = await withRequestTimeout(signal, timeouts.requestTimeoutMs, "head object", (s) => client.send(cmd, { abortSignal: s }));
 * ```
 */
export async function withRequestTimeout<T>(caller: AbortSignal | undefined, timeoutMs: number, what: string, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = requestDeadline(caller, timeoutMs, what);
  try {
    return await run(deadline.signal);
  } catch (error) {
    if (deadline.signal.aborted) throw abortError(deadline.signal);
    throw error;
  } finally {
    deadline.clear();
  }
}

/** Options of {@link guardBody}. */
export interface GuardBodyOptions {
  /** Longest time the backend may send nothing while the reader is waiting for data. */
  readonly idleTimeoutMs: number;
  /** What is being read, for messages (e.g. `read object "k" in bucket "b"`). */
  readonly what: string;
  /** The caller's signal: when it fires, the body is destroyed with its reason. */
  readonly signal?: AbortSignal | undefined;
  /** Maps an error the body fails with (a reset, a library error) to a StowageError. */
  readonly mapError: (error: Error) => StowageError;
  /** Called when the body stalls, before it is destroyed (to abort the request behind it). */
  readonly onStall?: (() => void) | undefined;
  /** Extra metadata of the stall error (bucket, key). */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
}

/**
 * Guards a response body that a plugin hands to its caller, in place (no extra stream):
 *
 * - a body whose backend sends nothing for `idleTimeoutMs` while the reader waits is destroyed with
 *   `UNAVAILABLE`/`BACKEND_UNAVAILABLE` (a reader that is slow to read is no stall);
 * - the caller's cancellation or deadline destroys it with `CANCELLED`/`DEADLINE_EXCEEDED`;
 * - any other error it fails with reaches the reader through `mapError`, so as a StowageError.
 *
 * Works with any Readable that receives its data through `push` (a response stream, a PassThrough).
 */
export function guardBody<T extends Readable>(body: T, options: GuardBodyOptions): T {
  const { idleTimeoutMs, signal } = options;
  mapStreamErrors(body, (error) => (error instanceof StowageError ? error : options.mapError(error)));
  let last = Date.now();
  const push = body.push.bind(body);
  body.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    last = Date.now();
    return push(chunk, encoding);
  };
  const timer = setInterval(
    () => {
      if (body.destroyed || body.readableEnded) {
        clearInterval(timer);
        return;
      }
      // A full buffer means the reader is the slow side (a paused reader's buffer fills up to it).
      if (body.readableLength >= body.readableHighWaterMark) last = Date.now();
      else if (Date.now() - last >= idleTimeoutMs) {
        clearInterval(timer);
        options.onStall?.();
        body.destroy(
          backendUnavailable(`${options.what} failed: the store sent no data for ${seconds(idleTimeoutMs)} (idleTimeoutSeconds); it stalled mid-transfer, read again later`, {
            metadata: { ...options.metadata, timeout: "idleTimeoutSeconds" },
          }),
        );
      }
    },
    Math.min(1000, Math.max(50, Math.floor(idleTimeoutMs / 4))),
  );
  timer.unref();
  const onAbort = (): void => {
    if (signal !== undefined) body.destroy(abortError(signal));
  };
  if (signal?.aborted === true) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  body.once("close", () => {
    clearInterval(timer);
    signal?.removeEventListener("abort", onAbort);
  });
  return body;
}

/**
 * Makes every error `stream` fails with pass through `map` first, in place: errors given to
 * `destroy()` (by the stream's owner or its library) and errors its implementation reports while
 * being destroyed, whether or not a reader is already waiting.
 */
export function mapStreamErrors(stream: Readable, map: (error: Error) => Error): void {
  const destroy = stream.destroy.bind(stream);
  stream.destroy = (error?: Error | null): Readable => destroy(error === undefined || error === null ? undefined : map(error));
  const implementation = stream._destroy.bind(stream);
  stream._destroy = (error: Error | null, callback: (error?: Error | null) => void): void => {
    implementation(error, (failure?: Error | null) => {
      callback(failure === null || failure === undefined ? failure : map(failure));
    });
  };
}

/** A watchdog of a transfer's progress; see {@link idleWatchdog}. */
export interface IdleWatchdog {
  /** Records progress (a chunk sent or received). */
  readonly touch: () => void;
  /** Stops watching. */
  readonly stop: () => void;
}

/**
 * Calls `onIdle` once with an `UNAVAILABLE`/`BACKEND_UNAVAILABLE` error when `touch()` was not
 * called for `idleTimeoutMs`: for uploads through libraries that offer no socket timeout, touched
 * each time the library takes a chunk of the body.
 */
export function idleWatchdog(idleTimeoutMs: number, what: string, onIdle: (error: StowageError) => void): IdleWatchdog {
  let last = Date.now();
  const timer = setInterval(
    () => {
      if (Date.now() - last >= idleTimeoutMs) {
        clearInterval(timer);
        onIdle(
          backendUnavailable(`${what} failed: the store took no data and sent no answer for ${seconds(idleTimeoutMs)} (idleTimeoutSeconds); it stalled mid-transfer, retry later`, {
            metadata: { timeout: "idleTimeoutSeconds" },
          }),
        );
      }
    },
    Math.min(1000, Math.max(50, Math.floor(idleTimeoutMs / 4))),
  );
  timer.unref();
  return {
    touch: () => {
      last = Date.now();
    },
    stop: () => {
      clearInterval(timer);
    },
  };
}
