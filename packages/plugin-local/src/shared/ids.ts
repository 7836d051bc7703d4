/**
 * Identifiers of volumes and snapshots: generation and validation.
 *
 * @packageDocumentation
 */
import { randomBytes } from "node:crypto";
import { Code, Reason, StowageError } from "@stowage/sdk";

/**
 * What a volume or snapshot ID may look like: 1 to 128 ASCII letters, digits, `.`, `_` and `-`,
 * starting with a letter or digit. IDs become file names, so this also keeps them from naming
 * anything outside their directory.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A new random ID such as `vol-3f9c0a1b2d4e5f60`. */
export function newId(prefix: "vol" | "snap"): string {
  return `${prefix}-${randomBytes(8).toString("hex")}`;
}

/** Throws `INVALID_ARGUMENT`/`INVALID_NAME` unless `id` matches {@link ID_PATTERN}. */
export function checkId(what: "volume" | "snapshot", id: unknown): asserts id is string {
  if (typeof id !== "string" || !ID_PATTERN.test(id)) {
    throw new StowageError(
      Code.InvalidArgument,
      `${what} ID ${JSON.stringify(id)} is invalid: use 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit`,
      { reason: Reason.InvalidName, metadata: { [`${what}_id`]: String(id) } },
    );
  }
}
