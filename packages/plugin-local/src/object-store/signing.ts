/**
 * Signed URLs: what they carry, how they are signed and checked. The HTTP side is in
 * `signed-url-server.ts`.
 *
 * A signed URL looks like
 * `http://127.0.0.1:40123/object?bucket=b&key=a%2Fb&method=GET&expires=1767225600000&signature=…`.
 * The signature is the HMAC-SHA256, under a secret that never leaves the store instance, of the
 * method, bucket, key and expiry time (milliseconds since the epoch), so none of them can be
 * changed without invalidating the URL. Keys travel as query parameters, not in the path, so that
 * clients cannot normalise `.` or `..` segments away.
 *
 * @packageDocumentation
 */
import type { SignedUrlMethod } from "@stowage/sdk";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** Path of every signed URL. */
export const SIGNED_URL_PATH = "/object";

/** What a signed URL allows. */
export interface SignedUrlClaims {
  /** The only method it may be used with. */
  readonly method: SignedUrlMethod;
  /** Bucket. */
  readonly bucket: string;
  /** Key. */
  readonly key: string;
  /** When it stops working, in milliseconds since the epoch. */
  readonly expiresAtMs: number;
}

/** Signs and checks {@link SignedUrlClaims} with a secret of its own. */
export class UrlSigner {
  readonly #secret: Buffer;

  /** @param secret - HMAC key; a fresh random 32-byte key when absent. */
  constructor(secret: Uint8Array = randomBytes(32)) {
    this.#secret = Buffer.from(secret);
  }

  /** The signature of `claims`, as URL-safe base64. */
  sign(claims: SignedUrlClaims): string {
    const canonical = JSON.stringify([claims.method, claims.bucket, claims.key, claims.expiresAtMs]);
    return createHmac("sha256", this.#secret).update(canonical, "utf8").digest("base64url");
  }

  /** Whether `signature` was made by {@link sign} for exactly these claims (in constant time). */
  verify(claims: SignedUrlClaims, signature: string): boolean {
    const expected = Buffer.from(this.sign(claims), "base64url");
    const given = Buffer.from(signature, "base64url");
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** Builds the URL for `claims` under `base` (an origin, optionally with a path prefix). */
export function buildSignedUrl(base: string, claims: SignedUrlClaims, signature: string): string {
  const query = new URLSearchParams({
    bucket: claims.bucket,
    key: claims.key,
    method: claims.method,
    expires: String(claims.expiresAtMs),
    signature,
  });
  return `${base.replace(/\/+$/, "")}${SIGNED_URL_PATH}?${query.toString()}`;
}

/**
 * Reads the claims and signature from a signed URL's query, or returns `undefined` when a part is
 * missing or malformed. The claims are not verified here.
 */
export function parseSignedQuery(query: URLSearchParams): { claims: SignedUrlClaims; signature: string } | undefined {
  const bucket = query.get("bucket");
  const key = query.get("key");
  const method = query.get("method");
  const expires = query.get("expires");
  const signature = query.get("signature");
  if (bucket === null || key === null || expires === null || signature === null) return undefined;
  if (method !== "GET" && method !== "PUT") return undefined;
  if (!/^\d{1,16}$/.test(expires)) return undefined;
  return { claims: { method, bucket, key, expiresAtMs: Number(expires) }, signature };
}
