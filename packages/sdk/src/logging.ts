/**
 * Logging: the minimal logger interface Stowage code depends on (pino loggers satisfy it), and the
 * hclog-shaped JSON line format plugins write on stderr.
 *
 * @packageDocumentation
 */
import { pino, type DestinationStream } from "pino";

/** One logging method: with a fields object and a message, or a message alone. */
export interface LogFn {
  (fields: Record<string, unknown>, message?: string): void;
  (message: string): void;
}

/** The logger interface used across Stowage. Any pino logger satisfies it. */
export interface Logger {
  /** Very verbose diagnostics. */
  trace: LogFn;
  /** Diagnostics. */
  debug: LogFn;
  /** Normal operation. */
  info: LogFn;
  /** Something unexpected that was handled. */
  warn: LogFn;
  /** A failure. */
  error: LogFn;
  /** A logger that adds these fields to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

/** Log levels, in increasing severity (hclog's names). */
export type LogLevel = "trace" | "debug" | "info" | "warn" | "error";

/** Whether `value` names a {@link LogLevel}. */
export function isLogLevel(value: string): value is LogLevel {
  return value === "trace" || value === "debug" || value === "info" || value === "warn" || value === "error";
}

/**
 * Formats a time as hclog's `@timestamp`: RFC 3339 with exactly six fractional digits.
 *
 * @example `hclogTimestamp(new Date(0))` is `"1970-01-01T00:00:00.000000Z"`.
 */
export function hclogTimestamp(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** The text that replaces a secret. */
export const REDACTED = "[REDACTED]";

/** Secret values shorter than this are not searched for in free text (they would match everywhere). */
export const MIN_REDACTED_LENGTH = 4;

/**
 * Values that must never appear in a log line or an error message (the values of configuration
 * keys marked `secret`), grouped by owner (one plugin, one command) so a new configuration replaces
 * the old one's. {@link SecretRedactor.redact} replaces every occurrence, also JSON-escaped or
 * URL-encoded (as an echoed request body would carry it), by `[REDACTED]`.
 *
 * @example
 * ```ts
 * const secrets = new SecretRedactor();
 * secrets.set("stowage.io/ibm-cos", ["s3cr3t-api-key"]);
 * secrets.redact("apikey=s3cr3t-api-key"); // "apikey=[REDACTED]"
 * ```
 */
export class SecretRedactor {
  readonly #byOwner = new Map<string, readonly string[]>();
  #pattern: RegExp | undefined;

  /**
   * Sets the secret values of `owner`, replacing the ones it had. Values shorter than
   * {@link MIN_REDACTED_LENGTH} characters are ignored.
   */
  set(owner: string, values: Iterable<string>): void {
    const kept = [...values].filter((v) => v.length >= MIN_REDACTED_LENGTH);
    if (kept.length === 0) this.#byOwner.delete(owner);
    else this.#byOwner.set(owner, kept);
    const forms = new Set<string>();
    for (const list of this.#byOwner.values()) {
      for (const value of list) {
        forms.add(value);
        forms.add(JSON.stringify(value).slice(1, -1));
        forms.add(encodeURIComponent(value));
        forms.add(new URLSearchParams({ v: value }).toString().slice(2));
      }
    }
    // Longest first, so a secret that contains another is replaced whole.
    const sorted = [...forms].filter((f) => f.length >= MIN_REDACTED_LENGTH).sort((a, b) => b.length - a.length);
    this.#pattern = sorted.length === 0 ? undefined : new RegExp(sorted.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "g");
  }

  /** Whether any secret is known. */
  get active(): boolean {
    return this.#pattern !== undefined;
  }

  /** `text` with every known secret replaced by `[REDACTED]`. */
  redact(text: string): string {
    const pattern = this.#pattern;
    if (pattern === undefined) return text;
    pattern.lastIndex = 0;
    return text.replace(pattern, REDACTED);
  }

  /** Whether `text` contains a known secret. */
  contains(text: string): boolean {
    const pattern = this.#pattern;
    if (pattern === undefined) return false;
    pattern.lastIndex = 0;
    return pattern.test(text);
  }
}

/**
 * Creates a logger that writes one hclog-shaped JSON object per line (`@level`, `@message`,
 * `@timestamp`, `@module` and the fields) to `destination` (default: stderr, synchronously).
 * Values of fields named in `redact` are replaced by `[REDACTED]`; with `secrets`, every known
 * secret value is replaced wherever it appears in a line (message, fields, errors).
 */
export function createHclogLogger(options: {
  readonly level?: LogLevel | undefined;
  readonly module?: string | undefined;
  readonly destination?: DestinationStream | undefined;
  readonly redact?: readonly string[] | undefined;
  readonly secrets?: SecretRedactor | undefined;
} = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  const secrets = options.secrets;
  return pino(
    {
      level: options.level ?? "info",
      messageKey: "@message",
      base: options.module === undefined ? null : { "@module": options.module },
      timestamp: () => `,"@timestamp":"${hclogTimestamp(new Date())}"`,
      formatters: {
        level: (label) => ({ "@level": label === "fatal" ? "error" : label }),
      },
      redact: { paths: [...(options.redact ?? [])], censor: REDACTED },
    },
    secrets === undefined ? destination : { write: (line: string) => destination.write(secrets.redact(line)) },
  );
}

/** A logger that drops everything. */
export const silentLogger: Logger = pino({ level: "silent" });
