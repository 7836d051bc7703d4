/**
 * Keeping the values of secret configuration keys out of errors: the values to look for, and the
 * redaction of errors (and of the results that carry errors later: listings, bodies) of a plugin's
 * calls. The registry applies it to every plugin instance it serves.
 *
 * @packageDocumentation
 */
import type { Readable } from "node:stream";
import { StowageError } from "../errors.js";
import type { SecretRedactor } from "../logging.js";
import type { ConfigKeySpec, PluginConfig } from "../types.js";
import { mapStreamErrors } from "./backend-timeouts.js";

/** The non-empty values of the keys `keys` marks `secret`. */
export function secretValues(config: PluginConfig, keys: readonly ConfigKeySpec[]): string[] {
  const secret = new Set(keys.filter((k) => k.secret === true).map((k) => k.name));
  return Object.entries(config)
    .filter(([k, v]) => secret.has(k) && v !== "")
    .map(([, v]) => v);
}

/**
 * `error` with every known secret replaced by `[REDACTED]`: a StowageError keeps its code and
 * reason, with its message and metadata redacted (and its cause dropped); another Error keeps its
 * name, with its message and stack redacted. Errors that contain no secret are returned unchanged.
 */
export function redactError(error: unknown, secrets: SecretRedactor): unknown {
  if (!secrets.active) return error;
  if (error instanceof StowageError) {
    const metadata = Object.entries(error.metadata);
    if (!secrets.contains(error.rawMessage) && !metadata.some(([, v]) => secrets.contains(v))) return error;
    return new StowageError(error.code, secrets.redact(error.rawMessage), {
      ...(error.reason === undefined ? {} : { reason: error.reason }),
      metadata: Object.fromEntries(metadata.map(([k, v]) => [k, secrets.redact(v)])),
    });
  }
  if (error instanceof Error) {
    if (!secrets.contains(`${error.message}\n${error.stack ?? ""}`)) return error;
    const copy = new Error(secrets.redact(error.message));
    copy.name = error.name;
    copy.stack = secrets.redact(error.stack ?? "");
    return copy;
  }
  if (typeof error === "string") return secrets.redact(error);
  return error;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === "object" && value !== null && typeof (value as Record<symbol, unknown>)[Symbol.asyncIterator] === "function";
}

async function* redactIterable<T>(source: AsyncIterable<T>, secrets: SecretRedactor): AsyncGenerator<T, void, undefined> {
  try {
    yield* source;
  } catch (error) {
    throw redactError(error, secrets);
  }
}

function redactResult(value: unknown, secrets: SecretRedactor): unknown {
  // A GetObject answer: its body may fail later.
  const body: unknown = typeof value === "object" && value !== null ? (value as { body?: unknown }).body : undefined;
  if (typeof body === "object" && body !== null && typeof (body as { _destroy?: unknown })._destroy === "function") {
    mapStreamErrors(body as Readable, (error) => redactError(error, secrets) as Error);
  }
  return value;
}

/**
 * A view of a plugin instance whose calls fail with redacted errors (see {@link redactError}):
 * thrown, rejected, raised by a returned async iterable (listings) or by a returned body stream.
 * Methods run on the instance itself, so private fields keep working.
 */
export function redactingProxy<T extends object>(instance: T, secrets: SecretRedactor): T {
  return new Proxy(instance, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      // The direct-transfer methods (contract 5.8) sit on an object of their own.
      if (property === "directTransfer" && typeof value === "object" && value !== null) return redactingProxy(value, secrets);
      if (typeof value !== "function" || property === "constructor") return value;
      return (...args: unknown[]): unknown => {
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (error) {
          throw redactError(error, secrets);
        }
        if (isThenable(result)) {
          return Promise.resolve(result).then(
            (resolved) => redactResult(resolved, secrets),
            (error: unknown) => {
              throw redactError(error, secrets);
            },
          );
        }
        // A listing (an async generator); a stream keeps its type.
        if (isAsyncIterable(result) && typeof (result as { pipe?: unknown }).pipe !== "function") return redactIterable(result, secrets);
        return result;
      };
    },
  });
}
