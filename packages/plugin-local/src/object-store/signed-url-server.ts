/**
 * The small HTTP server behind signed URLs. It answers only requests that carry a valid, unexpired
 * signature for their method, bucket and key, and serves them through the store's own
 * `getObject` and `putObject`, so a signed PUT is exactly as atomic as any other put.
 *
 * - `GET` streams the object with `Content-Length`, `ETag`, `Last-Modified` and `Content-Type`;
 *   a single `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` is honoured with `206 Partial Content`.
 *   Downloads are served so that no browser runs or renders them: always
 *   `X-Content-Type-Options: nosniff`, `Content-Disposition: attachment` and a sandboxing
 *   `Content-Security-Policy`, and active types (HTML, XML, SVG, scripts...) are sent as
 *   `application/octet-stream` (`attributes.ts`).
 * - `PUT` stores the request body; `Content-Length`, when sent, is checked like `size`, and
 *   `Content-Type` is checked like any content type (`400` when invalid).
 * - A `PUT` replaces the object like `putObject` (contract 5.7.4), so it is refused when a retention
 *   or legal hold protects the object (contract 5.9.7): `409 Conflict`, whose body says what
 *   protects it and until when (the client cannot bypass a governance retention through a URL).
 * - A bad, expired or wrong-method signature gets `403`; a missing object or bucket `404`. Error
 *   bodies never carry file-system paths: refusals for other reasons (`403` for an unsafe path,
 *   `5xx`) say only what the status says, and the details go to the log.
 *
 * The server is unreferenced: it never keeps the process alive by itself.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, type ByteRange, type Logger, type ObjectStore } from "@stowage/sdk";
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pipeline } from "node:stream/promises";
import { attachmentDisposition, servedContentType } from "./attributes.js";
import { SIGNED_URL_PATH, parseSignedQuery, type SignedUrlClaims } from "./signing.js";

/** What the server needs. */
export interface SignedUrlServerOptions {
  /** Address to bind. */
  readonly host: string;
  /** Port to bind; 0 picks a free one. */
  readonly port: number;
  /** Checks signatures (with the store's current key). */
  readonly verify: (claims: SignedUrlClaims, signature: string) => boolean;
  /** Serves the objects. */
  readonly store: Pick<ObjectStore, "getObject" | "putObject" | "headObject">;
  /** The clock, in milliseconds since the epoch. */
  readonly now: () => number;
  /** Where to report failures. */
  readonly logger: Logger;
}

/** A running signed-URL server. */
export class SignedUrlServer {
  readonly #server: Server;
  readonly #options: SignedUrlServerOptions;

  private constructor(server: Server, options: SignedUrlServerOptions) {
    this.#server = server;
    this.#options = options;
  }

  /**
   * Starts a server bound as configured. Fails with `UNAVAILABLE` when the address cannot be
   * bound (in use, not local).
   */
  static async start(options: SignedUrlServerOptions): Promise<SignedUrlServer> {
    // Large uploads and downloads may take long: no overall request deadline, but clients must
    // send their headers promptly.
    const server = createServer({ requestTimeout: 0, headersTimeout: 60_000 });
    const instance = new SignedUrlServer(server, options);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      instance.#handle(req, res).catch((error: unknown) => {
        options.logger.error({ err: error }, "signed URL request failed");
        res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(
          new StowageError(Code.Unavailable, `cannot serve signed URLs on ${options.host}:${options.port}: ${error.message}; fix "signedUrlAddress"`, {
            cause: error,
          }),
        );
      };
      server.once("error", onError);
      server.listen(options.port, options.host, () => {
        server.off("error", onError);
        resolve();
      });
    });
    server.on("error", (error) => options.logger.error({ err: error }, "signed URL server failed"));
    server.unref();
    return instance;
  }

  /** The origin the server listens on, such as `http://127.0.0.1:40123` or `http://[::1]:40123`. */
  get origin(): string {
    const { address, family, port } = this.#server.address() as AddressInfo;
    return family === "IPv6" ? `http://[${address}]:${port}` : `http://${address}:${port}`;
  }

  /** The host and port it was asked to bind (before a port of 0 was resolved). */
  get requestedAddress(): string {
    return `${this.#options.host}:${this.#options.port}`;
  }

  /** Stops accepting requests and drops open connections. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // Every answer, errors included: browsers must take the declared type as it is.
    res.setHeader("X-Content-Type-Options", "nosniff");
    const url = new URL(req.url ?? "/", "http://signed-url.invalid");
    if (url.pathname !== SIGNED_URL_PATH) return reply(res, 404, "no such resource");
    const signed = parseSignedQuery(url.searchParams);
    if (signed === undefined) return reply(res, 403, "malformed signed URL");
    const { claims, signature } = signed;
    if (!this.#options.verify(claims, signature)) return reply(res, 403, "bad signature");
    if (this.#options.now() > claims.expiresAtMs) return reply(res, 403, "signed URL expired");
    if (req.method !== claims.method) return reply(res, 403, `this URL allows ${claims.method} only`);

    // Cancel the store call when the client goes away before the response is complete.
    const controller = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) controller.abort();
    });
    try {
      if (claims.method === "GET") await this.#get(req, res, claims, controller.signal);
      else await this.#put(req, res, claims, controller.signal);
    } catch (error) {
      const failure = StowageError.from(error);
      if (res.headersSent) {
        res.destroy(failure);
        return;
      }
      if (failure.code === Code.Canceled) return reply(res, 499, "cancelled");
      this.#options.logger.debug({ err: failure, method: claims.method, bucket: claims.bucket, key: claims.key }, "signed URL request refused");
      const status = httpStatus(failure);
      reply(res, status, PUBLIC_MESSAGE_STATUSES.has(status) ? failure.rawMessage : (STATUS_CODES[status] ?? "failed"));
    }
  }

  async #get(req: IncomingMessage, res: ServerResponse, claims: SignedUrlClaims, signal: AbortSignal): Promise<void> {
    const ref = { bucket: claims.bucket, key: claims.key };
    let range: ByteRange | undefined;
    const rangeHeader = req.headers.range;
    if (rangeHeader !== undefined) {
      const requested = parseRangeHeader(rangeHeader);
      if (requested !== undefined && "suffix" in requested) {
        const info = await this.#options.store.headObject(ref, { signal });
        if (info === undefined) return reply(res, 404, "no such object");
        if (requested.suffix === 0 || info.size === 0) return reply(res, 416, "range not satisfiable", { "Content-Range": `bytes */${info.size}` });
        range = { offset: Math.max(0, info.size - requested.suffix) };
      } else if (requested !== undefined) {
        // HTTP (RFC 9110 §14.1.2) finds a first byte at or past the end unsatisfiable, where the
        // contract gives an empty body for an offset equal to the size.
        const info = await this.#options.store.headObject(ref, { signal });
        if (info === undefined) return reply(res, 404, "no such object");
        if (requested.first >= info.size) return reply(res, 416, "range not satisfiable", { "Content-Range": `bytes */${info.size}` });
        range = { offset: requested.first, length: requested.last === undefined ? undefined : requested.last - requested.first + 1 };
      }
    }
    const output = await this.#options.store.getObject({ ...ref, range }, { signal });
    const { object, offset, contentLength, body } = output;
    const headers: Record<string, string> = {
      "Content-Type": servedContentType(object.contentType),
      "Content-Length": String(contentLength),
      "Accept-Ranges": "bytes",
      "Content-Disposition": attachmentDisposition(claims.key),
      "Content-Security-Policy": "default-src 'none'; sandbox",
    };
    if (object.etag !== "") headers.ETag = `"${object.etag}"`;
    if (object.lastModified !== undefined) headers["Last-Modified"] = object.lastModified.toUTCString();
    if (range !== undefined) headers["Content-Range"] = `bytes ${offset}-${offset + contentLength - 1}/${object.size}`;
    res.writeHead(range === undefined ? 200 : 206, headers);
    await pipeline(body, res);
  }

  async #put(req: IncomingMessage, res: ServerResponse, claims: SignedUrlClaims, signal: AbortSignal): Promise<void> {
    const length = req.headers["content-length"];
    const size = length === undefined ? undefined : Number(length);
    const result = await this.#options.store.putObject(
      { bucket: claims.bucket, key: claims.key, body: req, size, contentType: req.headers["content-type"] ?? "" },
      { signal },
    );
    res.writeHead(200, result.etag === "" ? {} : { ETag: `"${result.etag}"` });
    res.end();
  }
}

/** A parsed `Range` header: first and optional last byte, or the last `suffix` bytes. */
type RequestedRange = { readonly first: number; readonly last?: number | undefined } | { readonly suffix: number };

/**
 * Parses a single-range `Range` header. Other forms (several ranges, other units) return
 * `undefined`, and the whole object is served, as RFC 9110 allows.
 */
export function parseRangeHeader(header: string): RequestedRange | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, first = "", last = ""] = match;
  if (first === "") return last === "" ? undefined : { suffix: Number(last) };
  const from = Number(first);
  if (last === "") return { first: from };
  const to = Number(last);
  return to < from ? undefined : { first: from, last: to };
}

/** Statuses whose replies carry the error's message (about the request, never a path). */
const PUBLIC_MESSAGE_STATUSES = new Set([400, 404, 409, 416]);

/** The HTTP status that best matches a Stowage error: `409` for a protected object, else by code. */
function httpStatus(error: StowageError): number {
  if (error.reason === Reason.ObjectLocked) return 409;
  switch (error.code) {
    case Code.NotFound:
      return 404;
    case Code.InvalidArgument:
      return 400;
    case Code.OutOfRange:
      return 416;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 507;
    case Code.FailedPrecondition:
    case Code.Unavailable:
      return 503;
    default:
      return 500;
  }
}

function reply(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  const body = `${message}\n`;
  res.writeHead(status, {
    "Content-Type": "text/plain; charset=utf-8",
    "Content-Length": String(Buffer.byteLength(body)),
    ...headers,
  });
  res.end(body);
}
