/**
 * A test double of the Compute Engine REST API (compute/v1), for the Persistent Disk BlockStore's
 * tests. There is no Compute Engine emulator, so this server implements the slice of the REST
 * surface the BlockStore uses, following the discovery document's shapes:
 *
 * - zonal disks (`/zones/{zone}/disks`) and regional disks (`/regions/{region}/disks`): insert, get,
 *   delete, list, `createSnapshot`;
 * - global snapshots (`/global/snapshots`): insert, get, delete, list with `filter`, `maxResults`
 *   and `pageToken`;
 * - zonal, regional and global operations: get and `wait`; operations move PENDING → RUNNING → DONE
 *   as they are polled, and carry `error.errors[]` when they fail;
 * - snapshots move CREATING → UPLOADING → READY as they are polled (their creating operation is DONE
 *   once the snapshot is READY), or end FAILED;
 * - `projects.get` with the `SNAPSHOTS` quota;
 * - `requestId` de-duplication of mutating calls, as Compute Engine does;
 * - errors in Compute Engine's JSON shape: 400 `invalid`/`resourceNotReady`, 401, 404 `notFound`,
 *   409 `alreadyExists`/`resourceInUseByAnotherResource`, injected 429 `rateLimitExceeded` (with
 *   `Retry-After` when asked) and 5xx, and injected requests that are never answered;
 * - OAuth: every request needs `Authorization: Bearer` with a token issued by the double's token
 *   endpoint (`POST /token`, the JWT-bearer grant of a service-account key the double generated) or a
 *   self-signed JWT of that key.
 *
 * It is driven only through the real `@google-cloud/compute` client (and plain `fetch` for setup).
 *
 * @packageDocumentation
 */
import { generateKeyPairSync, randomBytes, randomUUID, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const LINK_BASE = "https://www.googleapis.com/compute/v1";

/** A JSON object as the REST API exchanges them. */
export type Resource = Record<string, unknown>;

/** An injected HTTP failure. */
export interface FailureRule {
  /** HTTP method to match; any when absent. */
  readonly method?: string | undefined;
  /** Matched against the path after `/compute/v1/projects/{project}` (for example `/global/snapshots`). */
  readonly path: RegExp;
  /** HTTP status to answer (ignored with `hang`). */
  readonly status: number;
  /** `errors[].reason`, for example `rateLimitExceeded` (ignored with `hang`). */
  readonly reason: string;
  /** `Retry-After` header of the answer, in seconds (a throttled client should wait that long). */
  readonly retryAfterSeconds?: number | undefined;
  /**
   * Never answer: the request is read and the connection left open and silent, as a stalled front
   * end leaves it, until the client gives up or the double stops.
   */
  readonly hang?: boolean | undefined;
  /** Error message. */
  readonly message?: string | undefined;
  /** How many matching requests fail; default 1. */
  readonly times?: number | undefined;
  /** Fail after carrying the request out, as when the response is lost (default: before). */
  readonly afterProcessing?: boolean | undefined;
}

/** An injected operation failure: the next matching operations end DONE with this error. */
export interface OperationFailureRule {
  /** `operationType` to match (`insert`, `createSnapshot`, `delete`). */
  readonly operationType: string;
  /** `error.errors[].code`, for example `QUOTA_EXCEEDED`. */
  readonly code: string;
  /** `error.errors[].message`. */
  readonly message: string;
  /** How many matching operations fail; default 1. */
  readonly times?: number | undefined;
}

/** Options of {@link ComputeDouble.start}. */
export interface ComputeDoubleOptions {
  /** Polls (get or wait) an operation needs before it is DONE; default 1. `Infinity` never finishes. */
  readonly operationPolls?: number | undefined;
  /** Polls of a snapshot (or of its operation) from CREATING to READY; default 2 (CREATING, UPLOADING, READY). */
  readonly snapshotPolls?: number | undefined;
  /** Limit of the `SNAPSHOTS` quota; default 1000. */
  readonly snapshotQuota?: number | undefined;
  /** Longest time a `wait` call holds before answering a RUNNING operation, in ms; default 0. */
  readonly waitHoldMs?: number | undefined;
}

interface Settings {
  operationPolls: number;
  readonly snapshotPolls: number;
  readonly snapshotQuota: number;
  readonly waitHoldMs: number;
}

/** A recorded request. */
export interface RecordedRequest {
  /** HTTP method. */
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** Query parameters. */
  readonly query: Readonly<Record<string, string>>;
  /** Parsed JSON body, if any. */
  readonly body: unknown;
}

interface Operation extends Resource {
  name: string;
  status: "PENDING" | "RUNNING" | "DONE";
}

interface OperationState {
  readonly resource: Operation;
  readonly scope: string;
  pollsLeft: number;
  /** Applied when the operation completes successfully. */
  readonly complete: () => void;
  /** Whether the operation waits for a snapshot to become READY. */
  readonly snapshotKey?: string | undefined;
  readonly failure?: { code: string; message: string } | undefined;
}

interface SnapshotState {
  readonly resource: Resource;
  pollsLeft: number;
  fail: string | undefined;
}

class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly headers: Readonly<Record<string, string>>;
  constructor(status: number, reason: string, message: string, headers: Readonly<Record<string, string>> = {}) {
    super(message);
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }
}

function injectedError(rule: FailureRule): HttpError {
  const headers = rule.retryAfterSeconds === undefined ? {} : { "retry-after": String(rule.retryAfterSeconds) };
  return new HttpError(rule.status, rule.reason, rule.message ?? (rule.status === 429 ? "Rate Limit Exceeded" : `injected ${rule.reason}`), headers);
}

function int64(value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, "invalid", `Invalid value for field: ${JSON.stringify(value)}`);
  return n;
}

const NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY_RE = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const LABEL_VALUE_RE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new HttpError(400, "invalid", `Invalid value for field '${what}.name': '${String(name)}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`);
  }
  return name;
}

function checkLabels(labels: unknown, what: string): Record<string, string> {
  if (labels === undefined || labels === null) return {};
  if (typeof labels !== "object") throw new HttpError(400, "invalid", `Invalid value for field '${what}.labels'`);
  const entries = Object.entries(labels as Record<string, unknown>);
  if (entries.length > 64) throw new HttpError(400, "invalid", `Invalid value for field '${what}.labels': at most 64 labels are allowed`);
  for (const [k, v] of entries) {
    if (!LABEL_KEY_RE.test(k)) throw new HttpError(400, "invalid", `Invalid value for field '${what}.labels': '${k}'. Label keys must start with a lowercase letter and contain only lowercase letters, digits, '_' and '-' (max 63)`);
    if (typeof v !== "string" || !LABEL_VALUE_RE.test(v)) throw new HttpError(400, "invalid", `Invalid value for field '${what}.labels.${k}': '${String(v)}'`);
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Parses `labels.k = "v"` and `name = "v"` conditions joined by spaces or AND, the subset of the list filter syntax the BlockStore uses. */
function parseFilter(filter: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /\(?\s*((?:labels\.)?[a-z0-9_-]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*\)?(?:\s+AND\s+|\s+|$)/gy;
  let pos = 0;
  const text = filter.trim();
  while (pos < text.length) {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (m === null) throw new HttpError(400, "invalid", `Invalid list filter expression '${filter}'.`);
    out.push([m[1] ?? "", (m[2] ?? "").replace(/\\(.)/g, "$1")]);
    pos = re.lastIndex;
  }
  return out;
}

function matches(resource: Resource, conditions: readonly [string, string][]): boolean {
  return conditions.every(([field, value]) =>
    field.startsWith("labels.") ? (resource.labels as Record<string, string> | undefined)?.[field.slice("labels.".length)] === value : resource[field] === value,
  );
}

/**
 * A running Compute Engine double. Start it with {@link ComputeDouble.start}; stop it with {@link ComputeDouble.stop}.
 */
export class ComputeDouble {
  /** Base URL, `http://127.0.0.1:<port>`: the value of the BlockStore's `computeEndpoint`. */
  readonly endpoint: string;
  /** The OAuth token endpoint (`token_uri` of the service-account key). */
  readonly tokenUri: string;
  /** Every request, in order. */
  readonly requests: RecordedRequest[] = [];
  readonly #server: Server;
  readonly #options: Settings;
  readonly #publicKey: KeyObject;
  readonly #privateKeyPem: string;
  readonly #clientEmail: string;
  readonly #tokens = new Set<string>();
  readonly #disks = new Map<string, Resource>();
  readonly #snapshots = new Map<string, SnapshotState>();
  readonly #operations = new Map<string, OperationState>();
  readonly #requestIds = new Map<string, Operation>();
  readonly #failures: (FailureRule & { left: number })[] = [];
  readonly #operationFailures: (OperationFailureRule & { left: number })[] = [];
  #counter = 0;

  private constructor(server: Server, options: Settings) {
    this.#server = server;
    this.#options = options;
    const { port } = server.address() as AddressInfo;
    this.endpoint = `http://127.0.0.1:${String(port)}`;
    this.tokenUri = `${this.endpoint}/token`;
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.#publicKey = pair.publicKey;
    this.#privateKeyPem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    this.#clientEmail = "stowage-test@double-project.iam.gserviceaccount.com";
  }

  /** Starts the double on a free loopback port. */
  static async start(options: ComputeDoubleOptions = {}): Promise<ComputeDouble> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const double = new ComputeDouble(server, {
      operationPolls: options.operationPolls ?? 1,
      snapshotPolls: options.snapshotPolls ?? 2,
      snapshotQuota: options.snapshotQuota ?? 1000,
      waitHoldMs: options.waitHoldMs ?? 0,
    });
    server.on("request", (req, res) => void double.#handle(req, res));
    return double;
  }

  /** Stops the server and closes its connections; stopping twice is harmless. */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * A service-account key file (JSON) whose `token_uri` is the double's token endpoint, signed by a
   * key the double generated: the BlockStore's `credentialsFile` in tests.
   */
  serviceAccountKey(projectId: string): Resource {
    return {
      type: "service_account",
      project_id: projectId,
      private_key_id: "double-key-1",
      private_key: this.#privateKeyPem,
      client_email: this.#clientEmail,
      client_id: "100000000000000000001",
      auth_uri: `${this.endpoint}/auth`,
      token_uri: this.tokenUri,
      universe_domain: "googleapis.com",
    };
  }

  /** Issues an access token without the OAuth flow, for setup requests made with `fetch`. */
  issueToken(): string {
    const token = `ya29.double-${randomBytes(12).toString("hex")}`;
    this.#tokens.add(token);
    return token;
  }

  /** Inserts a zonal or regional disk through the REST API and waits for its operation. */
  async insertDisk(project: string, location: { zone: string } | { region: string }, disk: Resource): Promise<Resource> {
    const token = this.issueToken();
    const scope = "zone" in location ? `zones/${location.zone}` : `regions/${location.region}`;
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const res = await fetch(`${this.endpoint}/compute/v1/projects/${project}/${scope}/disks`, { method: "POST", headers, body: JSON.stringify(disk) });
    if (!res.ok) throw new Error(`insert disk failed: ${String(res.status)} ${await res.text()}`);
    let op = (await res.json()) as Operation;
    while (op.status !== "DONE") {
      const waited = await fetch(`${this.endpoint}/compute/v1/projects/${project}/${scope}/operations/${op.name}/wait`, { method: "POST", headers });
      op = (await waited.json()) as Operation;
    }
    if (op.error !== undefined) throw new Error(`insert disk failed: ${JSON.stringify(op.error)}`);
    const got = await fetch(`${this.endpoint}/compute/v1/projects/${project}/${scope}/disks/${String(disk.name)}`, { headers });
    return (await got.json()) as Resource;
  }

  /** The stored disk, or undefined. */
  disk(project: string, scope: string, name: string): Resource | undefined {
    return this.#disks.get(`${project}/${scope}/disks/${name}`);
  }

  /** The stored snapshot, or undefined. */
  snapshot(project: string, name: string): Resource | undefined {
    return this.#snapshots.get(`${project}/${name}`)?.resource;
  }

  /** Makes a snapshot end FAILED (with its operation) at its next poll. */
  failSnapshot(project: string, name: string, message: string): void {
    const state = this.#snapshots.get(`${project}/${name}`);
    if (state === undefined) throw new Error(`no snapshot ${project}/${name}`);
    state.fail = message;
  }

  /** Sets the polls new operations need before they are DONE (`Infinity`: they never finish). */
  setOperationPolls(polls: number): void {
    this.#options.operationPolls = polls;
  }

  /** Makes the next matching requests fail with an HTTP error. */
  failRequests(rule: FailureRule): void {
    this.#failures.push({ ...rule, left: rule.times ?? 1 });
  }

  /** Removes every injected request failure; returns how many matching requests were still to fail. */
  clearFailures(): number {
    const left = this.#failures.reduce((sum, f) => sum + f.left, 0);
    this.#failures.length = 0;
    return left;
  }

  /** Makes the next matching operations end DONE with an error. */
  failOperations(rule: OperationFailureRule): void {
    this.#operationFailures.push({ ...rule, left: rule.times ?? 1 });
  }

  /** Sets a stored disk's `users` (attached instances), so that deleting it fails as in use. */
  attachDisk(project: string, scope: string, name: string, instance: string): void {
    const disk = this.disk(project, scope, name);
    if (disk === undefined) throw new Error(`no disk ${project}/${scope}/${name}`);
    disk.users = [`${LINK_BASE}/projects/${project}/zones/${scope.split("/")[1] ?? ""}/instances/${instance}`];
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.endpoint);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const method = req.method ?? "GET";
    let body: unknown;
    try {
      if (url.pathname === "/token") {
        this.#token(raw, res);
        return;
      }
      body = raw === "" ? undefined : JSON.parse(raw);
      this.requests.push({ method, path: url.pathname, query: Object.fromEntries(url.searchParams), body });
      this.#authenticate(req.headers.authorization);
      const m = /^\/compute\/v1\/projects\/([^/]+)(\/.*)?$/.exec(url.pathname);
      if (m === null) throw new HttpError(404, "notFound", `The requested URL ${url.pathname} was not found on this server.`);
      const project = decodeURIComponent(m[1] ?? "");
      const rest = m[2] ?? "";
      const rule = this.#injected(method, rest);
      if (rule?.hang === true) return;
      if (rule !== undefined && rule.afterProcessing !== true) throw injectedError(rule);
      const result = await this.#route(method, project, rest, url.searchParams, body as Resource | undefined);
      if (rule !== undefined) throw injectedError(rule);
      this.#send(res, 200, result);
    } catch (error) {
      if (error instanceof HttpError) {
        this.#send(
          res,
          error.status,
          {
            // Compute Engine's v1 error body: no gRPC `status` field, unlike newer Google APIs.
            error: { code: error.status, message: error.message, errors: [{ message: error.message, domain: "global", reason: error.reason }] },
          },
          error.headers,
        );
      } else {
        this.#send(res, 500, { error: { code: 500, message: String(error), errors: [{ message: String(error), domain: "global", reason: "backendError" }] } });
      }
    }
  }

  #send(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  /** The JWT-bearer grant (RFC 7523) of a Google service-account key. */
  #token(raw: string, res: ServerResponse): void {
    const form = new URLSearchParams(raw);
    const assertion = form.get("assertion") ?? "";
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer" || !this.#verifyJwt(assertion, this.tokenUri)) {
      this.#send(res, 400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
      return;
    }
    this.#send(res, 200, { access_token: this.issueToken(), expires_in: 3599, token_type: "Bearer" });
  }

  #verifyJwt(jwt: string, audience: string | undefined): boolean {
    const parts = jwt.split(".");
    if (parts.length !== 3) return false;
    const [header, payload, signature] = parts as [string, string, string];
    const ok = verify("RSA-SHA256", Buffer.from(`${header}.${payload}`), this.#publicKey, Buffer.from(signature, "base64url"));
    if (!ok) return false;
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { iss?: string; aud?: string; exp?: number };
    if (claims.iss !== this.#clientEmail) return false;
    if (typeof claims.exp !== "number" || claims.exp * 1000 < Date.now()) return false;
    return audience === undefined || claims.aud === audience;
  }

  #authenticate(header: string | undefined): void {
    const token = /^Bearer (.+)$/.exec(header ?? "")?.[1];
    if (token !== undefined && (this.#tokens.has(token) || this.#verifyJwt(token, undefined))) return;
    throw new HttpError(401, "authError", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.");
  }

  #injected(method: string, path: string): FailureRule | undefined {
    const rule = this.#failures.find((r) => r.left > 0 && (r.method === undefined || r.method === method) && r.path.test(path));
    if (rule !== undefined) rule.left--;
    return rule;
  }

  async #route(method: string, project: string, path: string, query: URLSearchParams, body: Resource | undefined): Promise<unknown> {
    let m: RegExpExecArray | null;
    if (path === "" && method === "GET") return this.#project(project);
    if (path === "/aggregated/disks" && method === "GET") return this.#aggregatedDisks(project, query);
    if ((m = /^\/(zones|regions)\/([^/]+)\/disks$/.exec(path)) !== null) {
      const scope = `${m[1] ?? ""}/${m[2] ?? ""}`;
      if (method === "POST") return this.#insertDisk(project, scope, body ?? {}, query.get("requestId"));
      if (method === "GET") return this.#list("compute#diskList", [...this.#disks.entries()].filter(([k]) => k.startsWith(`${project}/${scope}/`)).map(([, d]) => d), query);
    }
    if ((m = /^\/(zones|regions)\/([^/]+)\/disks\/([^/]+)$/.exec(path)) !== null) {
      const scope = `${m[1] ?? ""}/${m[2] ?? ""}`;
      const name = decodeURIComponent(m[3] ?? "");
      if (method === "GET") return this.#getDisk(project, scope, name);
      if (method === "DELETE") return this.#deleteDisk(project, scope, name, query.get("requestId"));
    }
    if ((m = /^\/(zones|regions)\/([^/]+)\/disks\/([^/]+)\/createSnapshot$/.exec(path)) !== null && method === "POST") {
      const scope = `${m[1] ?? ""}/${m[2] ?? ""}`;
      const disk = this.#getDisk(project, scope, decodeURIComponent(m[3] ?? ""));
      return this.#insertSnapshot(project, { ...body, sourceDisk: disk.selfLink }, query.get("requestId"), scope);
    }
    if (path === "/global/snapshots") {
      if (method === "POST") return this.#insertSnapshot(project, body ?? {}, query.get("requestId"), "global");
      if (method === "GET") return this.#listSnapshots(project, query);
    }
    if ((m = /^\/global\/snapshots\/([^/]+)$/.exec(path)) !== null) {
      const name = decodeURIComponent(m[1] ?? "");
      if (method === "GET") return this.#getSnapshot(project, name);
      if (method === "DELETE") return this.#deleteSnapshot(project, name, query.get("requestId"));
    }
    if ((m = /^\/(?:(zones|regions)\/([^/]+)|global)\/operations\/([^/]+)(\/wait)?$/.exec(path)) !== null) {
      const scope = m[1] === undefined ? "global" : `${m[1]}/${m[2] ?? ""}`;
      const key = `${project}/${scope}/operations/${decodeURIComponent(m[3] ?? "")}`;
      if (method === "GET" && m[4] === undefined) return this.#pollOperation(key);
      if (method === "POST" && m[4] !== undefined) return this.#waitOperation(key);
    }
    throw new HttpError(404, "notFound", `The requested URL /compute/v1/projects/${project}${path} was not found on this server.`);
  }

  #project(project: string): Resource {
    const usage = [...this.#snapshots.keys()].filter((k) => k.startsWith(`${project}/`)).length;
    return {
      kind: "compute#project",
      name: project,
      id: "1000000000000000001",
      selfLink: `${LINK_BASE}/projects/${project}`,
      quotas: [
        { metric: "SNAPSHOTS", limit: this.#options.snapshotQuota, usage },
        { metric: "DISKS_TOTAL_GB", limit: 40960, usage: 0 },
      ],
    };
  }

  #list(kind: string, items: Resource[], query: URLSearchParams): Resource {
    const max = Math.min(500, int64(query.get("maxResults"), 500));
    let start = 0;
    const token = query.get("pageToken");
    if (token !== null && token !== "") {
      const parsed = /^p(\d+)$/.exec(Buffer.from(token, "base64url").toString("utf8"));
      if (parsed === null) throw new HttpError(400, "invalid", `Invalid value for field 'pageToken': '${token}'. Supplied page token is invalid.`);
      start = Number(parsed[1]);
    }
    const page = items.slice(start, start + max);
    const out: Resource = { kind, id: "list", items: page, selfLink: LINK_BASE };
    if (start + max < items.length) out.nextPageToken = Buffer.from(`p${String(start + max)}`).toString("base64url");
    return out;
  }

  #newOperation(project: string, scope: string, operationType: string, targetLink: string, complete: () => void, requestId: string | null, snapshotKey?: string): Operation {
    if (requestId !== null && requestId !== "") {
      const previous = this.#requestIds.get(`${project}/${requestId}`);
      if (previous !== undefined) return previous;
    }
    const failureRule = this.#operationFailures.find((r) => r.left > 0 && r.operationType === operationType);
    if (failureRule !== undefined) failureRule.left--;
    const name = `operation-${String(Date.now())}-${randomBytes(6).toString("hex")}-${String(++this.#counter)}`;
    const scopeLink = scope === "global" ? "global" : scope;
    const resource: Operation = {
      kind: "compute#operation",
      id: String(1_000_000 + this.#counter),
      name,
      operationType,
      targetLink,
      targetId: String(2_000_000 + this.#counter),
      status: "PENDING",
      user: this.#clientEmail,
      progress: 0,
      insertTime: new Date().toISOString(),
      selfLink: `${LINK_BASE}/projects/${project}/${scopeLink}/operations/${name}`,
    };
    if (scope.startsWith("zones/")) resource.zone = `${LINK_BASE}/projects/${project}/${scope}`;
    if (scope.startsWith("regions/")) resource.region = `${LINK_BASE}/projects/${project}/${scope}`;
    const state: OperationState = {
      resource,
      scope,
      pollsLeft: this.#options.operationPolls,
      complete,
      snapshotKey,
      failure: failureRule === undefined ? undefined : { code: failureRule.code, message: failureRule.message },
    };
    this.#operations.set(`${project}/${scope}/operations/${name}`, state);
    if (requestId !== null && requestId !== "") this.#requestIds.set(`${project}/${requestId}`, resource);
    return structuredClone(resource);
  }

  #willFail(operationType: string): boolean {
    return this.#operationFailures.some((r) => r.left > 0 && r.operationType === operationType);
  }

  #advance(state: OperationState): void {
    const op = state.resource;
    if (op.status === "DONE") return;
    op.status = "RUNNING";
    op.startTime ??= new Date().toISOString();
    if (state.snapshotKey !== undefined) {
      const snap = this.#snapshots.get(state.snapshotKey);
      if (snap !== undefined) this.#advanceSnapshot(snap);
      const status = snap?.resource.status;
      if (status === "READY" || status === "FAILED" || snap === undefined) {
        this.#finish(state, status === "FAILED" ? { code: "SNAPSHOT_FAILED", message: snap?.fail ?? "the snapshot failed" } : undefined);
      } else {
        op.progress = status === "UPLOADING" ? 50 : 10;
      }
      return;
    }
    state.pollsLeft--;
    if (state.pollsLeft <= 0) this.#finish(state, state.failure);
    else op.progress = 50;
  }

  #finish(state: OperationState, failure: { code: string; message: string } | undefined): void {
    const op = state.resource;
    op.status = "DONE";
    op.progress = 100;
    op.endTime = new Date().toISOString();
    const effective = failure ?? state.failure;
    if (effective === undefined) {
      state.complete();
    } else {
      op.error = { errors: [{ code: effective.code, message: effective.message }] };
      op.httpErrorStatusCode = 400;
      op.httpErrorMessage = "BAD REQUEST";
    }
  }

  #pollOperation(key: string): Operation {
    const state = this.#operations.get(key);
    if (state === undefined) throw new HttpError(404, "notFound", `The resource '${key.replace(/^([^/]+)\//, "projects/$1/")}' was not found`);
    this.#advance(state);
    return structuredClone(state.resource);
  }

  async #waitOperation(key: string): Promise<Operation> {
    const op = this.#pollOperation(key);
    if (op.status !== "DONE" && this.#options.waitHoldMs > 0) await new Promise((r) => setTimeout(r, this.#options.waitHoldMs));
    return op;
  }

  #insertDisk(project: string, scope: string, body: Resource, requestId: string | null): Operation {
    const name = checkName(body.name, "resource");
    const key = `${project}/${scope}/disks/${name}`;
    const selfLink = `${LINK_BASE}/projects/${project}/${scope}/disks/${name}`;
    if (requestId !== null && this.#requestIds.has(`${project}/${requestId}`)) return this.#newOperation(project, scope, "insert", selfLink, () => undefined, requestId);
    if (this.#disks.has(key)) throw new HttpError(409, "alreadyExists", `The resource 'projects/${project}/${scope}/disks/${name}' already exists`);
    const labels = checkLabels(body.labels, "resource");
    let sizeGb = int64(body.sizeGb, 0);
    const sourceSnapshot = typeof body.sourceSnapshot === "string" ? body.sourceSnapshot : undefined;
    let snapshotId: string | undefined;
    if (sourceSnapshot !== undefined) {
      const sm = /(?:^|\/)projects\/([^/]+)\/global\/snapshots\/([^/]+)$/.exec(sourceSnapshot);
      const snap = sm === null ? undefined : this.#snapshots.get(`${sm[1] ?? ""}/${sm[2] ?? ""}`);
      if (snap === undefined) throw new HttpError(404, "notFound", `The resource '${sourceSnapshot}' was not found`);
      if (snap.resource.status !== "READY") throw new HttpError(400, "resourceNotReady", `The resource '${sourceSnapshot}' is not ready`);
      const snapSize = Number(snap.resource.diskSizeGb);
      if (sizeGb === 0) sizeGb = snapSize;
      if (sizeGb < snapSize) throw new HttpError(400, "invalid", `Requested disk size cannot be smaller than the snapshot size (${String(snapSize)} GB).`);
      snapshotId = String(snap.resource.id);
    }
    if (sizeGb === 0) sizeGb = 10;
    const location = scope.split("/")[1] ?? "";
    let type = typeof body.type === "string" && body.type !== "" ? body.type : `projects/${project}/${scope}/diskTypes/pd-standard`;
    const tm = /(?:^|\/)projects\/([^/]+)\/(zones|regions)\/([^/]+)\/diskTypes\/([^/]+)$/.exec(type);
    if (tm === null || `${tm[2] ?? ""}/${tm[3] ?? ""}` !== scope) {
      throw new HttpError(400, "invalid", `Invalid value for field 'resource.type': '${type}'. The disk type must be a URL of a disk type in ${scope}.`);
    }
    type = `${LINK_BASE}/projects/${tm[1] ?? ""}/${scope}/diskTypes/${tm[4] ?? ""}`;
    const typeName = tm[4] ?? "";
    if (!/^(pd-(standard|balanced|ssd|extreme)|hyperdisk-(balanced|extreme|throughput|ml)(-high-availability)?)$/.test(typeName)) {
      throw new HttpError(404, "notFound", `The resource 'projects/${project}/${scope}/diskTypes/${typeName}' was not found`);
    }
    const takesIops = typeName === "pd-extreme" || typeName.startsWith("hyperdisk-");
    if (body.provisionedIops !== undefined && !takesIops) {
      throw new HttpError(400, "invalid", `Invalid value for field 'resource.provisionedIops': '${JSON.stringify(body.provisionedIops)}'. IOPS can only be provisioned for pd-extreme and Hyperdisk disks.`);
    }
    const disk: Resource = {
      kind: "compute#disk",
      id: String(3_000_000 + ++this.#counter),
      creationTimestamp: new Date().toISOString(),
      name,
      description: typeof body.description === "string" ? body.description : "",
      sizeGb: String(sizeGb),
      status: "CREATING",
      selfLink,
      type,
      labels,
      labelFingerprint: randomBytes(6).toString("base64"),
      physicalBlockSizeBytes: "4096",
    };
    if (scope.startsWith("zones/")) disk.zone = `${LINK_BASE}/projects/${project}/${scope}`;
    else {
      disk.region = `${LINK_BASE}/projects/${project}/${scope}`;
      const zones = Array.isArray(body.replicaZones) ? (body.replicaZones as unknown[]).map(String) : [];
      if (zones.length !== 2) throw new HttpError(400, "invalid", "Invalid value for field 'resource.replicaZones': regional disks need exactly 2 replica zones.");
      for (const z of zones) {
        const zm = /(?:zones\/)?([a-z]+-[a-z]+\d+)-[a-z]$/.exec(z);
        if (zm?.[1] !== location) throw new HttpError(400, "invalid", `Invalid value for field 'resource.replicaZones': '${z}' is not in region ${location}.`);
      }
      disk.replicaZones = zones.map((z) => `${LINK_BASE}/projects/${project}/zones/${z.split("/").at(-1) ?? ""}`);
    }
    if (takesIops) disk.provisionedIops = String(int64(body.provisionedIops, typeName === "pd-extreme" ? 2500 : 3000));
    if (typeName.startsWith("hyperdisk-")) disk.provisionedThroughput = String(int64(body.provisionedThroughput, 140));
    if (sourceSnapshot !== undefined) {
      disk.sourceSnapshot = sourceSnapshot.startsWith("https://") ? sourceSnapshot : `${LINK_BASE}/${sourceSnapshot.replace(/^\//, "")}`;
      disk.sourceSnapshotId = snapshotId;
    }
    if (!this.#willFail("insert")) this.#disks.set(key, disk);
    return this.#newOperation(project, scope, "insert", selfLink, () => (disk.status = "READY"), requestId);
  }

  /** `disks.aggregatedList`: every scope with disks, keyed `zones/<z>` or `regions/<r>` (one page). */
  #aggregatedDisks(project: string, query: URLSearchParams): Resource {
    const conditions = parseFilter(query.get("filter") ?? "");
    const items: Record<string, Resource> = {};
    for (const [key, disk] of this.#disks) {
      const m = /^([^/]+)\/((?:zones|regions)\/[^/]+)\/disks\//.exec(key);
      if (m?.[1] !== project || !matches(disk, conditions)) continue;
      const scope = m[2] ?? "";
      const list = (items[scope] ??= { disks: [] }).disks as Resource[];
      list.push(structuredClone(disk));
    }
    return { kind: "compute#diskAggregatedList", id: `projects/${project}/aggregated/disks`, items, selfLink: `${LINK_BASE}/projects/${project}/aggregated/disks` };
  }

  #getDisk(project: string, scope: string, name: string): Resource {
    const disk = this.#disks.get(`${project}/${scope}/disks/${name}`);
    if (disk === undefined) throw new HttpError(404, "notFound", `The resource 'projects/${project}/${scope}/disks/${name}' was not found`);
    return structuredClone(disk);
  }

  #deleteDisk(project: string, scope: string, name: string, requestId: string | null): Operation {
    const key = `${project}/${scope}/disks/${name}`;
    const disk = this.#disks.get(key);
    const selfLink = `${LINK_BASE}/projects/${project}/${scope}/disks/${name}`;
    if (requestId !== null && this.#requestIds.has(`${project}/${requestId}`)) return this.#newOperation(project, scope, "delete", selfLink, () => undefined, requestId);
    if (disk === undefined) throw new HttpError(404, "notFound", `The resource 'projects/${project}/${scope}/disks/${name}' was not found`);
    if (Array.isArray(disk.users) && disk.users.length > 0) {
      throw new HttpError(400, "resourceInUseByAnotherResource", `The disk resource 'projects/${project}/${scope}/disks/${name}' is already being used by '${String(disk.users[0])}'`);
    }
    disk.status = "DELETING";
    return this.#newOperation(project, scope, "delete", selfLink, () => this.#disks.delete(key), requestId);
  }

  #insertSnapshot(project: string, body: Resource, requestId: string | null, scope: string): Operation {
    const name = checkName(body.name, "resource");
    const key = `${project}/${name}`;
    const selfLink = `${LINK_BASE}/projects/${project}/global/snapshots/${name}`;
    if (requestId !== null && this.#requestIds.has(`${project}/${requestId}`)) return this.#newOperation(project, scope, "createSnapshot", selfLink, () => undefined, requestId, key);
    if (this.#snapshots.has(key)) throw new HttpError(409, "alreadyExists", `The resource 'projects/${project}/global/snapshots/${name}' already exists`);
    const labels = checkLabels(body.labels, "resource");
    const sourceDisk = typeof body.sourceDisk === "string" ? body.sourceDisk : "";
    const dm = /(?:^|\/)projects\/([^/]+)\/((?:zones|regions)\/[^/]+)\/disks\/([^/]+)$/.exec(sourceDisk);
    const disk = dm === null ? undefined : this.#disks.get(`${dm[1] ?? ""}/${dm[2] ?? ""}/disks/${dm[3] ?? ""}`);
    if (dm === null) throw new HttpError(400, "invalid", `Invalid value for field 'resource.sourceDisk': '${sourceDisk}'.`);
    if (disk === undefined) throw new HttpError(404, "notFound", `The resource 'projects/${dm[1] ?? ""}/${dm[2] ?? ""}/disks/${dm[3] ?? ""}' was not found`);
    if (disk.status !== "READY") throw new HttpError(400, "resourceNotReady", `The resource '${String(disk.selfLink)}' is not ready`);
    const snapshotType = body.snapshotType ?? "STANDARD";
    if (snapshotType !== "STANDARD" && snapshotType !== "ARCHIVE") throw new HttpError(400, "invalid", `Invalid value for field 'resource.snapshotType': ${JSON.stringify(snapshotType)}.`);
    const storageLocations = Array.isArray(body.storageLocations) ? (body.storageLocations as unknown[]).map(String) : ["us"];
    if (storageLocations.length > 1) throw new HttpError(400, "invalid", "Invalid value for field 'resource.storageLocations': at most one location is allowed.");
    const snapshot: Resource = {
      kind: "compute#snapshot",
      id: String(4_000_000 + ++this.#counter),
      creationTimestamp: new Date().toISOString(),
      name,
      description: typeof body.description === "string" ? body.description : "",
      status: "CREATING",
      sourceDisk: disk.selfLink,
      sourceDiskId: disk.id,
      diskSizeGb: disk.sizeGb,
      storageBytes: "0",
      storageBytesStatus: "UPDATING",
      selfLink,
      labels,
      labelFingerprint: randomBytes(6).toString("base64"),
      storageLocations,
      snapshotType,
      autoCreated: false,
    };
    // A snapshot whose operation is made to fail (quota, for example) is never created.
    if (!this.#willFail("createSnapshot")) this.#snapshots.set(key, { resource: snapshot, pollsLeft: this.#options.snapshotPolls, fail: undefined });
    return this.#newOperation(project, scope, "createSnapshot", selfLink, () => undefined, requestId, key);
  }

  #advanceSnapshot(state: SnapshotState): void {
    const s = state.resource;
    if (s.status === "READY" || s.status === "FAILED" || s.status === "DELETING") return;
    if (state.fail !== undefined) {
      s.status = "FAILED";
      return;
    }
    state.pollsLeft--;
    if (state.pollsLeft <= 0) {
      s.status = "READY";
      s.storageBytes = String(Number(s.diskSizeGb) * 1024 * 1024 * 256);
      s.storageBytesStatus = "UP_TO_DATE";
    } else if (state.pollsLeft === 1) s.status = "UPLOADING";
  }

  #getSnapshot(project: string, name: string): Resource {
    const state = this.#snapshots.get(`${project}/${name}`);
    if (state === undefined) throw new HttpError(404, "notFound", `The resource 'projects/${project}/global/snapshots/${name}' was not found`);
    this.#advanceSnapshot(state);
    return structuredClone(state.resource);
  }

  #listSnapshots(project: string, query: URLSearchParams): Resource {
    const conditions = parseFilter(query.get("filter") ?? "");
    const items = [...this.#snapshots.entries()]
      .filter(([k]) => k.startsWith(`${project}/`))
      .map(([, s]) => s.resource)
      .filter((s) => matches(s, conditions))
      .sort((a, b) => String(a.name).localeCompare(String(b.name)))
      .map((s) => structuredClone(s));
    return this.#list("compute#snapshotList", items, query);
  }

  #deleteSnapshot(project: string, name: string, requestId: string | null): Operation {
    const key = `${project}/${name}`;
    const selfLink = `${LINK_BASE}/projects/${project}/global/snapshots/${name}`;
    if (requestId !== null && this.#requestIds.has(`${project}/${requestId}`)) return this.#newOperation(project, "global", "delete", selfLink, () => undefined, requestId);
    const state = this.#snapshots.get(key);
    if (state === undefined) throw new HttpError(404, "notFound", `The resource 'projects/${project}/global/snapshots/${name}' was not found`);
    state.resource.status = "DELETING";
    return this.#newOperation(project, "global", "delete", selfLink, () => this.#snapshots.delete(key), requestId);
  }

  /** A fresh UUID, for callers that need request IDs. */
  static requestId(): string {
    return randomUUID();
  }
}
