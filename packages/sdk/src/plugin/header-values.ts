/**
 * Helpers for plugins whose store carries object attributes in HTTP headers (S3, Azure Blob, ...).
 */

const MIME_WORD = /^=\?UTF-8\?B\?([A-Za-z0-9+/=]*)\?=$/i;

/**
 * Makes a metadata value safe for an HTTP header: printable ASCII without surrounding whitespace is
 * kept as it is; anything else travels RFC 2047-encoded (`=?UTF-8?B?…?=`), as S3 itself returns such
 * values. {@link decodeHeaderValue} reverses it.
 *
 * @param value - Any string.
 * @returns A header-safe string.
 */
export function encodeHeaderValue(value: string): string {
  const plain = /^[\x20-\x7e]*$/.test(value) && !value.startsWith("=?") && value.trim() === value;
  return plain ? value : `=?UTF-8?B?${Buffer.from(value, "utf8").toString("base64")}?=`;
}

/**
 * Reverses {@link encodeHeaderValue}: an RFC 2047 B-encoded UTF-8 word is decoded, anything else is
 * returned unchanged.
 *
 * @param value - A header value as the store returned it.
 * @returns The original value.
 */
export function decodeHeaderValue(value: string): string {
  const match = MIME_WORD.exec(value);
  return match === null ? value : Buffer.from(match[1] ?? "", "base64").toString("utf8");
}

/**
 * The complete size from a `Content-Range: bytes 0-9/100` header.
 *
 * @param contentRange - The header's value, if any.
 * @returns The size after the slash, or `undefined` when there is none (or it is `*`).
 */
export function contentRangeTotal(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(contentRange ?? "");
  return match === null ? undefined : Number(match[1]);
}
