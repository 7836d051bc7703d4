/**
 * A test double of Azure Resource Manager's Microsoft.Compute disks and snapshots (no emulator
 * exists), plus a minimal Entra ID token endpoint, served over HTTPS with a throw-away self-signed
 * certificate made by `openssl`. Tests drive it only through `@azure/arm-compute` and
 * `@azure/identity`.
 *
 * Faithful to the REST API (DiskRP) where the plugin depends on it:
 * - every ARM request needs `?api-version=` (400 `MissingApiVersionParameter`) and a bearer token
 *   the token endpoint issued (401 `AuthenticationFailed` / `InvalidAuthenticationToken`);
 * - `PUT` and `DELETE` of disks and snapshots are long-running: 202 with `Azure-AsyncOperation` and
 *   `Location` headers; the operation reports `InProgress` for `operationPolls` polls, then
 *   `Succeeded` (or `Failed` with `error.code`/`error.message`), and the resource's
 *   `provisioningState` follows;
 * - unknown resources give 404 `ResourceNotFound`, an unknown resource group 404
 *   `ResourceGroupNotFound`; `DELETE` of a missing resource gives 204;
 * - a `PUT` or `DELETE` while another operation on the same resource runs gives 409 `Conflict`,
 *   deleting a disk attached to a VM 409 `OperationNotAllowed`;
 * - names and tags are validated (400 `InvalidResourceName`, `InvalidTagNameCharacters`);
 * - incremental snapshots report `completionPercent`, rising on each `GET` until 100;
 * - list calls page with `nextLink`.
 *
 *
 * It also serves the two Microsoft.Storage calls the Blob ObjectStore makes on its storage account
 * (accounts are added with {@link ArmComputeDouble.addStorageAccount}):
 * - `POST .../storageAccounts/{name}/listKeys` → `{ keys: [{ keyName, value, permissions,
 *   creationTime }] }` (with `$expand=kerb`, an account with Kerberos keys also lists `kerb1`);
 * - `GET .../storageAccounts/{name}` → the account with `properties.primaryEndpoints.blob`;
 * - an unknown account gives 404 `ResourceNotFound`, an unknown resource group
 *   `ResourceGroupNotFound`; {@link ArmComputeDouble.denyStorageActions} makes either call answer
 *   403 `AuthorizationFailed` with ARM's message naming the missing action.
 *
 * Faults: {@link ArmComputeDouble.injectFault} answers matching requests with an error (e.g. 429
 * with `Retry-After`, 500) or never answers them at all, {@link ArmComputeDouble.failNextOperations}
 * makes operations end `Failed`, and {@link ArmComputeDouble.hangNextOperations} makes them never
 * finish.
 *
 * @packageDocumentation
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeSelfSignedCertificate } from "@stowage/test-servers";


/** A disk or snapshot as the double stores it (the wire shape, `properties` nested). */
export interface ArmResource {
  /** Full ARM ID. */
  id: string;
  /** Name. */
  name: string;
  /** `Microsoft.Compute/disks` or `Microsoft.Compute/snapshots`. */
  type: string;
  /** Region. */
  location: string;
  /** Tags. */
  tags: Record<string, string>;
  /** SKU. */
  sku?: { name: string; tier?: string } | undefined;
  /** Availability zones (disks). */
  zones?: string[] | undefined;
  /** The VM a disk is attached to. */
  managedBy?: string | undefined;
  /** Resource properties. */
  properties: Record<string, unknown>;
}

/** Which requests a {@link FaultRule} hits. */
export interface FaultMatch {
  /** HTTP method to match; any when absent. */
  readonly method?: string | undefined;
  /** Matched against the request path (without the query). */
  readonly path: RegExp;
  /** How many matching requests fail; default 1. */
  readonly times?: number | undefined;
}

/** A fault that answers with an ARM error. */
export interface ErrorFaultRule extends FaultMatch {
  /** Status to answer. */
  readonly status: number;
  /** ARM error code. */
  readonly code: string;
  /** Error message; a default is made up. */
  readonly message?: string | undefined;
  /** `Retry-After` header value in seconds. */
  readonly retryAfterSeconds?: number | undefined;
}

/**
 * A fault that never answers: the request is read and the connection left open, silent, as a
 * stalled front end or a lost response leaves it (until the client gives up or the double stops).
 */
export interface HangFaultRule extends FaultMatch {
  /** Never answer. */
  readonly hang: true;
}

/** A fault rule of {@link ArmComputeDouble.injectFault}. */
export type FaultRule = ErrorFaultRule | HangFaultRule;

/** A request the double received. */
export interface RecordedRequest {
  /** Method. */
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** Query parameters. */
  readonly query: URLSearchParams;
  /** The `Authorization` header, if any. */
  readonly authorization: string | undefined;
  /** The parsed JSON body, if any. */
  readonly body: unknown;
  /** Status answered. */
  status: number;
}

/** A storage account key as ListKeys returns it. */
export interface StorageAccountKeySpec {
  /** `key1`, `key2`, ... */
  readonly keyName: string;
  /** Base64 key. */
  readonly value: string;
  /** `Full` or `Read` (any letter case, as the service might send it). */
  readonly permissions: string;
}

/** A storage account of {@link ArmComputeDouble.addStorageAccount}. */
export interface StorageAccountSpec {
  /** Account name. */
  readonly name: string;
  /** Resource group (created in the double if new). */
  readonly resourceGroup: string;
  /** Keys, in the order ListKeys returns them. */
  readonly keys: readonly StorageAccountKeySpec[];
  /** `primaryEndpoints.blob`; default `https://<name>.blob.core.windows.net/`. */
  readonly blobEndpoint?: string | undefined;
  /** Region; default `westeurope`. */
  readonly location?: string | undefined;
  /** Whether the account has Kerberos keys: ListKeys with `$expand=kerb` then appends a `kerb1` key. */
  readonly kerberosKeys?: boolean | undefined;
}

/** Microsoft.Storage actions {@link ArmComputeDouble.denyStorageActions} can refuse. */
export type StorageAction = "listKeys" | "read";

/** Options of {@link startArmComputeDouble}. */
export interface ArmComputeDoubleOptions {
  /** Subscription that exists; default a fixed UUID. */
  readonly subscriptionId?: string | undefined;
  /** Resource groups that exist; default `["stowage-disks", "stowage-snapshots"]`. */
  readonly resourceGroups?: readonly string[] | undefined;
  /** Operation-status polls answered `InProgress` before an operation ends; default 1. */
  readonly operationPolls?: number | undefined;
  /** `completionPercent` of a new incremental snapshot; default 20. */
  readonly initialCompletionPercent?: number | undefined;
  /** Added to `completionPercent` on every `GET` of an incremental snapshot; default 40. */
  readonly completionStep?: number | undefined;
  /** Items per page of list calls; default 100. */
  readonly listPageSize?: number | undefined;
}

/** A running double. */
export interface ArmComputeDouble {
  /** Resource Manager endpoint, `https://127.0.0.1:<port>`. */
  readonly endpoint: string;
  /** Entra ID authority host served by the same server, `https://127.0.0.1:<port>/`. */
  readonly authorityHost: string;
  /** PEM of the self-signed certificate to trust. */
  readonly caCert: string;
  /** Path of that PEM file (removed by `stop`). */
  readonly caCertFile: string;
  /** The subscription. */
  readonly subscriptionId: string;
  /** Tenant, client and secret the token endpoint accepts. */
  readonly tenantId: string;
  /** Client (application) ID. */
  readonly clientId: string;
  /** Client secret. */
  readonly clientSecret: string;
  /** The federated (Kubernetes service account) token the token endpoint accepts as `client_assertion`. */
  readonly federatedToken: string;
  /** Every request so far, in order. */
  readonly requests: RecordedRequest[];
  /** Number of tokens issued. */
  readonly tokensIssued: () => number;
  /** The `scope` of every token request, in order. */
  readonly tokenScopes: string[];
  /** Full ARM ID of a disk. */
  diskId(resourceGroup: string, name: string): string;
  /** Full ARM ID of a snapshot. */
  snapshotId(resourceGroup: string, name: string): string;
  /** The stored resource with this ID (case-insensitive), if any. */
  resource(id: string): ArmResource | undefined;
  /** Marks a disk as attached to a VM (or detached with `undefined`). */
  attach(diskId: string, vmId: string | undefined): void;
  /** Answers matching requests with an error (or never); returns a counter of the requests it hit. */
  injectFault(rule: FaultRule): { readonly hits: () => number };
  /** Removes every injected fault; returns how many matching requests were still to fail. */
  clearFaults(): number;
  /** The next `count` operations end `Failed` with this error. */
  failNextOperations(count: number, error: { code: string; message: string }): void;
  /** The next `count` operations stay `InProgress` forever. */
  hangNextOperations(count: number): void;
  /** Sends `Retry-After: <seconds>` on operation-status answers (`undefined` to stop). */
  setOperationRetryAfter(seconds: number | undefined): void;
  /** Changes how much `completionPercent` rises on each `GET` of an incremental snapshot. */
  setCompletionStep(step: number): void;
  /** Adds (or replaces) a storage account; returns its ARM ID. */
  addStorageAccount(account: StorageAccountSpec): string;
  /** Answers these storage account calls with 403 `AuthorizationFailed` from now on (empty list to allow all again). */
  denyStorageActions(actions: readonly StorageAction[]): void;
  /** Stops the server and removes the certificate files. */
  stop(): Promise<void>;
}

interface Operation {
  readonly id: string;
  readonly resourceId: string;
  readonly kind: "create" | "delete";
  pollsLeft: number;
  status: "InProgress" | "Succeeded" | "Failed";
  readonly outcome: "succeed" | "fail" | "hang";
  readonly error?: { code: string; message: string } | undefined;
  readonly startTime: string;
  readonly location: string;
}

const NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$/;
const FORBIDDEN_TAG = /[<>%&\\?/]/;
const API_VERSION = /^\d{4}-\d{2}-\d{2}(-preview)?$/;
const DISK_SKUS = new Set(["Standard_LRS", "Premium_LRS", "StandardSSD_LRS", "UltraSSD_LRS", "Premium_ZRS", "StandardSSD_ZRS", "PremiumV2_LRS"]);

function armError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "x-ms-failure-cause": "gateway", ...headers });
  res.end(JSON.stringify({ error: { code, message } }));
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...headers });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Starts the double on a free loopback port. */
export async function startArmComputeDouble(options: ArmComputeDoubleOptions = {}): Promise<ArmComputeDouble> {
  const subscriptionId = options.subscriptionId ?? "00000000-0000-4000-8000-000000000001";
  const tenantId = "11111111-1111-4111-8111-111111111111";
  const clientId = "22222222-2222-4222-8222-222222222222";
  const clientSecret = `secret-${randomBytes(8).toString("hex")}`;
  const federatedToken = `eyJ.federated-${randomBytes(8).toString("hex")}.sig`;
  const groups = new Set((options.resourceGroups ?? ["stowage-disks", "stowage-snapshots"]).map((g) => g.toLowerCase()));
  const operationPolls = options.operationPolls ?? 1;
  const initialPercent = options.initialCompletionPercent ?? 20;
  let step = options.completionStep ?? 40;
  const pageSize = options.listPageSize ?? 100;

  const dir = await mkdtemp(join(tmpdir(), "stowage-arm-double-"));
  const { keyPem: key, certPem: cert, certPath: certFile } = await makeSelfSignedCertificate(dir);

  const resources = new Map<string, ArmResource>();
  const storageAccounts = new Map<string, StorageAccountSpec & { id: string }>(); // id (lower case) → account
  let deniedStorage = new Set<StorageAction>();
  const operations = new Map<string, Operation>();
  const busy = new Map<string, string>(); // resource id (lower case) → running operation id
  const tokens = new Set<string>();
  const tokenScopes: string[] = [];
  const requests: RecordedRequest[] = [];
  const faults: { rule: FaultRule; left: number; hits: number }[] = [];
  const pendingOutcomes: { outcome: "fail" | "hang"; error?: { code: string; message: string } }[] = [];
  let retryAfter: number | undefined;
  let base = "";

  const diskId = (rg: string, name: string): string => `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Compute/disks/${name}`;
  const snapshotId = (rg: string, name: string): string => `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Compute/snapshots/${name}`;

  function startOperation(resourceId: string, kind: "create" | "delete", location: string): Operation {
    const next = pendingOutcomes.shift();
    const op: Operation = {
      id: randomUUID(),
      resourceId,
      kind,
      pollsLeft: operationPolls,
      status: "InProgress",
      outcome: next?.outcome ?? "succeed",
      error: next?.error,
      startTime: new Date().toISOString(),
      location,
    };
    operations.set(op.id, op);
    busy.set(resourceId.toLowerCase(), op.id);
    return op;
  }

  function finish(op: Operation): void {
    if (op.status !== "InProgress" || op.outcome === "hang") return;
    if (op.pollsLeft > 0) {
      op.pollsLeft -= 1;
      return;
    }
    busy.delete(op.resourceId.toLowerCase());
    const resource = resources.get(op.resourceId.toLowerCase());
    if (op.outcome === "fail") {
      op.status = "Failed";
      if (resource !== undefined) resource.properties.provisioningState = "Failed";
      return;
    }
    op.status = "Succeeded";
    if (op.kind === "delete") resources.delete(op.resourceId.toLowerCase());
    else if (resource !== undefined) resource.properties.provisioningState = "Succeeded";
  }

  function operationHeaders(op: Operation): Record<string, string> {
    const path = `/subscriptions/${subscriptionId}/providers/Microsoft.Compute/locations/${op.location}`;
    return {
      "azure-asyncoperation": `${base}${path}/DiskOperations/${op.id}?api-version=2026-03-02`,
      location: `${base}${path}/DiskOperations/${op.id}?monitor=true&api-version=2026-03-02`,
    };
  }

  function view(resource: ArmResource): ArmResource {
    return structuredClone(resource);
  }

  function badTags(tags: unknown): string | undefined {
    if (tags === undefined || tags === null) return undefined;
    if (typeof tags !== "object") return "tags must be an object";
    const entries = Object.entries(tags as Record<string, unknown>);
    if (entries.length > 50) return "at most 50 tags are allowed";
    for (const [k, v] of entries) {
      if (FORBIDDEN_TAG.test(k)) return `The tag name '${k}' has invalid characters '<,>,%,&,\\,?,/'`;
      if (k.length > 512 || typeof v !== "string" || v.length > 256) return `The tag '${k}' is too long or not a string`;
    }
    return undefined;
  }

  function handleToken(req: IncomingMessage, res: ServerResponse, path: string, body: string): void {
    if (path.endsWith("/.well-known/openid-configuration")) {
      const tenant = path.split("/")[1] ?? tenantId;
      json(res, 200, {
        token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
        authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
        end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
        device_authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/devicecode`,
        issuer: `${base}/${tenant}/v2.0`,
        jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
        response_modes_supported: ["query", "fragment", "form_post"],
        token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
      });
      return;
    }
    if (path.endsWith("/oauth2/v2.0/token") && req.method === "POST") {
      const form = new URLSearchParams(body);
      const tenant = path.split("/")[1];
      if (tenant !== tenantId) {
        json(res, 400, { error: "invalid_request", error_description: `AADSTS90002: Tenant '${tenant ?? ""}' not found.` });
        return;
      }
      const assertion = form.get("client_assertion_type") === "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ? form.get("client_assertion") : null;
      if (assertion !== null && (form.get("client_id") !== clientId || assertion !== federatedToken)) {
        json(res, 401, { error: "invalid_client", error_description: "AADSTS700213: No matching federated identity record found for presented assertion." });
        return;
      }
      if (assertion === null && (form.get("client_id") !== clientId || form.get("client_secret") !== clientSecret)) {
        json(res, 401, { error: "invalid_client", error_description: "AADSTS7000215: Invalid client secret provided." });
        return;
      }
      tokenScopes.push(form.get("scope") ?? "");
      const token = `tok-${randomBytes(12).toString("hex")}`;
      tokens.add(token);
      json(res, 200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: token });
      return;
    }
    json(res, 404, { error: "not_found", error_description: `no such endpoint ${path}` });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", base);
    const path = url.pathname;
    const text = await readBody(req);
    let body: unknown;
    try {
      body = text === "" ? undefined : (JSON.parse(text) as unknown);
    } catch {
      body = text;
    }
    const record: RecordedRequest = { method: req.method ?? "", path, query: url.searchParams, authorization: req.headers.authorization, body, status: 0 };
    const original = res.writeHead.bind(res);
    const patched = (status: number, ...rest: unknown[]): ServerResponse => {
      record.status = status;
      return (original as (s: number, ...r: unknown[]) => ServerResponse)(status, ...rest);
    };
    res.writeHead = patched;

    if (!path.startsWith("/subscriptions/")) {
      handleToken(req, res, path, text);
      return;
    }
    requests.push(record);

    for (const fault of faults) {
      if (fault.left > 0 && fault.rule.path.test(path) && (fault.rule.method === undefined || fault.rule.method === req.method)) {
        fault.left -= 1;
        fault.hits += 1;
        const rule = fault.rule;
        if ("hang" in rule) return;
        armError(res, rule.status, rule.code, rule.message ?? `injected ${rule.code}`, rule.retryAfterSeconds === undefined ? {} : { "retry-after": String(rule.retryAfterSeconds) });
        return;
      }
    }

    const apiVersion = url.searchParams.get("api-version");
    if (apiVersion === null || apiVersion === "") {
      armError(res, 400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.");
      return;
    }
    if (!API_VERSION.test(apiVersion)) {
      armError(res, 400, "InvalidApiVersionParameter", `The api-version '${apiVersion}' is invalid.`);
      return;
    }
    const auth = req.headers.authorization ?? "";
    if (!auth.startsWith("Bearer ")) {
      armError(res, 401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", { "www-authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/"' });
      return;
    }
    if (!tokens.has(auth.slice("Bearer ".length))) {
      armError(res, 401, "InvalidAuthenticationToken", "The access token is invalid.");
      return;
    }

    const segments = path.split("/").filter((s) => s !== "");
    // subscriptions/{sub}/...
    if (segments[1]?.toLowerCase() !== subscriptionId.toLowerCase()) {
      armError(res, 404, "SubscriptionNotFound", `The subscription '${segments[1] ?? ""}' could not be found.`);
      return;
    }
    // Operation status: subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/DiskOperations/{id}
    if (segments[2]?.toLowerCase() === "providers" && segments[4]?.toLowerCase() === "locations" && segments[6]?.toLowerCase() === "diskoperations" && req.method === "GET") {
      const op = operations.get(segments[7] ?? "");
      if (op === undefined) {
        armError(res, 404, "NotFound", "The operation was not found.");
        return;
      }
      finish(op);
      const extra: Record<string, string> = retryAfter === undefined ? {} : { "retry-after": String(retryAfter) };
      if (url.searchParams.get("monitor") === "true") {
        if (op.status === "InProgress") {
          json(res, 202, {}, { ...operationHeaders(op), ...extra });
          return;
        }
        if (op.status === "Failed") {
          armError(res, 500, op.error?.code ?? "InternalExecutionError", op.error?.message ?? "The operation failed.");
          return;
        }
        const resource = resources.get(op.resourceId.toLowerCase());
        if (op.kind === "delete" || resource === undefined) res.writeHead(204).end();
        else json(res, 200, view(resource));
        return;
      }
      const status: Record<string, unknown> = { name: op.id, status: op.status, startTime: op.startTime };
      if (op.status !== "InProgress") status.endTime = new Date().toISOString();
      if (op.status === "Failed") status.error = op.error ?? { code: "InternalExecutionError", message: "The operation failed." };
      const resource = resources.get(op.resourceId.toLowerCase());
      if (op.status === "Succeeded" && op.kind === "create" && resource !== undefined) status.properties = { output: view(resource) };
      json(res, 200, status, extra);
      return;
    }
    // Subscription-wide list: subscriptions/{sub}/providers/Microsoft.Compute/{disks|snapshots}
    if (segments.length === 5 && segments[2]?.toLowerCase() === "providers" && req.method === "GET") {
      list(res, url, (segments[4] ?? "").toLowerCase(), undefined);
      return;
    }
    if (segments[2]?.toLowerCase() === "resourcegroups" && segments[4]?.toLowerCase() === "providers" && segments[5]?.toLowerCase() === "microsoft.storage") {
      handleStorage(req, res, url, segments);
      return;
    }
    if (segments[2]?.toLowerCase() !== "resourcegroups" || segments[4]?.toLowerCase() !== "providers" || segments[5]?.toLowerCase() !== "microsoft.compute") {
      armError(res, 404, "NotFound", `No HTTP resource was found that matches the request URI '${path}'.`);
      return;
    }
    const rg = segments[3] ?? "";
    if (!groups.has(rg.toLowerCase())) {
      armError(res, 404, "ResourceGroupNotFound", `Resource group '${rg}' could not be found.`);
      return;
    }
    const collection = (segments[6] ?? "").toLowerCase();
    if (collection !== "disks" && collection !== "snapshots") {
      armError(res, 404, "NotFound", `No HTTP resource was found that matches the request URI '${path}'.`);
      return;
    }
    if (segments.length === 7 && req.method === "GET") {
      list(res, url, collection, rg);
      return;
    }
    if (segments.length !== 8) {
      armError(res, 404, "NotFound", `No HTTP resource was found that matches the request URI '${path}'.`);
      return;
    }
    const name = segments[7] ?? "";
    const id = collection === "disks" ? diskId(rg, name) : snapshotId(rg, name);
    const type = collection === "disks" ? "Microsoft.Compute/disks" : "Microsoft.Compute/snapshots";
    const existing = resources.get(id.toLowerCase());
    const notFound = (): void => armError(res, 404, "ResourceNotFound", `The Resource '${type}/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);

    if (req.method === "GET") {
      if (existing === undefined) {
        notFound();
        return;
      }
      if (collection === "snapshots" && existing.properties.incremental === true && existing.properties.provisioningState === "Succeeded") {
        const pct = typeof existing.properties.completionPercent === "number" ? existing.properties.completionPercent : 100;
        existing.properties.completionPercent = Math.min(100, pct + step);
      }
      json(res, 200, view(existing));
      return;
    }
    if (req.method === "DELETE") {
      if (existing === undefined) {
        res.writeHead(204).end();
        return;
      }
      if (busy.has(id.toLowerCase())) {
        armError(res, 409, "Conflict", `Operation on ${type} '${name}' is not allowed while another operation is in progress.`);
        return;
      }
      if (existing.managedBy !== undefined && existing.managedBy !== "") {
        armError(res, 409, "OperationNotAllowed", `Disk '${name}' is attached to VM '${existing.managedBy}'.`);
        return;
      }
      const op = startOperation(existing.id, "delete", existing.location);
      res.writeHead(202, operationHeaders(op)).end();
      return;
    }
    if (req.method !== "PUT") {
      armError(res, 405, "MethodNotAllowed", `The requested resource does not support http method '${req.method ?? ""}'.`);
      return;
    }
    if (!NAME.test(name)) {
      armError(res, 400, "InvalidResourceName", `The resource name '${name}' is invalid. It must be 1 to 80 characters: letters, digits, '_', '.', '-', starting with a letter, digit or '_' and ending with a letter, digit or '_'.`);
      return;
    }
    if (typeof body !== "object" || body === null) {
      armError(res, 400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.");
      return;
    }
    const input = body as { location?: unknown; tags?: unknown; sku?: { name?: unknown }; zones?: unknown; properties?: Record<string, unknown> };
    if (typeof input.location !== "string" || input.location === "") {
      armError(res, 400, "LocationRequired", "The location property is required for this definition.");
      return;
    }
    const tagProblem = badTags(input.tags);
    if (tagProblem !== undefined) {
      armError(res, 400, "InvalidTagNameCharacters", tagProblem);
      return;
    }
    if (busy.has(id.toLowerCase())) {
      armError(res, 409, "Conflict", `Operation on ${type} '${name}' is not allowed while another operation is in progress.`);
      return;
    }
    const props = input.properties ?? {};
    const creation = (props.creationData ?? {}) as { createOption?: unknown; sourceResourceId?: unknown };
    const createOption = typeof creation.createOption === "string" ? creation.createOption : "";
    if (existing !== undefined) {
      const before = (existing.properties.creationData as { createOption?: unknown; sourceResourceId?: unknown } | undefined) ?? {};
      const text = (v: unknown): string => (typeof v === "string" ? v.toLowerCase() : "");
      if (before.createOption !== createOption || text(before.sourceResourceId) !== text(creation.sourceResourceId)) {
        armError(res, 409, "PropertyChangeNotAllowed", "Changing property 'creationData' is not allowed.");
        return;
      }
    }
    let source: ArmResource | undefined;
    if (createOption === "Copy" || createOption === "CopyStart" || createOption === "Restore") {
      const sourceId = typeof creation.sourceResourceId === "string" ? creation.sourceResourceId : "";
      source = resources.get(sourceId.toLowerCase());
      if (source === undefined) {
        armError(res, 404, "NotFound", `Resource '${sourceId}' was not found or is not accessible.`);
        return;
      }
      if (source.location.toLowerCase() !== input.location.toLowerCase() && createOption !== "CopyStart") {
        armError(res, 400, "InvalidParameter", `The source resource '${sourceId}' is in '${source.location}', not '${input.location}'.`);
        return;
      }
      if (source.properties.provisioningState !== "Succeeded") {
        armError(res, 409, "OperationNotAllowed", `Source resource '${sourceId}' is in provisioning state '${String(source.properties.provisioningState)}'.`);
        return;
      }
      if (source.type === "Microsoft.Compute/snapshots" && typeof source.properties.completionPercent === "number" && source.properties.completionPercent < 100) {
        armError(res, 409, "OperationNotAllowed", `Snapshot '${source.name}' has not finished copying (completionPercent ${String(source.properties.completionPercent)}).`);
        return;
      }
    } else if (createOption !== "Empty") {
      armError(res, 400, "InvalidParameter", `Required parameter 'creationData.createOption' is missing or not supported ('${createOption}').`);
      return;
    }
    const zones = Array.isArray(input.zones) ? (input.zones as unknown[]).map(String) : undefined;
    let sku: { name: string } | undefined;
    if (collection === "disks") {
      const skuName = typeof input.sku?.name === "string" ? input.sku.name : "Standard_LRS";
      if (!DISK_SKUS.has(skuName)) {
        armError(res, 400, "InvalidParameter", `The value '${skuName}' of parameter 'sku.name' is invalid.`);
        return;
      }
      sku = { name: skuName };
      if (zones !== undefined && (zones.length !== 1 || !/^[1-3]$/.test(zones[0] ?? ""))) {
        armError(res, 400, "InvalidParameter", "zones must hold one of '1', '2', '3'.");
        return;
      }
      if (zones !== undefined && skuName.endsWith("_ZRS")) {
        armError(res, 400, "InvalidParameter", `Zone-redundant disks (${skuName}) cannot be pinned to a zone.`);
        return;
      }
      const iops = props.diskIOPSReadWrite;
      if (iops !== undefined && skuName !== "UltraSSD_LRS" && skuName !== "PremiumV2_LRS") {
        armError(res, 400, "InvalidParameter", `diskIOPSReadWrite can be set only for UltraSSD_LRS and PremiumV2_LRS disks, not ${skuName}.`);
        return;
      }
    } else {
      sku = { name: typeof input.sku?.name === "string" ? input.sku.name : "Standard_LRS" };
    }
    const sizeGB = typeof props.diskSizeGB === "number" ? props.diskSizeGB : typeof source?.properties.diskSizeGB === "number" ? source.properties.diskSizeGB : undefined;
    if (sizeGB === undefined) {
      armError(res, 400, "InvalidParameter", "Required parameter 'diskSizeGB' is missing (null).");
      return;
    }
    const now = new Date().toISOString();
    const incremental = collection === "snapshots" && props.incremental === true;
    const properties: Record<string, unknown> = {
      ...(existing?.properties ?? {}),
      creationData: { createOption, ...(source === undefined ? {} : { sourceResourceId: creation.sourceResourceId, sourceUniqueId: source.properties.uniqueId }) },
      diskSizeGB: sizeGB,
      diskSizeBytes: sizeGB * 1024 ** 3,
      timeCreated: existing?.properties.timeCreated ?? now,
      uniqueId: existing?.properties.uniqueId ?? randomUUID(),
      provisioningState: "Updating",
    };
    if (collection === "disks") {
      properties.diskState = "Unattached";
      if (props.diskIOPSReadWrite !== undefined) properties.diskIOPSReadWrite = props.diskIOPSReadWrite;
      else if (sku.name === "UltraSSD_LRS" || sku.name === "PremiumV2_LRS") properties.diskIOPSReadWrite = 3000;
    } else {
      properties.incremental = incremental;
      if (incremental && existing === undefined) properties.completionPercent = initialPercent;
    }
    const resource: ArmResource = {
      id,
      name,
      type,
      location: input.location,
      tags: (input.tags as Record<string, string> | undefined) ?? {},
      sku,
      ...(zones === undefined ? {} : { zones }),
      ...(existing?.managedBy === undefined ? {} : { managedBy: existing.managedBy }),
      properties,
    };
    resources.set(id.toLowerCase(), resource);
    const op = startOperation(id, "create", input.location);
    json(res, existing === undefined ? 201 : 200, view(resource), operationHeaders(op));
  }

  const storageAccountId = (rg: string, name: string): string => `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Storage/storageAccounts/${name}`;

  // subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{name}[/listKeys]
  function handleStorage(req: IncomingMessage, res: ServerResponse, url: URL, segments: string[]): void {
    const rg = segments[3] ?? "";
    const name = segments[7] ?? "";
    const action = segments.length === 9 && segments[8]?.toLowerCase() === "listkeys" && req.method === "POST" ? "listKeys" : segments.length === 8 && req.method === "GET" ? "read" : undefined;
    if (segments[6]?.toLowerCase() !== "storageaccounts" || action === undefined) {
      armError(res, 404, "NotFound", `No HTTP resource was found that matches the request URI '${url.pathname}'.`);
      return;
    }
    const id = storageAccountId(rg, name);
    if (deniedStorage.has(action)) {
      const permission = action === "listKeys" ? "Microsoft.Storage/storageAccounts/listkeys/action" : "Microsoft.Storage/storageAccounts/read";
      armError(
        res,
        403,
        "AuthorizationFailed",
        `The client '${clientId}' with object id '${clientId}' does not have authorization to perform action '${permission}' over scope '${id}' or the scope is invalid. If access was recently granted, please refresh your credentials.`,
      );
      return;
    }
    if (!groups.has(rg.toLowerCase())) {
      armError(res, 404, "ResourceGroupNotFound", `Resource group '${rg}' could not be found.`);
      return;
    }
    const account = storageAccounts.get(id.toLowerCase());
    if (account === undefined) {
      armError(res, 404, "ResourceNotFound", `The Resource 'Microsoft.Storage/storageAccounts/${name}' under resource group '${rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix`);
      return;
    }
    if (action === "listKeys") {
      const created = "2026-01-01T00:00:00.0000000Z";
      const keys: Record<string, unknown>[] = account.keys.map((k) => ({ keyName: k.keyName, value: k.value, permissions: k.permissions, creationTime: created }));
      if (url.searchParams.get("$expand") === "kerb" && account.kerberosKeys === true) keys.push({ keyName: "kerb1", value: randomBytes(64).toString("base64"), permissions: "Full", creationTime: created });
      json(res, 200, { keys });
      return;
    }
    const blob = account.blobEndpoint ?? `https://${account.name}.blob.core.windows.net/`;
    json(res, 200, {
      id: account.id,
      name: account.name,
      type: "Microsoft.Storage/storageAccounts",
      location: account.location ?? "westeurope",
      tags: {},
      sku: { name: "Standard_LRS", tier: "Standard" },
      kind: "StorageV2",
      properties: {
        provisioningState: "Succeeded",
        creationTime: "2026-01-01T00:00:00.0000000Z",
        primaryLocation: account.location ?? "westeurope",
        statusOfPrimary: "available",
        allowSharedKeyAccess: true,
        supportsHttpsTrafficOnly: true,
        primaryEndpoints: { blob, dfs: blob.replace(".blob.", ".dfs."), queue: blob.replace(".blob.", ".queue."), table: blob.replace(".blob.", ".table."), file: blob.replace(".blob.", ".file.") },
      },
    });
  }

  function list(res: ServerResponse, url: URL, collection: string, rg: string | undefined): void {
    const type = collection === "disks" ? "microsoft.compute/disks" : collection === "snapshots" ? "microsoft.compute/snapshots" : "";
    if (type === "") {
      armError(res, 404, "NotFound", `No HTTP resource was found that matches the request URI '${url.pathname}'.`);
      return;
    }
    const all = [...resources.values()]
      .filter((r) => r.type.toLowerCase() === type && (rg === undefined || r.id.toLowerCase().includes(`/resourcegroups/${rg.toLowerCase()}/`)))
      .sort((a, b) => (a.properties.timeCreated as string).localeCompare(b.properties.timeCreated as string) || a.id.localeCompare(b.id));
    const skipToken = url.searchParams.get("$skiptoken");
    const start = skipToken === null ? 0 : Number(skipToken);
    if (!Number.isInteger(start) || start < 0) {
      armError(res, 400, "InvalidSkipToken", `The skip token '${skipToken ?? ""}' is invalid.`);
      return;
    }
    const page = all.slice(start, start + pageSize).map(view);
    const out: Record<string, unknown> = { value: page };
    if (start + pageSize < all.length) {
      const next = new URL(url.href);
      next.searchParams.set("$skiptoken", String(start + pageSize));
      out.nextLink = next.href;
    }
    json(res, 200, out);
  }

  const server: Server = createServer({ key, cert }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) armError(res, 500, "InternalServerError", error instanceof Error ? error.message : String(error));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  base = `https://127.0.0.1:${port}`;

  return {
    endpoint: base,
    authorityHost: `${base}/`,
    caCert: cert,
    caCertFile: certFile,
    subscriptionId,
    tenantId,
    clientId,
    clientSecret,
    federatedToken,
    requests,
    tokensIssued: () => tokens.size,
    tokenScopes,
    diskId,
    snapshotId,
    resource: (id) => resources.get(id.toLowerCase()),
    attach(id, vmId) {
      const disk = resources.get(id.toLowerCase());
      if (disk === undefined) throw new Error(`no disk ${id}`);
      disk.managedBy = vmId;
      disk.properties.diskState = vmId === undefined ? "Unattached" : "Attached";
    },
    injectFault(rule) {
      const entry = { rule, left: rule.times ?? 1, hits: 0 };
      faults.push(entry);
      return { hits: () => entry.hits };
    },
    clearFaults() {
      const left = faults.reduce((sum, f) => sum + f.left, 0);
      faults.length = 0;
      return left;
    },
    failNextOperations(count, error) {
      for (let i = 0; i < count; i++) pendingOutcomes.push({ outcome: "fail", error });
    },
    hangNextOperations(count) {
      for (let i = 0; i < count; i++) pendingOutcomes.push({ outcome: "hang" });
    },
    setCompletionStep(value) {
      step = value;
    },
    setOperationRetryAfter(seconds) {
      retryAfter = seconds;
    },
    addStorageAccount(account) {
      groups.add(account.resourceGroup.toLowerCase());
      const id = storageAccountId(account.resourceGroup, account.name);
      storageAccounts.set(id.toLowerCase(), { ...account, id });
      return id;
    },
    denyStorageActions(actions) {
      deniedStorage = new Set(actions);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Options of {@link createDisk}. */
export interface CreateDiskOptions {
  /** Resource group; default `stowage-disks`. */
  readonly resourceGroup?: string | undefined;
  /** Region; default `westeurope`. */
  readonly location?: string | undefined;
  /** SKU; default `Premium_LRS`. */
  readonly sku?: string | undefined;
  /** Zone, e.g. `"1"`. */
  readonly zone?: string | undefined;
  /** Size in GiB; default 4. */
  readonly sizeGB?: number | undefined;
  /** Tags. */
  readonly tags?: Record<string, string> | undefined;
}

/**
 * A real `ComputeManagementClient` for the double, authenticated with a client secret through
 * the double's token endpoint: what tests use to set up disks out of band.
 */
export async function armComputeClient(double: ArmComputeDouble): Promise<import("@azure/arm-compute").ComputeManagementClient> {
  const { ComputeManagementClient } = await import("@azure/arm-compute");
  const { ClientSecretCredential } = await import("@azure/identity");
  const { rootCertificates } = await import("node:tls");
  const tlsOptions = { ca: [...rootCertificates, double.caCert] };
  const credential = new ClientSecretCredential(double.tenantId, double.clientId, double.clientSecret, {
    authorityHost: double.authorityHost,
    disableInstanceDiscovery: true,
    tlsOptions,
  });
  return new ComputeManagementClient(credential, double.subscriptionId, { endpoint: double.endpoint, tlsOptions, retryOptions: { maxRetries: 0 } });
}

/** Creates an empty managed disk through `@azure/arm-compute` and returns its ARM ID. */
export async function createDisk(double: ArmComputeDouble, name: string, options: CreateDiskOptions = {}): Promise<string> {
  const client = await armComputeClient(double);
  const disk = await client.disks
    .createOrUpdate(options.resourceGroup ?? "stowage-disks", name, {
      location: options.location ?? "westeurope",
      sku: { name: options.sku ?? "Premium_LRS" },
      ...(options.zone === undefined ? {} : { zones: [options.zone] }),
      tags: options.tags ?? {},
      creationData: { createOption: "Empty" },
      diskSizeGB: options.sizeGB ?? 4,
    }, { updateIntervalInMs: 10 })
    .pollUntilDone();
  return disk.id ?? "";
}

/** Writes a credentials file (dotenv) for the double's service principal into `dir` and returns its path. */
export async function writeCredentialsFile(double: ArmComputeDouble, dir: string, overrides: Record<string, string> = {}, name = "cloud"): Promise<string> {
  const { writeFile } = await import("node:fs/promises");
  const values: Record<string, string> = {
    AZURE_SUBSCRIPTION_ID: double.subscriptionId,
    AZURE_RESOURCE_GROUP: "stowage-disks",
    AZURE_CLOUD_NAME: "AzurePublicCloud",
    AZURE_TENANT_ID: double.tenantId,
    AZURE_CLIENT_ID: double.clientId,
    AZURE_CLIENT_SECRET: double.clientSecret,
    ...overrides,
  };
  const file = join(dir, name);
  await writeFile(file, Object.entries(values).filter(([, v]) => v !== "").map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
  return file;
}

/** The BlockStore configuration pointing at the double (HTTPS, its CA, its token endpoint). */
export function doubleConfig(double: ArmComputeDouble, credentialsFile: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    credentialsFile,
    resourceGroup: "stowage-snapshots",
    resourceManagerEndpoint: double.endpoint,
    activeDirectoryAuthorityURI: double.authorityHost,
    caCert: double.caCertFile,
    pollInterval: "20ms",
    ...extra,
  };
}
