/**
 * A test double of Azure Blob's version-level immutability (immutable storage with versioning), as
 * an HTTP proxy in front of a real Azurite. Azurite 3.36 parses the immutability headers but stores
 * nothing of them, and its Set/Delete Blob Immutability Policy and Set Blob Legal Hold handlers are
 * stubs that answer `501 APINotImplemented` (`BlobHandler.setImmutabilityPolicy` and friends throw
 * `NotImplementedError`); its containers never report
 * `x-ms-immutable-storage-with-versioning-enabled`.
 *
 * What the proxy models, per blob, in memory, for the containers named at construction:
 *
 * - Put Blob and Put Block List with `x-ms-immutability-policy-until-date`,
 *   `x-ms-immutability-policy-mode` (`Unlocked`/`Locked`) and `x-ms-legal-hold`: forwarded to
 *   Azurite unchanged (they are signed), and on success the new current version gets that
 *   protection and an `x-ms-version-id`. Like Azure with versioning, an overwrite or a Delete Blob
 *   of the current version succeeds and turns it into a *previous version* that keeps its policy
 *   and hold (its content is not kept by the double: Azurite has replaced or deleted it).
 * - Delete Blob with `versionid`: a protected previous version is refused with `409`
 *   `BlobImmutableDueToPolicy` or `BlobImmutableDueToLegalHold`; an unprotected one is removed.
 * - `PUT ?comp=immutabilityPolicies`: sets the policy; a `Locked` policy that has not expired can
 *   only be extended and stay `Locked` (otherwise `409 BlobImmutableDueToPolicy`); the time is
 *   truncated to whole seconds, as Azure does. `DELETE ?comp=immutabilityPolicies` removes an
 *   `Unlocked` (or expired) policy, and refuses a `Locked` one the same way. `PUT ?comp=legalhold`
 *   sets `x-ms-legal-hold`. These three are first sent to Azurite, which authenticates them and
 *   answers `501`; the double then answers in Azure's place, so a bad signature still fails at
 *   Azurite.
 * - Get Blob and Get Blob Properties of a blob in such a container report
 *   `x-ms-immutability-policy-until-date` (RFC 1123), `x-ms-immutability-policy-mode` (lower case,
 *   as Azure answers), `x-ms-legal-hold`, `x-ms-version-id` and `x-ms-is-current-version`.
 * - Get Container Properties of such a container reports
 *   `x-ms-immutable-storage-with-versioning-enabled: true`.
 * - In any other container, immutability headers on a put, and the three operations above, fail
 *   with `400 InvalidHeaderValue` (Azure's exact answer there is not documented; the plugin must not
 *   depend on it).
 * - Errors carry Azure's XML error body and the `x-ms-error-code` header.
 *
 * What it does not model: container-level (time-based) WORM policies, account-level or container
 * default policies, Copy Blob and append/page blobs with protection, reading or listing previous
 * versions, immutability fields in List Blobs, RBAC (any caller that Azurite authenticates may
 * bypass), and the versionid deletes are not authenticated.
 *
 * @packageDocumentation
 */
import { randomUUID } from "node:crypto";
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** An immutability policy's mode, as Azure names it. */
export type AzureImmutabilityPolicyMode = "Unlocked" | "Locked";

/** An immutability policy as the double holds it. */
export interface AzureImmutabilityPolicy {
  /** `Unlocked` (may be changed or deleted) or `Locked` (may only be extended). */
  readonly mode: AzureImmutabilityPolicyMode;
  /** Until when the version is protected, in whole seconds. */
  readonly until: Date;
}

/** The protection of one blob version in {@link AzureImmutabilityProxy}. */
export interface AzureVersionProtection {
  /** The version's ID (`x-ms-version-id`). */
  readonly versionId: string;
  /** The immutability policy, if any. */
  readonly policy?: AzureImmutabilityPolicy | undefined;
  /** Whether a legal hold is on. */
  readonly legalHold: boolean;
}

/** Options of {@link startAzureImmutabilityProxy}. */
export interface AzureImmutabilityProxyOptions {
  /** Azurite's blob endpoint, `http://127.0.0.1:<port>/devstoreaccount1` (`AzuriteServer.blobEndpoint`). */
  readonly azuriteBlobEndpoint: string;
  /** Azurite's account key, for {@link AzureImmutabilityProxy.connectionString}. */
  readonly accountKey: string;
  /** Containers that have version-level immutability enabled. */
  readonly immutableContainers: readonly string[];
}

/** A running proxy, from {@link startAzureImmutabilityProxy}. */
export interface AzureImmutabilityProxy {
  /** The proxy's blob endpoint, `http://127.0.0.1:<port>/<account>`. */
  readonly blobEndpoint: string;
  /** A connection string for `BlobServiceClient.fromConnectionString`, pointing at the proxy. */
  readonly connectionString: string;
  /** The current version's protection as the double holds it, for assertions; undefined when none. */
  current(container: string, blob: string): AzureVersionProtection | undefined;
  /** The previous versions the double keeps (protection only), oldest first. */
  previous(container: string, blob: string): readonly AzureVersionProtection[];
  /** Stops listening and closes open connections. */
  stop(): Promise<void>;
}

interface VersionState {
  versionId: string;
  policy?: { mode: AzureImmutabilityPolicyMode; until: Date } | undefined;
  legalHold: boolean;
}

interface BlobState {
  current?: VersionState | undefined;
  previous: VersionState[];
}

/** An Azure error answered by the double. */
class AzureError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const IMMUTABLE_POLICY_MESSAGE = "This operation is not permitted as the blob is immutable due to a policy.";
const IMMUTABLE_HOLD_MESSAGE = "This operation is not permitted as the blob is immutable due to one or more legal holds.";

let versionCounter = 0;

/** An Azure-style version ID: the time with 7 fractional digits, unique within this process. */
function newVersionId(): string {
  versionCounter = (versionCounter + 1) % 10_000;
  return new Date().toISOString().replace(/Z$/, `${String(versionCounter).padStart(4, "0")}Z`);
}

/** Whether a version's policy or hold forbids deleting or changing it now. */
function lockedBy(version: VersionState, now: Date): AzureError | undefined {
  if (version.legalHold) return new AzureError(409, "BlobImmutableDueToLegalHold", IMMUTABLE_HOLD_MESSAGE);
  if (version.policy !== undefined && version.policy.until.getTime() > now.getTime()) return new AzureError(409, "BlobImmutableDueToPolicy", IMMUTABLE_POLICY_MESSAGE);
  return undefined;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Parses `x-ms-immutability-policy-*` of a request; undefined when neither is present. */
function policyHeaders(req: IncomingMessage, now: Date): { mode: AzureImmutabilityPolicyMode; until: Date } | undefined {
  const untilText = header(req, "x-ms-immutability-policy-until-date");
  const modeText = header(req, "x-ms-immutability-policy-mode");
  if (untilText === undefined && modeText === undefined) return undefined;
  if (untilText === undefined) throw new AzureError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.");
  const parsed = Date.parse(untilText);
  if (Number.isNaN(parsed) || parsed <= now.getTime()) throw new AzureError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.");
  const mode = (modeText ?? "Unlocked").toLowerCase();
  if (mode !== "unlocked" && mode !== "locked") throw new AzureError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.");
  // Azure keeps whole seconds.
  return { mode: mode === "locked" ? "Locked" : "Unlocked", until: new Date(Math.floor(parsed / 1000) * 1000) };
}

function legalHoldHeader(req: IncomingMessage): boolean | undefined {
  const text = header(req, "x-ms-legal-hold");
  if (text === undefined) return undefined;
  if (text !== "true" && text !== "false") throw new AzureError(400, "InvalidHeaderValue", "The value for one of the HTTP headers is not in the correct format.");
  return text === "true";
}

function notEnabled(): AzureError {
  return new AzureError(400, "InvalidHeaderValue", "The container does not have version-level immutability enabled.");
}

/**
 * Starts the double on 127.0.0.1 at a port the OS picks, in front of a running Azurite. See the
 * module description for what it models.
 *
 * @param options - Azurite's endpoint and key, and the containers to report as immutability-enabled.
 * @returns The running proxy; call `stop()` when done (before stopping Azurite).
 */
export async function startAzureImmutabilityProxy(options: AzureImmutabilityProxyOptions): Promise<AzureImmutabilityProxy> {
  const target = new URL(options.azuriteBlobEndpoint);
  const account = target.pathname.replace(/^\/+|\/+$/g, "");
  const enabled = new Set(options.immutableContainers);
  const blobs = new Map<string, BlobState>();
  const stateOf = (container: string, blob: string): BlobState => {
    const key = `${container}/${blob}`;
    let state = blobs.get(key);
    if (state === undefined) {
      state = { previous: [] };
      blobs.set(key, state);
    }
    return state;
  };

  const sendError = (req: IncomingMessage, res: ServerResponse, error: AzureError): void => {
    const requestId = randomUUID();
    const body =
      `<?xml version="1.0" encoding="utf-8"?><Error><Code>${error.code}</Code>` +
      `<Message>${error.message}\nRequestId:${requestId}\nTime:${new Date().toISOString()}</Message></Error>`;
    res.writeHead(error.status, {
      "content-type": "application/xml",
      "x-ms-error-code": error.code,
      "x-ms-request-id": requestId,
      "x-ms-version": header(req, "x-ms-version") ?? "2020-10-02",
      date: new Date().toUTCString(),
      ...(req.method === "HEAD" ? {} : { "content-length": Buffer.byteLength(body) }),
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };

  const sendOk = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>): void => {
    res.writeHead(status, {
      "x-ms-request-id": randomUUID(),
      "x-ms-version": header(req, "x-ms-version") ?? "2020-10-02",
      date: new Date().toUTCString(),
      "content-length": "0",
      ...headers,
    });
    res.end();
  };

  /** Sends the request to Azurite; `body` false sends no body (the request's was not read). */
  const forward = (req: IncomingMessage, withBody: boolean): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        resolve,
      );
      upstream.on("error", reject);
      if (withBody) req.pipe(upstream);
      else upstream.end();
    });

  const relay = (res: ServerResponse, upstream: IncomingMessage, extra: Record<string, string> = {}): void => {
    res.writeHead(upstream.statusCode ?? 502, { ...upstream.headers, ...extra });
    upstream.pipe(res);
  };

  const versionHeaders = (version: VersionState): Record<string, string> => ({
    "x-ms-version-id": version.versionId,
    "x-ms-is-current-version": "true",
    ...(version.policy === undefined
      ? {}
      : { "x-ms-immutability-policy-until-date": version.policy.until.toUTCString(), "x-ms-immutability-policy-mode": version.policy.mode.toLowerCase() }),
    ...(version.legalHold ? { "x-ms-legal-hold": "true" } : {}),
  });

  /** Lets Azurite authenticate a request it cannot serve: its stub answers 501 once auth passed. */
  const authenticated = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const upstream = await forward(req, false);
    if (upstream.statusCode === 501) {
      upstream.resume();
      return true;
    }
    relay(res, upstream);
    return false;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://proxy");
    const segments = url.pathname.split("/").slice(1);
    if (segments[0] !== account) {
      relay(res, await forward(req, true));
      return;
    }
    const container = decodeURIComponent(segments[1] ?? "");
    const blob = segments.slice(2).map(decodeURIComponent).join("/");
    const comp = url.searchParams.get("comp");
    const now = new Date();

    if (blob === "") {
      const upstream = await forward(req, true);
      const props = url.searchParams.get("restype") === "container" && comp === null && (req.method === "GET" || req.method === "HEAD");
      relay(res, upstream, props && enabled.has(container) && upstream.statusCode === 200 ? { "x-ms-immutable-storage-with-versioning-enabled": "true" } : {});
      return;
    }
    const isEnabled = enabled.has(container);

    if (comp === "immutabilityPolicies" || comp === "legalhold") {
      if (req.method !== "PUT" && !(req.method === "DELETE" && comp === "immutabilityPolicies")) {
        relay(res, await forward(req, true));
        return;
      }
      if (!(await authenticated(req, res))) return;
      if (!isEnabled) throw notEnabled();
      const current = blobs.get(`${container}/${blob}`)?.current;
      if (current === undefined) throw new AzureError(404, "BlobNotFound", "The specified blob does not exist.");
      if (comp === "legalhold") {
        const hold = legalHoldHeader(req);
        if (hold === undefined) throw new AzureError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.");
        current.legalHold = hold;
        sendOk(req, res, 200, { "x-ms-legal-hold": String(hold) });
        return;
      }
      const old = current.policy;
      const oldActive = old !== undefined && old.until.getTime() > now.getTime();
      if (req.method === "DELETE") {
        if (oldActive && old.mode === "Locked") throw new AzureError(409, "BlobImmutableDueToPolicy", IMMUTABLE_POLICY_MESSAGE);
        current.policy = undefined;
        sendOk(req, res, 200, {});
        return;
      }
      const next = policyHeaders(req, now);
      if (next === undefined) throw new AzureError(400, "MissingRequiredHeader", "An HTTP header that's mandatory for this request is not specified.");
      if (oldActive && old.mode === "Locked" && (next.mode !== "Locked" || next.until.getTime() < old.until.getTime())) {
        throw new AzureError(409, "BlobImmutableDueToPolicy", IMMUTABLE_POLICY_MESSAGE);
      }
      current.policy = next;
      sendOk(req, res, 200, { "x-ms-immutability-policy-until-date": next.until.toUTCString(), "x-ms-immutability-policy-mode": next.mode.toLowerCase() });
      return;
    }

    const versionId = url.searchParams.get("versionid");
    if (req.method === "DELETE" && versionId !== null && isEnabled) {
      // Previous versions exist only in the double; never forward (Azurite has no versions).
      const state = blobs.get(`${container}/${blob}`);
      const index = state?.previous.findIndex((v) => v.versionId === versionId) ?? -1;
      const version = index < 0 ? undefined : state?.previous[index];
      if (state === undefined || version === undefined) {
        throw new AzureError(state?.current?.versionId === versionId ? 409 : 404, state?.current?.versionId === versionId ? "OperationNotAllowedOnRootBlob" : "BlobNotFound", "The specified blob does not exist.");
      }
      const locked = lockedBy(version, now);
      if (locked !== undefined) throw locked;
      state.previous.splice(index, 1);
      sendOk(req, res, 202, { "x-ms-delete-type-permanent": "true" });
      return;
    }

    const isWrite = req.method === "PUT" && (comp === null || comp === "blocklist");
    if (isWrite) {
      const policy = policyHeaders(req, now);
      const hold = legalHoldHeader(req);
      const asks = policy !== undefined || hold !== undefined;
      if (asks && !isEnabled) {
        req.resume();
        throw notEnabled();
      }
      const upstream = await forward(req, true);
      if (!isEnabled || (upstream.statusCode ?? 500) >= 300) {
        relay(res, upstream);
        return;
      }
      const state = stateOf(container, blob);
      if (state.current !== undefined) state.previous.push(state.current);
      state.current = { versionId: newVersionId(), policy, legalHold: hold === true };
      relay(res, upstream, { "x-ms-version-id": state.current.versionId });
      return;
    }

    if (req.method === "DELETE" && comp === null && isEnabled) {
      const upstream = await forward(req, true);
      const state = blobs.get(`${container}/${blob}`);
      if ((upstream.statusCode ?? 500) < 300 && state?.current !== undefined) {
        // With versioning, the deleted current version becomes a previous version, policy and all.
        state.previous.push(state.current);
        state.current = undefined;
      }
      relay(res, upstream, (upstream.statusCode ?? 500) < 300 ? { "x-ms-delete-type-permanent": "false" } : {});
      return;
    }

    const isRead = (req.method === "GET" || req.method === "HEAD") && comp === null && versionId === null;
    const upstream = await forward(req, true);
    const status = upstream.statusCode ?? 500;
    if (isRead && isEnabled && (status === 200 || status === 206)) {
      const state = stateOf(container, blob);
      // A blob the double has not seen written (written before it started): a version without protection.
      state.current ??= { versionId: newVersionId(), legalHold: false };
      relay(res, upstream, versionHeaders(state.current));
      return;
    }
    relay(res, upstream);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (error instanceof AzureError) sendError(req, res, error);
      else sendError(req, res, new AzureError(502, "ProxyError", error instanceof Error ? error.message : String(error)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const blobEndpoint = `http://127.0.0.1:${port}/${account}`;
  const snapshot = (v: VersionState): AzureVersionProtection => ({ versionId: v.versionId, policy: v.policy === undefined ? undefined : { ...v.policy }, legalHold: v.legalHold });
  return {
    blobEndpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${account};AccountKey=${options.accountKey};BlobEndpoint=${blobEndpoint};`,
    current: (container, blob) => {
      const v = blobs.get(`${container}/${blob}`)?.current;
      return v === undefined ? undefined : snapshot(v);
    },
    previous: (container, blob) => (blobs.get(`${container}/${blob}`)?.previous ?? []).map(snapshot),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        server.closeAllConnections();
      }),
  };
}
