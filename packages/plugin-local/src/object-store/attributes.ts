/**
 * Object attributes at the edges: what `putObject` accepts as content type and metadata, and what
 * the signed-URL server sends back.
 *
 * - A content type is empty (unknown) or a media type as RFC 9110 (section 8.3.1) defines it:
 *   `type/subtype` tokens, then `; name=value` parameters whose values are tokens or quoted
 *   strings, in printable ASCII, at most {@link MAX_CONTENT_TYPE_LENGTH} characters.
 * - Metadata keys are RFC 9110 tokens (the characters of an HTTP header name); values are any
 *   well-formed text without control characters (C0, DEL and C1; tab aside), so that every store can carry them
 *   in HTTP headers (contract clause 1.4.3; non-ASCII values travel RFC 2047-encoded there).
 *
 * Anything else fails with `INVALID_ARGUMENT`, naming the field in the message and in the
 * metadata key `field`.
 *
 * @packageDocumentation
 */
import { Code, StowageError } from "@stowage/sdk";

/** Longest content type accepted. */
export const MAX_CONTENT_TYPE_LENGTH = 1024;

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED_STRING = '"(?:[\\t \\x21\\x23-\\x5B\\x5D-\\x7E]|\\\\[\\t \\x21-\\x7E])*"';
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED_STRING}))?)*$`);
const HEADER_NAME = new RegExp(`^${TOKEN}$`);
/** Control characters (C0, DEL, C1) except tab. */
const CONTROL = /(?!\t)\p{Cc}/u;

function invalid(field: string, message: string): StowageError {
  return new StowageError(Code.InvalidArgument, message, { metadata: { field } });
}

/** Whether `value` is a media type as RFC 9110 defines it (see the module description). */
export function isMediaType(value: string): boolean {
  return value.length <= MAX_CONTENT_TYPE_LENGTH && MEDIA_TYPE.test(value);
}

/** Throws `INVALID_ARGUMENT` (field `content_type`) unless `value` is empty or a valid media type. */
export function checkContentType(value: unknown): asserts value is string | undefined {
  if (value === undefined || value === "") return;
  if (typeof value !== "string" || !isMediaType(value)) {
    throw invalid(
      "content_type",
      `content type ${JSON.stringify(value)} is invalid: use a media type such as "application/gzip" or "text/plain; charset=utf-8" (RFC 9110, printable ASCII, at most ${String(MAX_CONTENT_TYPE_LENGTH)} characters)`,
    );
  }
}

/** Throws `INVALID_ARGUMENT` (field `metadata`) unless every key and value is header-safe. */
export function checkMetadata(metadata: Readonly<Record<string, unknown>> | undefined): void {
  for (const [name, value] of Object.entries(metadata ?? {})) {
    if (!HEADER_NAME.test(name)) {
      throw invalid(
        "metadata",
        `metadata key ${JSON.stringify(name)} is invalid: use the characters of an HTTP header name (letters, digits and !#$%&'*+-.^_\`|~), preferably lower-case letters, digits, "-" and "_"`,
      );
    }
    if (typeof value !== "string" || !value.isWellFormed() || CONTROL.test(value)) {
      throw invalid("metadata", `metadata ${JSON.stringify(name)} has an invalid value: use text without control characters (line breaks included)`);
    }
  }
}

/** Media types a browser may run or render as a document (their essence, lower case). */
const ACTIVE_TYPES = new Set([
  "text/html",
  "text/xml",
  "text/xsl",
  "text/javascript",
  "text/ecmascript",
  "application/xhtml+xml",
  "application/xml",
  "application/javascript",
  "application/ecmascript",
  "application/x-javascript",
  "application/pdf",
  "application/x-shockwave-flash",
]);

/**
 * The `Content-Type` the signed-URL server sends for a stored content type: the stored one,
 * except `application/octet-stream` when it is empty, not a valid media type (stored by an
 * earlier version), or active content (HTML, XML, SVG, scripts, PDF, Flash, multipart).
 */
export function servedContentType(stored: string): string {
  if (stored === "" || !isMediaType(stored)) return "application/octet-stream";
  const essence = (stored.split(";")[0] ?? "").trim().toLowerCase();
  if (ACTIVE_TYPES.has(essence) || essence.endsWith("+xml") || essence.startsWith("multipart/")) return "application/octet-stream";
  return stored;
}

/** A `Content-Disposition` that makes browsers download the object, named after the key's last segment. */
export function attachmentDisposition(key: string): string {
  const name = key.slice(key.lastIndexOf("/") + 1);
  if (name === "") return "attachment";
  // RFC 8187: UTF-8, percent-encoded except attr-chars.
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename*=UTF-8''${encoded}`;
}
