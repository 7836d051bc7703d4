/**
 * The HTTP client of every Azure pipeline of one plugin instance (Blob Storage, Resource Manager,
 * Entra ID): the default client over keep-alive agents that enforce `connectTimeout` and
 * `idleTimeout` on every request, and, where asked, `requestTimeout` on each request
 * attempt, below the pipeline's retry policy.
 *
 * @packageDocumentation
 */
import { createDefaultHttpClient, type HttpClient, type PipelineRequest, type PipelineResponse } from "@azure/core-rest-pipeline";
import { BackendTimeoutError, createBackendAgents, requestDeadline, type BackendTimeouts } from "@stowage/sdk/plugin";
import { rootCertificates } from "node:tls";

/** Options of {@link timedHttpClient}. */
export interface TimedHttpClientOptions {
  /** The timeouts. */
  readonly timeouts: BackendTimeouts;
  /** Extra PEM certificate authorities trusted in addition to the system roots. */
  readonly caCert?: string | undefined;
  /**
   * Also bound each request attempt by `requestTimeoutMs` (a timed-out attempt fails with a
   * retryable `ETIMEDOUT` error). Off for clients whose calls the plugin bounds as a whole.
   */
  readonly perAttemptTimeout?: boolean | undefined;
}

/** An Azure HttpClient that can release its connections. */
export interface TimedHttpClient extends HttpClient {
  /** Closes the pooled connections. */
  readonly destroy: () => void;
}

/** Builds the client; see the module description. */
export function timedHttpClient(options: TimedHttpClientOptions): TimedHttpClient {
  const { timeouts } = options;
  const agents = createBackendAgents({
    timeouts,
    https: options.caCert === undefined ? undefined : { ca: [...rootCertificates, options.caCert] },
  });
  const inner = createDefaultHttpClient();
  return {
    async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
      // The agents carry the CA themselves (a request with an agent ignores its tlsSettings).
      request.agent ??= agents.forUrl(request.url);
      if (options.perAttemptTimeout !== true) return inner.sendRequest(request);
      const deadline = requestDeadline(request.abortSignal as AbortSignal | undefined, timeouts.requestTimeoutMs, `${request.method} ${new URL(request.url).host}`);
      request.abortSignal = deadline.signal;
      try {
        return await inner.sendRequest(request);
      } catch (error) {
        if (deadline.timedOut()) {
          throw new BackendTimeoutError(`no answer from ${new URL(request.url).host} within ${String(timeouts.requestTimeoutMs / 1000)} s (requestTimeoutSeconds)`, "requestTimeoutSeconds");
        }
        throw error;
      } finally {
        deadline.clear();
      }
    },
    destroy: () => {
      agents.destroy();
    },
  };
}
