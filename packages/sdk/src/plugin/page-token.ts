/**
 * Opaque listing page tokens bound to the listing that issued them (contract clause 5.5.11): a token
 * carries the store's own position (a continuation marker, the last key returned, ...) together with
 * the listing's scope (prefix, delimiter, filter), and is refused by any other listing.
 */
import { Code, Reason, StowageError } from "../errors.js";

/**
 * Encodes a store's listing position as a page token bound to `scope`.
 *
 * @param position - The store's own position; must not be empty (an empty token means "no more pages").
 * @param scope - What the listing is for, e.g. its prefix and delimiter, in a fixed order.
 * @returns An opaque, URL-safe token.
 */
export function encodePageToken(position: string, ...scope: readonly string[]): string {
  return Buffer.from(JSON.stringify({ c: position, s: scope }), "utf8").toString("base64url");
}

/**
 * Decodes a token made by {@link encodePageToken} for the same `scope`.
 *
 * @param token - The caller's page token.
 * @param scope - The current listing's scope, in the order it was encoded with.
 * @returns The store's position.
 * @throws StowageError `INVALID_ARGUMENT` / `INVALID_PAGE_TOKEN` for anything else: garbage, or a token
 *   from another listing.
 */
export function decodePageToken(token: string, ...scope: readonly string[]): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  const fields = parsed as { c?: unknown; s?: unknown } | undefined;
  const sameScope = Array.isArray(fields?.s) && fields.s.length === scope.length && scope.every((part, i) => (fields.s as unknown[])[i] === part);
  if (typeof fields?.c !== "string" || fields.c === "" || !sameScope) {
    throw new StowageError(Code.InvalidArgument, "the page token is not valid for this listing; start the listing again without a token", {
      reason: Reason.InvalidPageToken,
    });
  }
  return fields.c;
}
