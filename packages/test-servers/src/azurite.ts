import { readFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { createRequire } from "node:module";
import path from "node:path";
import { makeSelfSignedCertificate, type SelfSignedCertificate } from "./certificate.js";
import {
  httpProbe,
  makeTempDir,
  spawnServer,
  waitUntilHealthy,
  withOutput,
  type CommonServerOptions,
  type RunningServer,
} from "./process.js";

/** The storage account every Azurite server has: Microsoft's published development account. */
export const AZURITE_ACCOUNT_NAME = "devstoreaccount1";

/** The key of {@link AZURITE_ACCOUNT_NAME}; published by Microsoft, so not a secret. */
export const AZURITE_ACCOUNT_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Options for {@link startAzurite}. */
export interface AzuriteOptions extends CommonServerOptions {
  /**
   * Cap on the memory that blob contents may take, in MB (`--extentMemoryLimit`), so a runaway test
   * cannot eat the machine. Default 512.
   */
  readonly extentMemoryLimitMb?: number;
  /** Ignore unsupported headers and query parameters (`--loose`). Default false. */
  readonly loose?: boolean;
  /**
   * Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 and localhost, made with the
   * `openssl` command (`--cert`/`--key`). The certificate is in {@link AzuriteServer.caCertPem}.
   * Default false.
   */
  readonly https?: boolean;
  /**
   * Accept OAuth bearer tokens (`--oauth basic`: Azurite checks the issuer, audience and lifetime of
   * the JWT, not its signature). Needs `https`. Default: off.
   */
  readonly oauth?: "basic";
}

/** A running Azurite blob server, from {@link startAzurite}. */
export interface AzuriteServer extends RunningServer {
  /** The account's blob endpoint, `http://127.0.0.1:<port>/devstoreaccount1`. */
  readonly blobEndpoint: string;
  /** The storage account name, {@link AZURITE_ACCOUNT_NAME}. */
  readonly accountName: string;
  /** The storage account key, {@link AZURITE_ACCOUNT_KEY}. */
  readonly accountKey: string;
  /** A connection string for `BlobServiceClient.fromConnectionString`. */
  readonly connectionString: string;
  /** With `https`: the PEM of the self-signed certificate (trust it as a CA). */
  readonly caCertPem?: string | undefined;
  /** With `https`: the path of that PEM file (valid until `stop()`). */
  readonly caCertPath?: string | undefined;
}

/** A probe for an HTTPS server with a certificate signed by `ca`: any HTTP answer is healthy. */
function httpsProbe(url: string, ca: string): (signal: AbortSignal) => Promise<boolean> {
  return (signal) =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(url, { ca, signal }, (res) => {
        res.resume();
        resolve(true);
      });
      req.on("error", reject);
      req.end();
    });
}

const LISTENING = /Azurite Blob service successfully listens on (https?:\/\/[^\s]+)/;

/**
 * Finds the `azurite-blob` entry script of the `azurite` npm package (a dependency of this package).
 * @internal
 */
export async function azuriteBlobScript(): Promise<string> {
  const require = createRequire(import.meta.url);
  let manifest: string;
  try {
    manifest = require.resolve("azurite/package.json");
  } catch (error) {
    throw new Error(
      "Azurite is not installed: the npm package 'azurite' cannot be found from @stowage/test-servers. " +
        "Run 'pnpm install' at the repo root (check with: bash scripts/install-test-servers azurite).",
      { cause: error },
    );
  }
  const parsed = JSON.parse(await readFile(manifest, "utf8")) as { bin?: Record<string, string> };
  const relative = parsed.bin?.["azurite-blob"];
  if (relative === undefined) throw new Error(`${manifest} has no 'azurite-blob' executable`);
  return path.join(path.dirname(manifest), relative);
}

/**
 * Starts Azurite's blob service in memory on 127.0.0.1 at a port the OS picks, with telemetry off and
 * the API-version check skipped (current SDKs send newer versions than Azurite knows), and waits until
 * it answers HTTP.
 *
 * @param options - See {@link AzuriteOptions}.
 * @returns The running server; call `stop()` when done.
 * @throws Error when the azurite package is missing, or with the server's output when it does not start.
 */
export async function startAzurite(options: AzuriteOptions = {}): Promise<AzuriteServer> {
  const script = await azuriteBlobScript();
  // Azurite writes nothing in memory mode, but run it in a temp dir in case a version does.
  const tempRoot = await makeTempDir("azurite");
  const args = [
    script,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    "0",
    "--inMemoryPersistence",
    "--extentMemoryLimit",
    String(options.extentMemoryLimitMb ?? 512),
    "--disableTelemetry",
    "--skipApiVersionCheck",
    "--silent",
  ];
  if (options.loose === true) args.push("--loose");
  let certificate: SelfSignedCertificate | undefined;
  if (options.https === true) {
    certificate = await makeSelfSignedCertificate(tempRoot);
    args.push("--cert", certificate.certPath, "--key", certificate.keyPath);
  }
  if (options.oauth !== undefined) {
    if (certificate === undefined) throw new Error("Azurite accepts OAuth tokens only over HTTPS: pass https: true with oauth");
    args.push("--oauth", options.oauth);
  }
  const server = spawnServer({
    name: "azurite",
    command: process.execPath,
    args,
    env: { AZURITE_ACCOUNTS: "", ...options.env },
    cwd: tempRoot,
    stopGraceMs: options.stopGraceMs,
    tempDirs: [tempRoot],
  });

  // Port 0: the real address is only in the "successfully listens" log line.
  let address: string | undefined;
  let pending = "";
  server.onOutput((text) => {
    if (address !== undefined) return;
    pending = (pending + text).slice(-4_096);
    address = LISTENING.exec(pending)?.[1]?.replace(/\/+$/, "");
  });
  await waitUntilHealthy({
    name: "azurite",
    server,
    // No health endpoint: any HTTP answer (403 for an unauthenticated list) means it is up.
    probe: async (signal) =>
      address !== undefined &&
      (await (certificate === undefined
        ? httpProbe(`${address}/${AZURITE_ACCOUNT_NAME}?comp=list`)
        : httpsProbe(`${address}/${AZURITE_ACCOUNT_NAME}?comp=list`, certificate.certPem))(signal)),
    startTimeoutMs: options.startTimeoutMs,
  });
  if (address === undefined) {
    await server.stop();
    throw new Error(withOutput("azurite started but its address could not be read", server.output()));
  }
  const blobEndpoint = `${address}/${AZURITE_ACCOUNT_NAME}`;
  return {
    get pid() {
      return server.pid;
    },
    output: server.output,
    stop: server.stop,
    pause: server.pause,
    resume: server.resume,
    kill: server.kill,
    blobEndpoint,
    accountName: AZURITE_ACCOUNT_NAME,
    accountKey: AZURITE_ACCOUNT_KEY,
    connectionString:
      `DefaultEndpointsProtocol=${certificate === undefined ? "http" : "https"};AccountName=${AZURITE_ACCOUNT_NAME};` +
      `AccountKey=${AZURITE_ACCOUNT_KEY};BlobEndpoint=${blobEndpoint};`,
    caCertPem: certificate?.certPem,
    caCertPath: certificate?.certPath,
  };
}
