/**
 * Signed URLs: what they carry, how they are signed and checked. The HTTP side is in
 * `signed-url-server.ts`.
 *
 * A signed URL looks like
 * `http://127.0.0.1:40123/object?bucket=b&key=a%2Fb&method=GET&expires=1767225600000&signature=…`.
 * The signature is the HMAC-SHA256, under a secret key, of the method, bucket, key and expiry time
 * (milliseconds since the epoch), so none of them can be changed without invalidating the URL.
 * Keys travel as query parameters, not in the path, so that clients cannot normalise `.` or `..`
 * segments away.
 *
 * The secret is random per process unless the operator gives one (`signingKey`) or a file that
 * holds it (`signingKeyFile`, created on first use), see {@link loadSigningKey}.
 *
 * @packageDocumentation
 */
import { StowageError, type Logger, type SignedUrlMethod } from "@stowage/sdk";
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { constants } from "node:fs";
import { link, open, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { invalidConfig } from "@stowage/sdk/plugin";
import { errnoCode } from "../shared/fs.js";
import { MIN_SIGNING_KEY_BYTES, type SigningKeySource } from "./config.js";

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

/**
 * The signing key a configuration asks for: random, given inline, or read from a key file. A
 * missing key file is created with mode 0600 holding 32 random bytes in hex (two processes
 * creating it at once agree on one key). A key file that others may read is used, with a warning.
 * Problems fail with `INVALID_CONFIG` (key `signingKeyFile`).
 */
export async function loadSigningKey(source: SigningKeySource, logger: Logger): Promise<Buffer> {
  if (source.kind === "random") return randomBytes(32);
  if (source.kind === "inline") return source.key;
  const { path } = source;
  try {
    await createKeyFile(path);
    const handle = await open(path, constants.O_RDONLY);
    let text: string;
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw invalidConfig("signingKeyFile", `signingKeyFile ${JSON.stringify(path)} is not a regular file`);
      if ((stats.mode & 0o077) !== 0) logger.warn({ path }, "the signing key file may be read by other users; restrict it to mode 0600");
      text = await handle.readFile("utf8");
    } finally {
      await handle.close();
    }
    const key = Buffer.from(text.trim(), "utf8");
    if (key.length < MIN_SIGNING_KEY_BYTES) {
      throw invalidConfig("signingKeyFile", `signingKeyFile ${JSON.stringify(path)} must hold at least ${String(MIN_SIGNING_KEY_BYTES)} bytes of key, it holds ${String(key.length)}`);
    }
    return key;
  } catch (error) {
    if (error instanceof StowageError) throw error;
    throw invalidConfig("signingKeyFile", `signingKeyFile ${JSON.stringify(path)} cannot be used: ${String(error)}`, error);
  }
}

/** Creates the key file unless it exists, atomically (link refuses to replace a file). */
async function createKeyFile(path: string): Promise<void> {
  try {
    await stat(path);
    return;
  } catch (error) {
    if (errnoCode(error) !== "ENOENT") throw error;
  }
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      await handle.chmod(0o600);
      await handle.writeFile(`${randomBytes(32).toString("hex")}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path).catch((error: unknown) => {
      if (errnoCode(error) !== "EEXIST") throw error; // another process made it first: use theirs
    });
  } finally {
    await rm(temp, { force: true });
  }
}
