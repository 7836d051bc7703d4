/**
 * HTTP agents for a plugin's connections to its backend that enforce the connect and idle
 * timeouts of {@link BackendTimeouts} on every request, for HTTP libraries that accept an agent
 * (the AWS SDK's request handler, Azure's pipelines).
 *
 * @packageDocumentation
 */
import type { ClientRequest } from "node:http";
import { Agent as HttpAgent, type AgentOptions as HttpAgentOptions } from "node:http";
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from "node:https";
import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import type { BackendTimeouts } from "./backend-timeouts.js";

/** Options of {@link createBackendAgents}. */
export interface BackendAgentOptions {
  /** The connect and idle timeouts (the request timeout is the caller's, per request). */
  readonly timeouts: Pick<BackendTimeouts, "connectTimeoutMs" | "idleTimeoutMs">;
  /** Most sockets per host; default 50. */
  readonly maxSockets?: number | undefined;
  /** Extra options of the HTTPS agent (`ca`, `rejectUnauthorized`, ...). */
  readonly https?: HttpsAgentOptions | undefined;
}

/** The agents {@link createBackendAgents} makes. */
export interface BackendAgents {
  /** For `http:` URLs. */
  readonly http: HttpAgent;
  /** For `https:` URLs. */
  readonly https: HttpsAgent;
  /** The agent for a URL's scheme. */
  readonly forUrl: (url: string | URL) => HttpAgent | HttpsAgent;
  /** Closes every pooled connection. */
  readonly destroy: () => void;
}

/**
 * The error a request fails with when one of the backend timeouts fires inside an HTTP client (the
 * agents' connect and idle timeouts, or a per-request timeout applied below a library's retry
 * policy): code `ETIMEDOUT`, so retry policies retry it and plugins map it to
 * `UNAVAILABLE`/`BACKEND_UNAVAILABLE` like any failed connection.
 */
export class BackendTimeoutError extends Error {
  /** Always `ETIMEDOUT`, so every network-error mapping treats it as a connection that failed. */
  readonly code = "ETIMEDOUT";
  /**
   * The timeout that fired, by the configuration key's old name (`requestTimeoutSeconds` for
   * `requestTimeout`, …; still accepted as its alias): a stable identifier, as in the `timeout`
   * metadata of the `BACKEND_UNAVAILABLE` errors the timeouts give.
   */
  readonly timeout: "connectTimeoutSeconds" | "requestTimeoutSeconds" | "idleTimeoutSeconds";

  /**
   * @param message - What timed out.
   * @param timeout - The key of the timeout.
   */
  constructor(message: string, timeout: "connectTimeoutSeconds" | "requestTimeoutSeconds" | "idleTimeoutSeconds") {
    super(message);
    this.name = "BackendTimeoutError";
    this.timeout = timeout;
  }
}

function seconds(ms: number): string {
  return `${String(Math.round(ms / 100) / 10)} s`;
}

/**
 * Applies the connect and idle timeouts to one request:
 *
 * - a new connection (TCP, and TLS for https) must be established within `connectTimeoutMs`;
 * - from then until the response starts (the request and its body going out, the server's think
 *   time), the connection must not go `idleTimeoutMs` without a byte in either direction.
 *
 * A timeout destroys the request with a {@link BackendTimeoutError}. Once the response has started,
 * its body is the reader's to guard (see `guardBody`), since only the reader knows whether it is
 * waiting for data or holding the stream back itself.
 */
function guardRequest(req: ClientRequest, timeouts: BackendAgentOptions["timeouts"]): void {
  req.once("socket", (socket: Socket) => {
    let connectTimer: NodeJS.Timeout | undefined;
    const onIdle = (): void => {
      req.destroy(new BackendTimeoutError(`the store's connection carried no data for ${seconds(timeouts.idleTimeoutMs)} (idleTimeoutSeconds)`, "idleTimeoutSeconds"));
    };
    const arm = (): void => {
      socket.setTimeout(timeouts.idleTimeoutMs);
      socket.on("timeout", onIdle);
    };
    const disarm = (): void => {
      if (connectTimer !== undefined) clearTimeout(connectTimer);
      socket.removeListener("timeout", onIdle);
      if (!socket.destroyed) socket.setTimeout(0);
    };
    if (socket.connecting) {
      connectTimer = setTimeout(() => {
        req.destroy(new BackendTimeoutError(`no connection to the store within ${seconds(timeouts.connectTimeoutMs)} (connectTimeoutSeconds)`, "connectTimeoutSeconds"));
      }, timeouts.connectTimeoutMs);
      connectTimer.unref();
      socket.once(socket instanceof TLSSocket ? "secureConnect" : "connect", () => {
        clearTimeout(connectTimer);
        if (!req.destroyed) arm();
      });
    } else {
      arm();
    }
    req.once("response", disarm);
    req.once("close", disarm);
  });
}

/** The part of `http.Agent` that sees each request (stable since Node 0.x, not in the typings). */
interface AddRequest {
  addRequest(req: ClientRequest, options: unknown): void;
}

/**
 * Keep-alive HTTP and HTTPS agents whose requests obey the connect and idle timeouts (see the
 * module description); a timed-out request fails with a `ETIMEDOUT` {@link BackendTimeoutError},
 * which plugins map to `UNAVAILABLE`/`BACKEND_UNAVAILABLE` like any failed connection.
 *
 * @example
 * ```ts
 * const agents = createBackendAgents({ timeouts, https: { ca } });
 * new NodeHttpHandler({ httpAgent: agents.http, httpsAgent: agents.https });
 * ```
 */
export function createBackendAgents(options: BackendAgentOptions): BackendAgents {
  const { timeouts } = options;
  const common: HttpAgentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 50 };
  const http = new HttpAgent(common);
  const https = new HttpsAgent({ ...common, ...options.https });
  for (const agent of [http, https]) {
    const inner = agent as unknown as AddRequest;
    const addRequest = inner.addRequest.bind(agent);
    inner.addRequest = (req, requestOptions) => {
      guardRequest(req, timeouts);
      addRequest(req, requestOptions);
    };
  }
  return {
    http,
    https,
    forUrl: (url) => (new URL(url).protocol === "http:" ? http : https),
    destroy: () => {
      http.destroy();
      https.destroy();
    },
  };
}
