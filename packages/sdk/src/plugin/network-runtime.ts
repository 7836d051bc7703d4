/**
 * The life of a plugin executable in network mode (docs/protocol.md "Network mode"): a shared
 * service, e.g. a Kubernetes Deployment, that many hosts call over TCP with mutual TLS. The server
 * certificate, its key and the client CA are reloaded from disk as they rotate; callers are
 * identified by their client certificates and kept apart in sessions; an optional plaintext port
 * serves only the health service for probes; SIGTERM drains the server before it exits.
 *
 * Not served here: go-plugin's controller (a remote host must not stop the service), stdio, the
 * broker and the data channel.
 */
import { X509Certificate } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { experimental, Server, ServerCredentials } from "@grpc/grpc-js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { createHclogLogger, SecretRedactor, type LogLevel, type Logger } from "../logging.js";
import { serviceDefinition } from "../wire/rpc.js";
import { AccessPolicy, loadAllowList } from "./allow-list.js";
import type { PluginDefinition } from "./definition.js";
import { healthService, ServingState } from "./go-plugin-services.js";
import type { NetworkSettings } from "./network-options.js";
import type { ServeProtocolAdapter } from "./protocol-adapter.js";
import { SessionTable } from "./sessions.js";

/** Options of {@link runNetworkServer}. */
export interface NetworkRunOptions {
  readonly plugins: readonly PluginDefinition[];
  readonly logLevel: LogLevel;
  readonly settings: NetworkSettings;
}

/** The server options both runtimes use: large PUT chunks in, unbounded GET chunks out. */
const SERVER_OPTIONS = { "grpc.max_receive_message_length": 64 * 1024 * 1024, "grpc.max_send_message_length": -1 };

/** Binds `server` to `address`; resolves the `HOST:PORT` it listens on (the real port for port 0). */
function bind(server: Server, address: string, credentials: ServerCredentials): Promise<string> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error === null) resolve(`${address.slice(0, address.lastIndexOf(":"))}:${String(port)}`);
      else reject(new Error(`cannot listen on ${address}: ${error.message}`, { cause: error }));
    });
  });
}

/** Stops the start with a message on stderr and status 1. */
function refuse(message: string): never {
  process.stderr.write(`stowage plugin: ${message}\n`);
  process.exit(1);
}

/**
 * Serves `protocol` over mTLS until SIGTERM (or SIGINT), then drains and exits 0. Prints one JSON
 * line on stdout once listening: `{"listening":"HOST:PORT","health":"HOST:PORT"}`.
 */
export async function runNetworkServer(protocol: ServeProtocolAdapter, options: NetworkRunOptions): Promise<void> {
  const { settings } = options;
  const secrets = new SecretRedactor();
  const logger = createHclogLogger({ level: options.logLevel, secrets });
  const register = protocol.registerNetwork?.bind(protocol);
  if (register === undefined) refuse(`the ${protocol.name} protocol is not served over the network`);
  let sessions: SessionTable;
  try {
    const policy = new AccessPolicy(settings.allow === undefined ? undefined : loadAllowList(settings.allow));
    sessions = new SessionTable({ definitions: options.plugins, logger, secrets, policy, idleMs: settings.sessionIdleMs, maxSessions: settings.maxSessions });
    warnUnknownPlugins(policy, sessions, logger);
  } catch (error) {
    refuse((error as Error).message);
  }

  const state = new ServingState();
  const cancel = new AbortController();
  const server = new Server(SERVER_OPTIONS);
  server.addService(serviceDefinition(Health), healthService(state));
  register(server, {
    descriptors: sessions.descriptors,
    registryFor: (call) => sessions.registryFor(call),
    pluginsFor: (call) => sessions.pluginsFor(call),
    bindSessions: (implementation) => sessions.bindSessions(implementation),
    logger,
    shutdown: cancel.signal,
  });
  // One provider reads all three files, at start and every refresh interval; grpc-js applies a
  // changed certificate, key or CA to new TLS connections (open ones keep theirs).
  const files = new experimental.FileWatcherCertificateProvider({
    certificateFile: settings.tlsCert,
    privateKeyFile: settings.tlsKey,
    caCertificateFile: settings.tlsClientCa,
    refreshIntervalMs: settings.tlsRefreshMs,
  });
  // Bound only once the files are loaded: grpc-js drops connections while it has no certificate,
  // so a listening line printed earlier would announce a port that refuses its first callers.
  try {
    await watchCertificates(files, logger);
  } catch (error) {
    refuse((error as Error).message);
  }
  const credentials = experimental.createCertificateProviderServerCredentials(files, files, true);
  const health = settings.healthListen === undefined ? undefined : new Server(SERVER_OPTIONS);
  health?.addService(serviceDefinition(Health), healthService(state));

  let listening: string;
  let healthAddress: string | undefined;
  try {
    listening = await bind(server, settings.listen, credentials);
    if (health !== undefined && settings.healthListen !== undefined) healthAddress = await bind(health, settings.healthListen, ServerCredentials.createInsecure());
  } catch (error) {
    server.forceShutdown();
    health?.forceShutdown();
    refuse((error as Error).message);
  }

  let stopping: Promise<void> | undefined;
  const drain = (signal: string): void => {
    stopping ??= (async () => {
      logger.info({ signal, drainMs: settings.drainMs }, "draining: health is NOT_SERVING, no new calls are taken, in-flight calls may finish");
      state.stop();
      const drained = await Promise.race([
        new Promise<boolean>((resolve) => {
          server.tryShutdown(() => resolve(true));
        }),
        sleep(settings.drainMs).then(() => false),
      ]);
      if (!drained) {
        logger.warn({ drainMs: settings.drainMs }, "the drain time is over; cancelling the calls still in flight");
        cancel.abort();
        // Let the cancelled calls send their status, then close what is left.
        await Promise.race([new Promise<void>((resolve) => server.tryShutdown(() => resolve())), sleep(500)]);
      }
      server.forceShutdown();
      // Bounded: a plugin that hangs in close() must not keep the process from exiting.
      await Promise.race([sessions.close(), sleep(1000)]);
      health?.forceShutdown();
    })();
    void stopping.then(() => process.exit(0));
  };
  process.on("SIGTERM", () => {
    drain("SIGTERM");
  });
  process.on("SIGINT", () => {
    drain("SIGINT");
  });
  process.on("uncaughtException", (error) => {
    logger.error({ error: error.stack ?? error.message }, "uncaught exception; the plugin keeps serving");
  });
  process.on("unhandledRejection", (reason) => {
    logger.error({ error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason) }, "unhandled rejection; the plugin keeps serving");
  });

  const line = { listening, ...(healthAddress === undefined ? {} : { health: healthAddress }) };
  process.stdout.write(`${JSON.stringify(line)}\n`);
  logger.info({ ...line, plugins: sessions.descriptors.map((d) => d.name).join(", "), allowList: settings.allow ?? "none: every verified client may use every plugin" }, "serving over mTLS");
}

/** Warns about allow-list rules naming plugins this executable does not serve (a typo, or a list shared by several servers). */
function warnUnknownPlugins(policy: AccessPolicy, sessions: SessionTable, logger: Logger): void {
  const served = new Set(sessions.descriptors.map((d) => d.name));
  const unknown = [...policy.mentioned()].filter((name) => name !== "*" && !served.has(name));
  if (unknown.length > 0) logger.warn({ plugins: unknown.join(", "), served: [...served].join(", ") }, "the allow list names plugins this executable does not serve");
}

/**
 * Resolves once `files` has read the server's certificate and key and the client CA bundle, and
 * from then on logs each new server certificate it reads (its serial number and expiry, never the
 * key) and each failed read.
 *
 * @throws Error when the first read fails.
 */
function watchCertificates(files: experimental.CertificateProvider, logger: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    let serial: string | undefined;
    let caLoaded = false;
    const ready = (): void => {
      if (serial !== undefined && caLoaded) resolve();
    };
    files.addIdentityCertificateListener((update) => {
      let certificate: X509Certificate | undefined;
      try {
        certificate = update === null ? undefined : new X509Certificate(update.certificate);
      } catch {
        certificate = undefined;
      }
      if (certificate === undefined) {
        if (serial === undefined) reject(new Error("cannot load the server certificate and key (--tls-cert, --tls-key): check that both files are readable PEM"));
        else logger.warn("cannot read the server certificate and key (--tls-cert, --tls-key); new connections are refused until they can be read");
        return;
      }
      if (serial !== undefined && certificate.serialNumber !== serial) {
        logger.info({ serial: certificate.serialNumber, validTo: certificate.validTo }, "serving a new server certificate to new connections");
      }
      serial = certificate.serialNumber;
      ready();
    });
    files.addCaCertificateListener((update) => {
      if (update === null) {
        if (!caLoaded) reject(new Error("cannot load the client CA bundle (--tls-client-ca): check that the file is readable PEM"));
        else logger.warn("cannot read the client CA bundle (--tls-client-ca); new connections are refused until it can be read");
        return;
      }
      caLoaded = true;
      ready();
    });
  });
}
