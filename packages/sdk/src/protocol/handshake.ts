/**
 * The go-plugin handshake line: `CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT[|MUX]`.
 */
import { Code, StowageError } from "../errors.js";

/** A parsed handshake line. */
export interface Handshake {
  /** Core protocol version; must be 1. */
  readonly core: number;
  /** Application protocol version. */
  readonly app: number;
  /** `unix` or `tcp`. */
  readonly network: "unix" | "tcp";
  /** Socket path or `host:port`. */
  readonly address: string;
  /** `grpc` (absent in the line means `netrpc`). */
  readonly protocol: string;
  /** Server certificate for AutoMTLS, empty otherwise. */
  readonly certificate: string;
}

/** Formats a handshake line (without the newline), with the trailing empty certificate field. */
export function formatHandshake(h: Omit<Handshake, "protocol" | "certificate"> & Partial<Pick<Handshake, "protocol" | "certificate">>): string {
  return [h.core, h.app, h.network, h.address, h.protocol ?? "grpc", h.certificate ?? ""].join("|");
}

/**
 * Parses and validates a handshake line against what the host accepts. Each failure is a
 * StowageError whose message says what is wrong and what usually causes it.
 */
export function parseHandshake(line: string, accepted: { readonly appVersions: readonly number[] }): Handshake {
  const trimmed = line.trim();
  const parts = trimmed.split("|");
  if (parts.length < 4) {
    throw new StowageError(
      Code.FailedPrecondition,
      `unrecognised first line on the plugin's stdout: ${JSON.stringify(trimmed.slice(0, 200))}. ` +
        "A plugin must print the handshake line before anything else on stdout: log to stderr instead, and check that the file is a Stowage plugin built for this machine",
    );
  }
  const [coreText = "", appText = "", network = "", address = "", protocol = "netrpc", certificate = ""] = parts;
  const core = Number(coreText);
  if (!Number.isInteger(core) || core !== 1) {
    throw new StowageError(Code.FailedPrecondition, `incompatible core protocol version ${JSON.stringify(coreText)} (this host speaks 1); rebuild the plugin with a current SDK`);
  }
  const app = Number(appText);
  if (!Number.isInteger(app) || !accepted.appVersions.includes(app)) {
    throw new StowageError(
      Code.FailedPrecondition,
      `incompatible plugin protocol version ${JSON.stringify(appText)}; this host accepts [${accepted.appVersions.join(", ")}]. Upgrade the plugin or the host so they share a version`,
    );
  }
  if (network !== "unix" && network !== "tcp") {
    throw new StowageError(Code.FailedPrecondition, `unknown address type ${JSON.stringify(network)} in the handshake (expected unix or tcp)`);
  }
  if (address === "") throw new StowageError(Code.FailedPrecondition, "the handshake line has an empty address");
  if (protocol !== "grpc") {
    throw new StowageError(Code.FailedPrecondition, `unsupported plugin protocol ${JSON.stringify(protocol)}; Stowage supports only grpc`);
  }
  return { core, app, network, address, protocol, certificate };
}
