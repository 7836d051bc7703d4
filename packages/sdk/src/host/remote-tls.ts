/**
 * The host's side of a remote plugin service's mutual TLS: the PEM files checked before the first
 * connection, grpc-js channel credentials that re-read them on an interval (so certificates
 * rotated by cert-manager are used by new connections), and what a failed handshake means.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { isIP } from "node:net";
import { checkServerIdentity, connect } from "node:tls";
import { experimental, type ChannelCredentials } from "@grpc/grpc-js";
import { Code, StowageError } from "../errors.js";

/** How the host authenticates to the servers of a remote plugin service and checks them. */
export interface RemoteTls {
  /** PEM file of the CA (or CAs) that signed the servers' certificates. */
  readonly caFile: string;
  /** PEM file of the host's client certificate (its identity on the servers). */
  readonly certFile: string;
  /** PEM file of the client certificate's private key. */
  readonly keyFile: string;
  /** Name the servers' certificates must carry (default: the host part of the service's address). */
  readonly serverName?: string | undefined;
  /** How often the three files are read again, in ms (default 60 000), so rotated certificates are used. */
  readonly refreshIntervalMs?: number | undefined;
}

/** Default of {@link RemoteTls.refreshIntervalMs}. */
export const TLS_REFRESH_DEFAULT_MS = 60_000;

/** The credentials of one remote plugin service. */
export interface RemoteCredentials {
  /** Channel credentials for every replica's connection. */
  readonly credentials: ChannelCredentials;
  /** What a failed TLS handshake or a transport error means, as a sentence that says what to do (undefined: nothing TLS-specific). */
  explain(detail: string, serverName: string): string | undefined;
  /**
   * Diagnoses a connection grpc-js reported only as failed: one TLS handshake with the same files
   * to `address` (`host:port`), watched for a second. Returns what is wrong, or undefined when
   * TLS is not the problem.
   */
  probe(address: string, serverName: string): Promise<string | undefined>;
}

/** How long a probe connection waits for a server to drop it after the handshake. */
const PROBE_WATCH_MS = 1_000;

async function readPem(what: string, option: string, path: string, service: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "";
    throw new StowageError(Code.InvalidArgument, `remote plugin service ${service}: cannot read ${option} ${path} (${code === "" ? (error as Error).message : code}); give the PEM file of ${what}`, {
      metadata: { address: service, file: path },
    });
  }
}

/**
 * Reads and checks the three files of `tls` (the CA and the certificate parse, the key parses and
 * belongs to the certificate), so a mistake stops the host's start with a message naming the file
 * instead of failing every connection later. The key's content never appears in a message.
 */
export async function checkTlsFiles(tls: RemoteTls, service: string): Promise<void> {
  const [ca, cert, key] = await Promise.all([
    readPem("the CA that signed the servers' certificates", "tls.caFile", tls.caFile, service),
    readPem("the host's client certificate", "tls.certFile", tls.certFile, service),
    readPem("the client certificate's private key", "tls.keyFile", tls.keyFile, service),
  ]);
  const bad = (option: string, path: string, what: string): StowageError =>
    new StowageError(Code.InvalidArgument, `remote plugin service ${service}: ${option} ${path} ${what}`, { metadata: { address: service, file: path } });
  try {
    new X509Certificate(ca);
  } catch {
    throw bad("tls.caFile", tls.caFile, "holds no PEM certificate; give the CA certificate that signed the servers' certificates");
  }
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch {
    throw bad("tls.certFile", tls.certFile, "holds no PEM certificate; give the host's client certificate");
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw bad("tls.keyFile", tls.keyFile, "holds no unencrypted PEM private key; give the key of tls.certFile");
  }
  if (!certificate.checkPrivateKey(privateKey)) throw bad("tls.keyFile", tls.keyFile, `is not the key of the certificate in tls.certFile ${tls.certFile}; give the matching pair`);
}

/** Substrings of Node's and OpenSSL's errors when the server's certificate chain does not lead to a trusted CA. */
const UNTRUSTED_SERVER = [/unable to verify the first certificate/i, /self[- ]signed certificate/i, /unable to get (local )?issuer certificate/i, /certificate signature failure/i, /UNABLE_TO_VERIFY_LEAF_SIGNATURE/];
/** … when the server's certificate does not carry the expected name. */
const WRONG_NAME = [/does not match certificate's altnames/i, /ERR_TLS_CERT_ALTNAME_INVALID/, /Hostname\/IP does not match/i];
/** … when the server rejected the host's certificate (TLS alerts), or dropped the handshake. */
const CLIENT_REFUSED = [/alert (certificate required|unknown ca|bad certificate|certificate unknown|certificate expired|handshake failure|decrypt error|access denied)/i, /peer did not return a certificate/i];
/** … when a certificate has expired or is not yet valid. */
const EXPIRED = [/certificate has expired/i, /certificate is not yet valid/i];

/**
 * Channel credentials for `tls` whose files are re-read every `refreshIntervalMs` (grpc-js's
 * FileWatcherCertificateProvider): a rotated certificate is used by the next connection; open
 * connections keep the one they were made with.
 */
export function remoteCredentials(tls: RemoteTls, service: string): RemoteCredentials {
  const provider = new experimental.FileWatcherCertificateProvider({
    caCertificateFile: tls.caFile,
    certificateFile: tls.certFile,
    privateKeyFile: tls.keyFile,
    refreshIntervalMs: tls.refreshIntervalMs ?? TLS_REFRESH_DEFAULT_MS,
  });
  const credentials = experimental.createCertificateProviderChannelCredentials(provider, provider);
  const refused = `the server refused the host's client certificate (tls.certFile ${tls.certFile}): it must be signed by a CA the server trusts (its --tls-client-ca) and be valid`;
  const explain = (detail: string, serverName: string): string | undefined => {
    const has = (patterns: readonly RegExp[]): boolean => patterns.some((p) => p.test(detail));
    if (has(WRONG_NAME)) return `the server's certificate does not carry the name ${JSON.stringify(serverName)}; set tls.serverName of ${service} to a name its certificate carries, or reissue it with that name`;
    if (has(UNTRUSTED_SERVER)) return `the server's certificate is not signed by the CA in tls.caFile ${tls.caFile}; give the CA that signed the servers' certificates`;
    if (has(EXPIRED)) return `a certificate has expired or is not yet valid; check the server's certificate and the host's (tls.certFile ${tls.certFile}), and the clocks`;
    if (has(CLIENT_REFUSED)) return refused;
    if (/Failed to load credentials/i.test(detail)) return `the host could not load its TLS files (tls.caFile ${tls.caFile}, tls.certFile ${tls.certFile}, tls.keyFile ${tls.keyFile}); check that they exist and hold PEM data`;
    return undefined;
  };
  return {
    credentials,
    explain,
    async probe(address, serverName) {
      const at = address.lastIndexOf(":");
      const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
      let files: [Buffer, Buffer, Buffer];
      try {
        files = await Promise.all([readFile(tls.caFile), readFile(tls.certFile), readFile(tls.keyFile)]);
      } catch {
        return explain("Failed to load credentials", serverName);
      }
      const [ca, cert, key] = files;
      const socket = connect({
        host,
        port: Number(address.slice(at + 1)),
        ca,
        cert,
        key,
        ALPNProtocols: ["h2"],
        ...(isIP(serverName) === 0 ? { servername: serverName } : {}),
        checkServerIdentity: (_host, peer) => checkServerIdentity(serverName, peer),
      });
      try {
        return await new Promise<string | undefined>((resolve) => {
          let secure = false;
          let timer: NodeJS.Timeout | undefined;
          socket.once("secureConnect", () => {
            secure = true;
            timer = setTimeout(() => {
              resolve(undefined);
            }, PROBE_WATCH_MS);
          });
          // Under TLS 1.3 a server checks the client's certificate after the handshake and drops the connection.
          const dropped = (detail: string): void => {
            clearTimeout(timer);
            if (secure) resolve(`${refused} (it closed the connection right after the handshake${detail === "" ? "" : `: ${detail}`})`);
            else resolve(explain(detail, serverName));
          };
          socket.once("error", (error: Error) => {
            dropped(error.message);
          });
          socket.once("close", () => {
            dropped("");
          });
        });
      } finally {
        socket.destroy();
      }
    },
  };
}
