/**
 * Assertions with messages that say what the contract expects and what the plugin did.
 *
 * @packageDocumentation
 */
import { Code, StowageError, type Reason } from "@stowage/sdk";

/** A conformance violation: the message says which behaviour was expected and what happened. */
export class CaseFailure extends Error {
  /** @param message - Expected and observed behaviour. */
  constructor(message: string) {
    super(message);
    this.name = "CaseFailure";
  }
}

/** Throws a {@link CaseFailure} with `message` unless `condition` holds. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CaseFailure(message);
}

/** `NOT_FOUND`, `INVALID_ARGUMENT`, …: a code as the contract writes it. */
export function codeLabel(code: Code): string {
  const name = Code[code] as string | undefined;
  if (name === undefined) return `code ${String(code)}`;
  if (code === Code.Canceled) return "CANCELLED";
  return name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** Describes an error as the contract would: `NOT_FOUND/OBJECT_NOT_FOUND: message`. */
export function describeFailure(error: unknown): string {
  if (error instanceof StowageError) return `${codeLabel(error.code)}${error.reason === undefined ? "" : `/${error.reason}`}: ${error.rawMessage}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** What an expected error must carry. */
export interface ExpectedError {
  /** The gRPC code. */
  readonly code: Code;
  /** The reason, when the contract names one. */
  readonly reason?: Reason | undefined;
}

function label(expected: ExpectedError): string {
  return `${codeLabel(expected.code)}${expected.reason === undefined ? "" : `/${expected.reason}`}`;
}

/**
 * Awaits `operation` and expects it to fail with the given code (and reason). Returns the error;
 * throws a {@link CaseFailure} naming `what` when it succeeds or fails otherwise.
 */
export async function expectError(what: string, expected: ExpectedError, operation: () => Promise<unknown>): Promise<StowageError> {
  let outcome: unknown;
  try {
    outcome = await operation();
  } catch (error) {
    const converted = StowageError.from(error);
    if (converted.code !== expected.code || (expected.reason !== undefined && converted.reason !== expected.reason)) {
      throw new CaseFailure(`${what}: expected ${label(expected)}, got ${describeFailure(converted)}`);
    }
    return converted;
  }
  throw new CaseFailure(`${what}: expected ${label(expected)}, but it succeeded${outcome === undefined ? "" : ` with ${preview(outcome)}`}`);
}

/** Runs `operation` and turns any error into a {@link CaseFailure} that names `what`. */
export async function expectOk<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (error instanceof CaseFailure) throw error;
    throw new CaseFailure(`${what} failed: ${describeFailure(error)}`);
  }
}

/** A short JSON rendering of a value for messages. */
export function preview(value: unknown, max = 200): string {
  let text: string;
  try {
    text = JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? `<${String(v.byteLength)} bytes>` : v)) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A run of more than 160 non-space characters: abbreviated in reports. */
const LONG_RUN = /\S{161,}/gu;

/**
 * Abbreviates, in text meant for a report, every run of more than 160 non-space characters (a
 * 1 KiB key, an encoded blob) to its first 60 and last 40 characters around the count of those
 * left out, so that no report prints such a key whole.
 */
export function abbreviateLongRuns(text: string): string {
  return text.replace(LONG_RUN, (run) => {
    const chars = Array.from(run); // code points: a pair of surrogates is never split
    return `${chars.slice(0, 60).join("")}…(${String(chars.length - 100)} characters left out)…${chars.slice(-40).join("")}`;
  });
}

/** JSON rendering of a key that shows invisible differences (NFC/NFD, spaces) as escapes. */
export function showKey(key: string): string {
  return JSON.stringify(key).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
