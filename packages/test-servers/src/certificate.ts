import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

/** A certificate and key made by {@link makeSelfSignedCertificate}. */
export interface SelfSignedCertificate {
  /** Path of the PEM certificate. */
  readonly certPath: string;
  /** Path of the PEM private key (unencrypted). */
  readonly keyPath: string;
  /** The certificate's PEM text. */
  readonly certPem: string;
  /** The private key's PEM text. */
  readonly keyPem: string;
}

/** File names for {@link makeSelfSignedCertificate}. */
export interface CertificateFileNames {
  /** Name of the certificate file in the folder. Default `cert.pem`. */
  readonly certFile?: string;
  /** Name of the key file in the folder. Default `key.pem`. */
  readonly keyFile?: string;
}

/**
 * Makes a throw-away self-signed certificate (P-256) for 127.0.0.1 and localhost with the `openssl`
 * command, in `dir`, valid for two days. Servers started over HTTPS for tests use it; clients trust
 * `certPem`.
 *
 * @param dir - An existing folder.
 * @param names - File names inside `dir`.
 * @returns The paths and PEM texts of the certificate and key.
 * @throws Error when `openssl` is missing or fails.
 */
export async function makeSelfSignedCertificate(dir: string, names: CertificateFileNames = {}): Promise<SelfSignedCertificate> {
  const certPath = path.join(dir, names.certFile ?? "cert.pem");
  const keyPath = path.join(dir, names.keyFile ?? "key.pem");
  const args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"];
  args.push("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", keyPath, "-out", certPath);
  try {
    await promisify(execFile)("openssl", args);
  } catch (error) {
    throw new Error("cannot make a self-signed certificate: the 'openssl' command failed or is missing (apt-get install openssl)", { cause: error });
  }
  return { certPath, keyPath, certPem: await readFile(certPath, "utf8"), keyPem: await readFile(keyPath, "utf8") };
}
