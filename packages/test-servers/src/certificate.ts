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

/** A certificate and its key in PEM files, made by {@link makeTestPki}. */
export interface PemFiles {
  /** Path of the PEM certificate. */
  readonly certPath: string;
  /** Path of the PEM private key (unencrypted). */
  readonly keyPath: string;
  /** The certificate's PEM text. */
  readonly certPem: string;
  /** The private key's PEM text. */
  readonly keyPem: string;
}

/** What a client certificate of {@link TestPki.client} names. */
export interface ClientCertificateOptions {
  /** The subject's common name. */
  readonly cn: string;
  /** A URI subject alternative name (e.g. a SPIFFE ID). */
  readonly uri?: string;
}

/** A throw-away public key infrastructure for mutual-TLS tests, made by {@link makeTestPki}. */
export interface TestPki {
  /** The CA that signs the server's and the clients' certificates. */
  readonly ca: PemFiles;
  /** The server's certificate (SANs 127.0.0.1, localhost and the given DNS name), signed by {@link ca}. */
  readonly server: PemFiles;
  /** A second CA, unrelated to {@link ca}. */
  readonly otherCa: PemFiles;
  /** A client certificate (CN `stranger`) signed by {@link otherCa}: servers trusting {@link ca} refuse it. */
  readonly otherClient: PemFiles;
  /** Makes a client certificate signed by {@link ca}, in files named after `name`. */
  client(name: string, options: ClientCertificateOptions): Promise<PemFiles>;
  /** Makes another server certificate and key from {@link ca} (a new serial number), in files named after `name`: for rotation. */
  serverCertificate(name: string): Promise<PemFiles>;
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"];

async function openssl(args: readonly string[], what: string): Promise<void> {
  try {
    await promisify(execFile)("openssl", args);
  } catch (error) {
    throw new Error(`cannot make ${what}: the 'openssl' command failed or is missing (apt-get install openssl)`, { cause: error });
  }
}

async function pemFiles(certPath: string, keyPath: string): Promise<PemFiles> {
  return { certPath, keyPath, certPem: await readFile(certPath, "utf8"), keyPem: await readFile(keyPath, "utf8") };
}

async function makeCa(dir: string, name: string, cn: string): Promise<PemFiles> {
  const certPath = path.join(dir, `${name}.pem`);
  const keyPath = path.join(dir, `${name}.key`);
  await openssl(
    ["req", "-x509", ...EC_KEY, "-subj", `/CN=${cn}`, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", keyPath, "-out", certPath],
    `the test CA ${cn}`,
  );
  return pemFiles(certPath, keyPath);
}

/** A leaf certificate signed by `ca` (openssl picks a random serial number). */
async function makeLeaf(dir: string, name: string, ca: PemFiles, cn: string, san: string | undefined, usage: "serverAuth" | "clientAuth"): Promise<PemFiles> {
  const certPath = path.join(dir, `${name}.pem`);
  const keyPath = path.join(dir, `${name}.key`);
  const args = ["req", "-x509", "-CA", ca.certPath, "-CAkey", ca.keyPath, ...EC_KEY, "-subj", `/CN=${cn}`, "-addext", "basicConstraints=CA:FALSE"];
  args.push("-addext", `extendedKeyUsage=${usage}`);
  if (san !== undefined) args.push("-addext", `subjectAltName=${san}`);
  args.push("-keyout", keyPath, "-out", certPath);
  await openssl(args, `the test certificate ${name}`);
  return pemFiles(certPath, keyPath);
}

/**
 * Makes a test PKI with the `openssl` command (OpenSSL 3), in `dir`, valid for two days: a CA, a
 * server certificate for 127.0.0.1, localhost and `dnsName`, a second unrelated CA with a client
 * certificate of its own, and a maker of client certificates (a CN and an optional URI SAN) and of
 * further server certificates from the first CA. All keys are P-256.
 *
 * @param dir - An existing folder.
 * @param dnsName - A DNS name the server certificate also carries (default `stowage-plugins.test`).
 * @throws Error when `openssl` is missing or fails.
 */
export async function makeTestPki(dir: string, dnsName = "stowage-plugins.test"): Promise<TestPki> {
  const ca = await makeCa(dir, "ca", "Stowage test CA");
  const otherCa = await makeCa(dir, "other-ca", "Unrelated test CA");
  const serverSan = `IP:127.0.0.1,DNS:localhost,DNS:${dnsName}`;
  const serverCertificate = (name: string): Promise<PemFiles> => makeLeaf(dir, name, ca, dnsName, serverSan, "serverAuth");
  return {
    ca,
    otherCa,
    server: await serverCertificate("server"),
    otherClient: await makeLeaf(dir, "other-client", otherCa, "stranger", undefined, "clientAuth"),
    client: (name, options) => makeLeaf(dir, name, ca, options.cn, options.uri === undefined ? undefined : `URI:${options.uri}`, "clientAuth"),
    serverCertificate,
  };
}
