/**
 * Who calls a plugin served over the network: the names in the client certificate that TLS
 * verified (docs/protocol.md "Network mode"). Each URI SAN is `uri:<uri>`, each DNS SAN
 * `dns:<name>`, and the subject's common name `cn:<cn>`; an allow-list rule matches a caller when
 * its identity equals any of them.
 */
import type { PeerCertificate } from "node:tls";
import type { ServiceCall } from "./protocol-adapter.js";

/** The identities of one caller, most specific first (URIs, then DNS names, then the CN). */
export interface CallerIdentity {
  /** Every name, as `uri:…`, `dns:…` and `cn:…`. */
  readonly names: readonly string[];
  /** The name that stands for the caller in logs and errors: its first name, or `unknown`. */
  readonly display: string;
  /** A stable key of the whole set of names: callers with the same names share their sessions' limits. */
  readonly key: string;
}

/**
 * Splits Node's `subjectaltname` string (`DNS:a, URI:spiffe://x, IP Address:1.2.3.4`) into its
 * entries. Node writes a value that contains a comma or a quote as a JSON string literal.
 */
export function parseSubjectAltNames(text: string): { type: string; value: string }[] {
  const entries: { type: string; value: string }[] = [];
  let at = 0;
  while (at < text.length) {
    while (text[at] === " " || text[at] === ",") at++;
    if (at >= text.length) break;
    const colon = text.indexOf(":", at);
    if (colon < 0) break;
    const type = text.slice(at, colon);
    at = colon + 1;
    let value: string;
    if (text[at] === '"') {
      // A JSON string literal: find its closing quote, skipping escaped characters.
      let end = at + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(text.slice(at, end + 1)) as string;
      } catch {
        value = text.slice(at + 1, end);
      }
      at = end + 1;
    } else {
      const comma = text.indexOf(", ", at);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(at, end);
      at = end;
    }
    entries.push({ type, value });
  }
  return entries;
}

/** The identities a verified peer certificate carries. */
export function identityOfCertificate(certificate: PeerCertificate | undefined): CallerIdentity {
  const names: string[] = [];
  const sans = certificate?.subjectaltname === undefined ? [] : parseSubjectAltNames(certificate.subjectaltname);
  for (const san of sans) if (san.type === "URI") names.push(`uri:${san.value}`);
  for (const san of sans) if (san.type === "DNS") names.push(`dns:${san.value}`);
  // Node gives a repeated attribute as an array.
  const cn: unknown = certificate?.subject?.CN;
  for (const value of Array.isArray(cn) ? (cn as unknown[]) : [cn]) if (typeof value === "string" && value !== "") names.push(`cn:${value}`);
  const unique = [...new Set(names)];
  return { names: unique, display: unique[0] ?? "unknown", key: JSON.stringify([...unique].sort()) };
}

/** The identities of the caller of a call, from the client certificate its TLS connection verified. */
export function callerIdentity(call: ServiceCall): CallerIdentity {
  const auth = call.getAuthContext();
  // An empty certificate object (`{}`) is what Node gives when the peer sent none.
  const certificate = auth.sslPeerCertificate;
  return identityOfCertificate(certificate !== undefined && Object.keys(certificate).length > 0 ? certificate : undefined);
}
