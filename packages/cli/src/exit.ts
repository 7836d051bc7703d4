/**
 * Exit statuses and the one place that turns a failure into a message on stderr.
 *
 * @packageDocumentation
 */
import { constants } from "node:os";
import { Code, Reason, StowageError } from "@stowage/sdk";
import { cliSecrets } from "./secrets.js";

/** Exit status of a failed command. */
export const EXIT_FAILURE = 1;
/** Exit status of a usage or configuration error (bad option, unknown plugin, plugin that cannot start). */
export const EXIT_USAGE = 2;
const usageErrors = new WeakSet<object>();
const interrupts = new WeakMap<object, number>();

/** A {@link StowageError} with {@link Code.InvalidArgument} for a bad option or argument. */
export function usageError(message: string): StowageError {
  return new StowageError(Code.InvalidArgument, message);
}

/**
 * Marks `error` as a usage or configuration error (exit status 2), for failures whose code alone
 * does not say so — for example a plugin executable that fails to start.
 */
export function markUsage<T extends object>(error: T): T {
  usageErrors.add(error);
  return error;
}

/** The error a command ends with when it is interrupted by `signal` (exit status 128 + its number). */
export function interruptError(signal: NodeJS.Signals): StowageError {
  const error = new StowageError(Code.Canceled, `interrupted (${signal})`);
  interrupts.set(error, 128 + constants.signals[signal]);
  return error;
}

/**
 * The exit status for a failure: 128 + the signal's number after an interrupt; 2 for usage and configuration errors
 * (invalid arguments, an unknown plugin, an invalid plugin config, errors marked with
 * {@link markUsage}); 1 otherwise.
 */
export function exitCodeOf(error: unknown): number {
  if (typeof error === "object" && error !== null) {
    const interrupted = interrupts.get(error);
    if (interrupted !== undefined) return interrupted;
    if (usageErrors.has(error)) return EXIT_USAGE;
  }
  if (!(error instanceof StowageError)) return EXIT_FAILURE;
  if (error.code === Code.InvalidArgument) return EXIT_USAGE;
  if (error.reason === Reason.PluginNotFound || error.reason === Reason.InvalidConfig) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/**
 * The text printed after `stowage: ` for a failure: the message without stack or code prefix, with
 * the secret `--config` values redacted.
 */
export function describeError(error: unknown): string {
  const text = error instanceof StowageError ? error.rawMessage : error instanceof Error ? error.message : String(error);
  return cliSecrets.redact(text);
}

/** Prints `stowage: <message>` on stderr (every line prefixed) and returns the exit status for `error`. */
export function reportError(error: unknown): number {
  const message = describeError(error).trimEnd();
  process.stderr.write(`stowage: ${message.replaceAll("\n", "\nstowage: ")}\n`);
  return exitCodeOf(error);
}
