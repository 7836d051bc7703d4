/**
 * A test double for what fake-gcs-server lacks of Cloud Storage's object protection: an HTTP proxy
 * in front of a real fake-gcs-server that keeps and enforces object retention, holds and the
 * bucket settings that enable them, and forwards every request to fake-gcs-server.
 *
 * @packageDocumentation
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** Options of {@link startGcsRetentionProxy}. */
export interface GcsRetentionProxyOptions {
  /** The fake-gcs-server's base URL, `http://127.0.0.1:<port>` (`FakeGcsServer.endpoint`). */
  readonly upstream: string;
  /** The proxy's clock (the store's clock of clause 5.9.2). Default `() => new Date()`. */
  readonly now?: () => Date;
}

/** A running {@link startGcsRetentionProxy}. */
export interface GcsRetentionProxy {
  /** The proxy's base URL, `http://127.0.0.1:<port>`: use it as the Cloud Storage endpoint. */
  readonly endpoint: string;
  /** Closes the proxy (fake-gcs-server keeps running). */
  readonly stop: () => Promise<void>;
}

/** A retention as the JSON API writes it. */
interface JsonRetention {
  readonly mode: string;
  readonly retainUntilTime: string;
}

/** What the proxy keeps of a bucket. */
interface BucketState {
  objectRetention: boolean;
  retentionPolicy?: { retentionPeriod: number; isLocked: boolean; effectiveTime: string } | undefined;
}

/** What the proxy keeps of an object's current generation. */
interface ObjectState {
  generation: string;
  retention?: JsonRetention | undefined;
  temporaryHold: boolean;
  eventBasedHold: boolean;
  retentionExpirationTime?: string | undefined;
}

/** The protection a resumable upload session asked for, applied when it completes. */
interface SessionState {
  readonly bucket: string;
  readonly name: string;
  readonly temporaryHold: boolean;
  readonly eventBasedHold: boolean;
  readonly retention?: JsonRetention | undefined;
}

/** A JSON API error answer. */
class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "host", "accept-encoding", "upgrade", "proxy-connection", "te", "trailer"]);

/**
 * Starts an HTTP proxy on 127.0.0.1 (free port) in front of a fake-gcs-server, faithful to the
 * Cloud Storage JSON API for object protection, which fake-gcs-server (v1.55) lacks: it stores an
 * object's `retention` from an upload's metadata and returns it, but enforces nothing, refuses any
 * change to a `Locked` retention (even an extension), cannot remove a retention, and ignores
 * `temporaryHold`, `eventBasedHold`, a bucket's `objectRetention` and `retentionPolicy`.
 *
 * What the proxy models, in the JSON API's status codes and error body
 * (`{error: {code, message, errors: [{domain, reason, message}]}}`):
 *
 * - Buckets: `enableObjectRetention=true` on `buckets.insert` gives the bucket
 *   `objectRetention: {mode: "Enabled"}`; a `retentionPolicy` on insert or `buckets.patch`, and
 *   `buckets.lockRetentionPolicy`, are kept and reported on `buckets.get`/`patch`/`insert`
 *   (shortening or removing a locked policy: 403).
 * - Objects: `retention` (taken from fake-gcs-server's answer to the upload, which stores it),
 *   `temporaryHold` and `eventBasedHold` (from the upload metadata, multipart or resumable, and
 *   `objects.patch`/`update`), and `retentionExpirationTime` (creation time plus the bucket's
 *   policy) are kept per object generation and written into every object resource returned
 *   (`objects.get`, `list`, `patch`, `update`, upload answers).
 * - A retention in a bucket without object retention: 400 `invalid`.
 * - `objects.patch` of `retention`: a `Locked` one may only be extended (403 otherwise); an
 *   `Unlocked` one may be extended freely, but removing, shortening or locking it needs
 *   `overrideUnlockedRetention=true` (403 otherwise); a `retainUntilTime` in the past is 400.
 * - `objects.delete`, and an upload (multipart, media, or a resumable session at its start and at
 *   its last chunk) replacing an object under an active retention, hold or bucket policy: 403
 *   `forbidden` with Cloud Storage's messages ("Object 'b/o' is under active Temporary hold and
 *   cannot be deleted, overwritten or archived until hold is removed.", "… is subject to bucket's
 *   retention policy and cannot be deleted, overwritten or archived until <time>"; for an object
 *   retention the same form, "… is subject to object retention …", is modelled).
 *
 * What it does not model: versioned buckets and noncurrent generations, copies, rewrites and
 * composes onto a protected object, the release of an event-based hold restarting the bucket
 * policy's clock, the 100-year limit of a retain-until time, IAM (every caller may override), and
 * retentions or holds set directly on fake-gcs-server, past the proxy. Requests and answers are
 * buffered whole (test data only).
 *
 * @param options - See {@link GcsRetentionProxyOptions}.
 * @returns The running proxy; call `stop()` when done.
 */
export async function startGcsRetentionProxy(options: GcsRetentionProxyOptions): Promise<GcsRetentionProxy> {
  const upstream = options.upstream.replace(/\/+$/, "");
  const now = options.now ?? ((): Date => new Date());
  const buckets = new Map<string, BucketState>();
  const objects = new Map<string, ObjectState>();
  const sessions = new Map<string, SessionState>();
  let endpoint = "";

  const objectKey = (bucket: string, name: string): string => `${bucket}\u0000${name}`;

  /** Sends a request upstream with the client's method, headers and body. */
  const forward = async (req: IncomingMessage, path: string, body: Buffer): Promise<{ status: number; headers: Headers; body: Buffer }> => {
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    const method = req.method ?? "GET";
    const response = await fetch(`${upstream}${path}`, {
      method,
      headers,
      ...(method === "GET" || method === "HEAD" ? {} : { body: new Uint8Array(body) }),
      redirect: "manual",
    });
    return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
  };

  /** Fetches an object resource upstream, or `undefined` when it does not exist. */
  const upstreamObject = async (bucket: string, name: string): Promise<Record<string, unknown> | undefined> => {
    const response = await fetch(`${upstream}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`);
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) throw new ApiError(response.status, "backendError", `upstream answered ${String(response.status)}`);
    return (await response.json()) as Record<string, unknown>;
  };

  /** The state of the object's current generation, dropped when the generation changed past the proxy. */
  const stateOf = (bucket: string, name: string, generation: unknown): ObjectState | undefined => {
    const state = objects.get(objectKey(bucket, name));
    if (state === undefined) return undefined;
    if (typeof generation === "string" && generation !== state.generation) {
      objects.delete(objectKey(bucket, name));
      return undefined;
    }
    return state;
  };

  /** Writes the proxy's state into an object resource. */
  const decorate = (resource: Record<string, unknown>): Record<string, unknown> => {
    const bucket = resource.bucket;
    const name = resource.name;
    if (typeof bucket !== "string" || typeof name !== "string") return resource;
    const state = stateOf(bucket, name, resource.generation);
    const out: Record<string, unknown> = { ...resource };
    delete out.retention;
    if (state === undefined) return out;
    if (state.retention !== undefined) out.retention = state.retention;
    if (state.temporaryHold) out.temporaryHold = true;
    if (state.eventBasedHold) out.eventBasedHold = true;
    if (state.retentionExpirationTime !== undefined) out.retentionExpirationTime = state.retentionExpirationTime;
    return out;
  };

  const decorateBucket = (resource: Record<string, unknown>): Record<string, unknown> => {
    const name = resource.name;
    const state = typeof name === "string" ? buckets.get(name) : undefined;
    if (state === undefined) return resource;
    return {
      ...resource,
      ...(state.objectRetention ? { objectRetention: { mode: "Enabled" } } : {}),
      ...(state.retentionPolicy === undefined
        ? {}
        : { retentionPolicy: { retentionPeriod: String(state.retentionPolicy.retentionPeriod), effectiveTime: state.retentionPolicy.effectiveTime, ...(state.retentionPolicy.isLocked ? { isLocked: true } : {}) } }),
    };
  };

  /** Throws the 403 Cloud Storage answers for deleting or replacing a protected object. */
  const checkMutable = (bucket: string, name: string): void => {
    const state = objects.get(objectKey(bucket, name));
    if (state === undefined) return;
    const path = `'${bucket}/${name}'`;
    if (state.temporaryHold) throw new ApiError(403, "forbidden", `Object ${path} is under active Temporary hold and cannot be deleted, overwritten or archived until hold is removed.`);
    if (state.eventBasedHold) throw new ApiError(403, "forbidden", `Object ${path} is under active Event-Based hold and cannot be deleted, overwritten or archived until hold is removed.`);
    const at = now().getTime();
    if (state.retention !== undefined && Date.parse(state.retention.retainUntilTime) > at) {
      throw new ApiError(403, "forbidden", `Object ${path} is subject to object retention and cannot be deleted, overwritten or archived until ${state.retention.retainUntilTime}`);
    }
    if (state.retentionExpirationTime !== undefined && Date.parse(state.retentionExpirationTime) > at) {
      throw new ApiError(403, "forbidden", `Object ${path} is subject to bucket's retention policy and cannot be deleted, overwritten or archived until ${state.retentionExpirationTime}`);
    }
  };

  /** Checks a retention asked for in a bucket. */
  const checkNewRetention = (bucket: string, retention: unknown): JsonRetention | undefined => {
    if (retention === undefined || retention === null) return undefined;
    const r = retention as { mode?: unknown; retainUntilTime?: unknown };
    if (buckets.get(bucket)?.objectRetention !== true) {
      throw new ApiError(400, "invalid", `Object retention is not enabled for bucket '${bucket}'; a retention configuration cannot be set on its objects.`);
    }
    if ((r.mode !== "Locked" && r.mode !== "Unlocked") || typeof r.retainUntilTime !== "string" || Number.isNaN(Date.parse(r.retainUntilTime))) {
      throw new ApiError(400, "invalid", "Invalid argument: a retention needs mode Unlocked or Locked and a retainUntilTime.");
    }
    if (Date.parse(r.retainUntilTime) <= now().getTime()) throw new ApiError(400, "invalid", "The retainUntilTime of the retention must be in the future.");
    return { mode: r.mode, retainUntilTime: r.retainUntilTime };
  };

  /** Records a new object generation from an upload's answer. */
  const recordUpload = (bucket: string, resource: Record<string, unknown>, asked: { temporaryHold: boolean; eventBasedHold: boolean; retention?: JsonRetention | undefined }): void => {
    const name = resource.name;
    const generation = resource.generation;
    if (typeof name !== "string" || typeof generation !== "string") return;
    const stored = resource.retention as JsonRetention | undefined;
    const policy = buckets.get(bucket)?.retentionPolicy;
    const created = typeof resource.timeCreated === "string" ? Date.parse(resource.timeCreated) : now().getTime();
    objects.set(objectKey(bucket, name), {
      generation,
      retention: stored !== undefined && typeof stored.mode === "string" && stored.mode !== "" ? { mode: stored.mode, retainUntilTime: stored.retainUntilTime } : asked.retention,
      temporaryHold: asked.temporaryHold,
      eventBasedHold: asked.eventBasedHold,
      ...(policy === undefined ? {} : { retentionExpirationTime: new Date(created + policy.retentionPeriod * 1000).toISOString() }),
    });
  };

  /** The JSON metadata part of a multipart/related upload body. */
  const multipartMetadata = (contentType: string, body: Buffer): Record<string, unknown> => {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
    if (boundary === undefined) return {};
    const text = body.toString("latin1");
    const start = text.indexOf(`--${boundary}`);
    const headerEnd = text.indexOf("\r\n\r\n", start);
    const next = text.indexOf(`\r\n--${boundary}`, headerEnd);
    if (start < 0 || headerEnd < 0 || next < 0) return {};
    try {
      return JSON.parse(Buffer.from(text.slice(headerEnd + 4, next), "latin1").toString("utf8")) as Record<string, unknown>;
    } catch {
      return {};
    }
  };

  const parseJson = (body: Buffer): Record<string, unknown> => {
    if (body.length === 0) return {};
    try {
      const value = JSON.parse(body.toString("utf8")) as unknown;
      return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  };

  const send = (res: ServerResponse, status: number, headers: Headers, body: Buffer | Record<string, unknown>): void => {
    const out: Record<string, string> = {};
    headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name) && name !== "content-encoding") out[name] = value;
    });
    const location = headers.get("location");
    if (location?.startsWith(upstream) === true) out.location = endpoint + location.slice(upstream.length);
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    if (!Buffer.isBuffer(body)) out["content-type"] = "application/json; charset=UTF-8";
    out["content-length"] = String(bytes.length);
    res.writeHead(status, out);
    res.end(bytes);
  };

  const sendError = (res: ServerResponse, error: ApiError): void => {
    send(res, error.status, new Headers(), { error: { code: error.status, message: error.message, errors: [{ domain: "global", reason: error.reason, message: error.message }] } });
  };

  /** Answers with the upstream answer, its JSON resource passed through `transform` when it succeeded. */
  const relay = (res: ServerResponse, answer: { status: number; headers: Headers; body: Buffer }, transform?: (json: Record<string, unknown>) => Record<string, unknown>): void => {
    const isJson = (answer.headers.get("content-type") ?? "").includes("json") && answer.body.length > 0;
    if (transform !== undefined && answer.status >= 200 && answer.status < 300 && isJson) {
      send(res, answer.status, answer.headers, transform(parseJson(answer.body)));
      return;
    }
    send(res, answer.status, answer.headers, answer.body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const path = `${url.pathname}${url.search}`;
    const method = req.method ?? "GET";
    const query = url.searchParams;
    const segments = url.pathname.split("/").map((s) => decodeURIComponent(s));

    // JSON API buckets: /storage/v1/b[/{bucket}[/lockRetentionPolicy]]
    if (segments[1] === "storage" && segments[2] === "v1" && segments[3] === "b" && (segments.length === 4 || (segments.length >= 5 && segments[5] !== "o"))) {
      const bucket = segments[4];
      if (bucket === undefined && method === "POST") {
        const json = parseJson(body);
        const answer = await forward(req, path, body);
        if (answer.status === 200 && typeof json.name === "string") {
          buckets.set(json.name, { objectRetention: query.get("enableObjectRetention") === "true", retentionPolicy: policyOf(json.retentionPolicy, now()) });
        }
        relay(res, answer, decorateBucket);
        return;
      }
      if (bucket !== undefined && segments[5] === "lockRetentionPolicy" && method === "POST") {
        const state = buckets.get(bucket);
        if (state?.retentionPolicy === undefined) throw new ApiError(400, "invalid", `Bucket '${bucket}' has no retention policy to lock.`);
        state.retentionPolicy.isLocked = true;
        const answer = await fetch(`${upstream}/storage/v1/b/${encodeURIComponent(bucket)}`);
        relay(res, { status: answer.status, headers: answer.headers, body: Buffer.from(await answer.arrayBuffer()) }, decorateBucket);
        return;
      }
      if (bucket !== undefined && segments.length === 5 && (method === "PATCH" || method === "PUT")) {
        const json = parseJson(body);
        if ("retentionPolicy" in json) {
          const state = buckets.get(bucket) ?? { objectRetention: false };
          const next = policyOf(json.retentionPolicy, now());
          const old = state.retentionPolicy;
          if (old?.isLocked === true && (next === undefined || next.retentionPeriod < old.retentionPeriod)) {
            throw new ApiError(403, "forbidden", `Bucket '${bucket}' has a locked retention policy which cannot be removed or reduced in duration.`);
          }
          if (next !== undefined && old?.isLocked === true) next.isLocked = true;
          state.retentionPolicy = next;
          buckets.set(bucket, state);
        }
        relay(res, await forward(req, path, body), decorateBucket);
        return;
      }
      if (bucket !== undefined && segments.length === 5 && method === "DELETE") {
        const answer = await forward(req, path, body);
        if (answer.status < 300) buckets.delete(bucket);
        relay(res, answer);
        return;
      }
      relay(res, await forward(req, path, body), (json) => (Array.isArray(json.items) ? { ...json, items: (json.items as Record<string, unknown>[]).map(decorateBucket) } : decorateBucket(json)));
      return;
    }

    // JSON API objects: /storage/v1/b/{bucket}/o[/{object}]
    if (segments[1] === "storage" && segments[2] === "v1" && segments[3] === "b" && segments[5] === "o" && segments[4] !== undefined) {
      const bucket = segments[4];
      const name = segments.length > 6 ? segments.slice(6).join("/") : undefined;
      if (name === undefined) {
        relay(res, await forward(req, path, body), (json) => (Array.isArray(json.items) ? { ...json, items: (json.items as Record<string, unknown>[]).map(decorate) } : json));
        return;
      }
      if (query.get("alt") === "media") {
        relay(res, await forward(req, path, body));
        return;
      }
      if (method === "DELETE") {
        const current = await upstreamObject(bucket, name);
        if (current !== undefined) {
          stateOf(bucket, name, current.generation);
          checkMutable(bucket, name);
        }
        const answer = await forward(req, path, body);
        if (answer.status < 300) objects.delete(objectKey(bucket, name));
        relay(res, answer);
        return;
      }
      if (method === "PATCH" || method === "PUT") {
        const json = parseJson(body);
        const current = await upstreamObject(bucket, name);
        if (current === undefined) {
          relay(res, await forward(req, path, body));
          return;
        }
        const state: ObjectState = stateOf(bucket, name, current.generation) ?? { generation: String(current.generation), temporaryHold: false, eventBasedHold: false };
        const next: ObjectState = { ...state };
        if ("retention" in json) {
          const asked = checkNewRetention(bucket, json.retention);
          const old = state.retention;
          if (old !== undefined) {
            const oldUntil = Date.parse(old.retainUntilTime);
            const sameOrLonger = asked?.mode === old.mode && Date.parse(asked.retainUntilTime) >= oldUntil;
            if (old.mode === "Locked" && !sameOrLonger) {
              throw new ApiError(403, "forbidden", `Object '${bucket}/${name}' has a Locked retention configuration, which cannot be removed, reduced or unlocked.`);
            }
            if (old.mode === "Unlocked" && !sameOrLonger && query.get("overrideUnlockedRetention") !== "true") {
              throw new ApiError(403, "forbidden", `Removing, reducing or locking the Unlocked retention configuration of object '${bucket}/${name}' requires overrideUnlockedRetention=true.`);
            }
          }
          next.retention = asked;
        }
        if (typeof json.temporaryHold === "boolean") next.temporaryHold = json.temporaryHold;
        if (typeof json.eventBasedHold === "boolean") next.eventBasedHold = json.eventBasedHold;
        const rest = { ...json };
        delete rest.retention;
        delete rest.temporaryHold;
        delete rest.eventBasedHold;
        const answer = await forward(req, path, Buffer.from(JSON.stringify(rest)));
        if (answer.status >= 200 && answer.status < 300) objects.set(objectKey(bucket, name), next);
        relay(res, answer, decorate);
        return;
      }
      relay(res, await forward(req, path, body), decorate);
      return;
    }

    // JSON API uploads: /upload/storage/v1/b/{bucket}/o
    if (segments[1] === "upload" && segments[2] === "storage" && segments[3] === "v1" && segments[4] === "b" && segments[6] === "o" && segments[5] !== undefined) {
      const bucket = segments[5];
      const uploadId = query.get("upload_id");
      if (uploadId !== null) {
        const session = sessions.get(uploadId);
        const range = req.headers["content-range"] ?? "";
        const last = /\/\d+$/.test(range);
        if (session !== undefined && last) checkMutable(bucket, session.name);
        const answer = await forward(req, path, body);
        if (session !== undefined && (answer.status === 200 || answer.status === 201)) {
          const json = parseJson(answer.body);
          recordUpload(bucket, json, session);
          sessions.delete(uploadId);
          relay(res, answer, decorate);
          return;
        }
        relay(res, answer);
        return;
      }
      const kind = query.get("uploadType") ?? "media";
      const metadata = kind === "multipart" ? multipartMetadata(req.headers["content-type"] ?? "", body) : kind === "resumable" ? parseJson(body) : {};
      const name = typeof metadata.name === "string" ? metadata.name : (query.get("name") ?? "");
      const asked = { temporaryHold: metadata.temporaryHold === true, eventBasedHold: metadata.eventBasedHold === true, retention: checkNewRetention(bucket, metadata.retention) };
      if (name !== "") {
        const current = await upstreamObject(bucket, name);
        if (current !== undefined) {
          stateOf(bucket, name, current.generation);
          checkMutable(bucket, name);
        }
      }
      const answer = await forward(req, path, body);
      if (kind === "resumable") {
        const location = answer.headers.get("location");
        const id = location === null ? null : new URL(location).searchParams.get("upload_id");
        if (id !== null && answer.status < 300) sessions.set(id, { bucket, name, ...asked });
        relay(res, answer);
        return;
      }
      if (answer.status === 200 || answer.status === 201) {
        recordUpload(bucket, parseJson(answer.body), asked);
        relay(res, answer, decorate);
        return;
      }
      relay(res, answer);
      return;
    }

    relay(res, await forward(req, path, body));
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      handle(req, res, Buffer.concat(chunks)).catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        sendError(res, error instanceof ApiError ? error : new ApiError(502, "backendError", `proxy: ${error instanceof Error ? error.message : String(error)}`));
      });
    });
    req.on("error", () => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  endpoint = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return {
    endpoint,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A bucket retention policy from a request, or `undefined` for none. */
function policyOf(value: unknown, now: Date): BucketState["retentionPolicy"] {
  if (typeof value !== "object" || value === null) return undefined;
  const period = Number((value as { retentionPeriod?: unknown }).retentionPeriod);
  if (!Number.isFinite(period) || period <= 0) return undefined;
  return { retentionPeriod: period, isLocked: false, effectiveTime: now.toISOString() };
}
