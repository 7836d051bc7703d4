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

/**
 * Creates a logger that writes one hclog-shaped JSON object per line (`@level`, `@message`,
 * `@timestamp`, `@module` and the fields) to `destination` (default: stderr, synchronously).
 * Values of fields named in `redact` are replaced by `[REDACTED]`.
 */
export function createHclogLogger(options: {
  readonly level?: LogLevel | undefined;
  readonly module?: string | undefined;
  readonly destination?: DestinationStream | undefined;
  readonly redact?: readonly string[] | undefined;
} = {}): Logger {
  return pino(
    {
      level: options.level ?? "info",
      messageKey: "@message",
      base: options.module === undefined ? null : { "@module": options.module },
      timestamp: () => `,"@timestamp":"${hclogTimestamp(new Date())}"`,
      formatters: {
        level: (label) => ({ "@level": label === "fatal" ? "error" : label }),
      },
      redact: { paths: [...(options.redact ?? [])], censor: "[REDACTED]" },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}

/** A logger that drops everything. */
export const silentLogger: Logger = pino({ level: "silent" });
