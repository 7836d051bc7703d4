/**
 * Direct-transfer plans (contract 5.8) between their TypeScript and wire forms, with the checks
 * both sides apply to what the other sent.
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, StowageError } from "../errors.js";
import {
  GetPlanSchema,
  HttpRequestSchema,
  PutPlanSchema,
  PartChecksum as WirePartChecksum,
  type GetPlan as WireGetPlan,
  type HttpRequest as WireHttpRequest,
  type PutPlan as WirePutPlan,
} from "../gen/stowage/v1/object_store_pb.js";
import type { GetPlan, HttpRequestSpec, PartChecksum, PutPlan } from "../types.js";
import { objectInfoFromWire, objectInfoToWire, toNumber } from "./convert.js";

/** The longest a plan may stay valid (clause 5.8.3). */
export const MAX_PLAN_VALIDITY_MS = 15 * 60_000;

const PART_CHECKSUMS: Record<PartChecksum, WirePartChecksum> = {
  none: WirePartChecksum.UNSPECIFIED,
  sha256: WirePartChecksum.SHA256,
  md5: WirePartChecksum.MD5,
  crc32: WirePartChecksum.CRC32,
};

/** Bytes of each part checksum. */
export const PART_CHECKSUM_BYTES: Record<PartChecksum, number> = { none: 0, sha256: 32, md5: 16, crc32: 4 };

/** A part checksum to the wire. */
export function partChecksumToWire(value: PartChecksum): WirePartChecksum {
  return PART_CHECKSUMS[value];
}

/** A part checksum from the wire; an unknown one fails (a host cannot compute it). */
export function partChecksumFromWire(value: WirePartChecksum): PartChecksum {
  const found = (Object.keys(PART_CHECKSUMS) as PartChecksum[]).find((k) => PART_CHECKSUMS[k] === value);
  if (found === undefined) throw new StowageError(Code.Internal, `the plugin asked for part checksum ${String(value)}, which this host does not know`);
  return found;
}

/**
 * Checks a request a plugin signed (clause 5.8.3): a known method, an absolute http(s) URL, header
 * names in lower case. The error never quotes the URL, which is a credential (clause 5.8.4).
 */
export function checkHttpRequest(request: HttpRequestSpec, what: string): HttpRequestSpec {
  if (request.method !== "GET" && request.method !== "PUT") {
    throw new StowageError(Code.Internal, `${what}: the plugin signed a ${JSON.stringify(request.method)} request; only GET and PUT are allowed (contract 5.8.3)`);
  }
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new StowageError(Code.Internal, `${what}: the plugin signed a request whose URL does not parse (contract 5.8.3)`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new StowageError(Code.Internal, `${what}: the plugin signed a ${url.protocol} URL; only https: and http: are allowed (contract 5.8.3)`);
  }
  for (const name of Object.keys(request.headers)) {
    if (name !== name.toLowerCase() || name === "" || /[^!#$%&'*+\-.^_`|~0-9a-z]/.test(name)) {
      throw new StowageError(Code.Internal, `${what}: the plugin signed a request with the header name ${JSON.stringify(name)}; names are lower-case tokens (contract 5.8.3)`);
    }
  }
  return request;
}

/** A signed request to the wire. */
export function httpRequestToWire(request: HttpRequestSpec): WireHttpRequest {
  return create(HttpRequestSchema, { method: request.method, url: request.url, headers: { ...request.headers } });
}

/** A signed request from the wire, checked. */
export function httpRequestFromWire(request: WireHttpRequest | undefined, what: string): HttpRequestSpec {
  if (request === undefined) throw new StowageError(Code.Internal, `${what}: the plugin's plan has no request`);
  return checkHttpRequest({ method: request.method as HttpRequestSpec["method"], url: request.url, headers: request.headers }, what);
}

/**
 * An expiry from the wire: required, and, for a signed request (`capped`), no later than clause
 * 5.8.3 allows. An upload's own window (`PutPlan.expires_at`) has no such cap.
 */
export function expiryFromWire(value: Timestamp | undefined, what: string, capped = true, now = Date.now()): Date {
  if (value === undefined) throw new StowageError(Code.Internal, `${what}: the plugin's plan has no expires_at`);
  const date = timestampDate(value);
  // A second of slack for the two clocks' reading of "now".
  if (capped && date.getTime() > now + MAX_PLAN_VALIDITY_MS + 1000) {
    throw new StowageError(Code.Internal, `${what}: the plugin's plan is valid until ${date.toISOString()}, beyond the 15 minutes contract 5.8.3 allows`);
  }
  return date;
}

/** A read plan to the wire. */
export function getPlanToWire(plan: GetPlan): WireGetPlan {
  return create(GetPlanSchema, {
    object: objectInfoToWire(plan.object),
    contentLength: BigInt(plan.contentLength),
    offset: BigInt(plan.offset),
    ...(plan.request === undefined ? {} : { request: httpRequestToWire(plan.request) }),
    expiresAt: timestampFromDate(plan.expiresAt),
  });
}

/** A read plan from the wire, checked (clause 5.8.5). */
export function getPlanFromWire(plan: WireGetPlan, what: string): GetPlan {
  if (plan.object === undefined) throw new StowageError(Code.Internal, `${what}: the plugin's plan describes no object`);
  const contentLength = toNumber(plan.contentLength);
  const offset = toNumber(plan.offset);
  if (contentLength < 0 || offset < 0) throw new StowageError(Code.Internal, `${what}: the plugin's plan has a negative offset or length`);
  return {
    object: objectInfoFromWire(plan.object),
    contentLength,
    offset,
    request: contentLength === 0 && plan.request === undefined ? undefined : httpRequestFromWire(plan.request, what),
    expiresAt: expiryFromWire(plan.expiresAt, what),
  };
}

/** An upload plan to the wire. */
export function putPlanToWire(plan: PutPlan): WirePutPlan {
  return create(PutPlanSchema, {
    uploadId: plan.uploadId,
    partSize: BigInt(plan.partSize),
    partChecksum: partChecksumToWire(plan.partChecksum),
    maxParallelParts: plan.maxParallelParts,
    expiresAt: timestampFromDate(plan.expiresAt),
  });
}

/** An upload plan from the wire, checked (clause 5.8.8). */
export function putPlanFromWire(plan: WirePutPlan, what: string): PutPlan {
  const partSize = toNumber(plan.partSize);
  if (plan.uploadId === "") throw new StowageError(Code.Internal, `${what}: the plugin's plan has no upload_id`);
  if (partSize < 1) throw new StowageError(Code.Internal, `${what}: the plugin's plan has part size ${String(partSize)}; it must be at least 1`);
  if (plan.maxParallelParts < 0) throw new StowageError(Code.Internal, `${what}: the plugin's plan has a negative max_parallel_parts`);
  return {
    uploadId: plan.uploadId,
    partSize,
    partChecksum: partChecksumFromWire(plan.partChecksum),
    maxParallelParts: plan.maxParallelParts,
    expiresAt: expiryFromWire(plan.expiresAt, what, false),
  };
}

/** The number of parts of a body of `size` bytes cut at `partSize` (clause 5.8.8). */
export function partCount(size: number, partSize: number): number {
  return Math.max(1, Math.ceil(size / partSize));
}

/** Whether a plugin's answer is a refusal. */
export function isDeclined(value: object): value is { readonly declined: string } {
  return typeof (value as { declined?: unknown }).declined === "string";
}
