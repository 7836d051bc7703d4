/**
 * IBM Cloud IAM: exchanges an API key for a bearer token and refreshes it before it expires.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { DEFAULT_BACKEND_TIMEOUTS, backendUnavailable, networkErrorCode, withRequestTimeout } from "@stowage/sdk/plugin";

/** IBM Cloud's public IAM token endpoint. */
export const DEFAULT_IAM_ENDPOINT = "https://iam.cloud.ibm.com/identity/token";
/** The OAuth grant type of API-key exchanges. */
export const IAM_APIKEY_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey";

/** Options of {@link IamTokenManager}. */
export interface IamTokenManagerOptions {
  /** The API key. */
  readonly apiKey: string;
  /** The token endpoint; default {@link DEFAULT_IAM_ENDPOINT}. */
  readonly endpoint?: string | undefined;
  /** The clock, in milliseconds since the epoch; `Date.now` by default. */
  readonly now?: (() => number) | undefined;
  /** Refresh once this fraction of the token's lifetime has passed; default 0.8. */
  readonly refreshFraction?: number | undefined;
  /** The fetch function; global `fetch` by default. */
  readonly fetch?: typeof fetch | undefined;
  /**
   * Longest wait for one exchange, the answer's body included; an endpoint that misses it fails with
   * `UNAVAILABLE`/`BACKEND_UNAVAILABLE`. Default `requestTimeout`' default.
   */
  readonly requestTimeoutMs?: number | undefined;
}

interface CachedToken {
  readonly value: string;
  readonly refreshAt: number;
  readonly expiresAt: number;
}

/**
 * Holds an IAM access token for an API key: fetched on first use, refreshed once 80% of its
 * lifetime has passed (or when it has expired), one exchange at a time. A failed refresh while the
 * old token is still valid keeps the old token.
 *
 * Failures never quote the token endpoint's answer: an endpoint (or a proxy) that echoes the
 * request would put the API key into the error and the logs. They give the HTTP status only.
 */
export class IamTokenManager {
  readonly #options: IamTokenManagerOptions;
  readonly #now: () => number;
  #token: CachedToken | undefined;
  #pending: Promise<CachedToken> | undefined;

  /** @param options - API key, endpoint and clock. */
  constructor(options: IamTokenManagerOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** A valid access token. */
  async token(signal?: AbortSignal): Promise<string> {
    const now = this.#now();
    const current = this.#token;
    if (current !== undefined && now < current.refreshAt) return current.value;
    this.#pending ??= this.#exchange(signal).finally(() => {
      this.#pending = undefined;
    });
    try {
      this.#token = await this.#pending;
      return this.#token.value;
    } catch (error) {
      if (current !== undefined && this.#now() < current.expiresAt - 10_000) return current.value;
      throw error;
    }
  }

  async #exchange(signal: AbortSignal | undefined): Promise<CachedToken> {
    const endpoint = this.#options.endpoint ?? DEFAULT_IAM_ENDPOINT;
    const doFetch = this.#options.fetch ?? fetch;
    const started = this.#now();
    const timeoutMs = this.#options.requestTimeoutMs ?? DEFAULT_BACKEND_TIMEOUTS.requestTimeoutSeconds * 1000;
    let answer: { status: number; ok: boolean; text: string };
    try {
      answer = await withRequestTimeout(signal, timeoutMs, `IAM token exchange at ${endpoint}`, async (abortSignal) => {
        const response = await doFetch(endpoint, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
          body: new URLSearchParams({ grant_type: IAM_APIKEY_GRANT_TYPE, apikey: this.#options.apiKey }).toString(),
          signal: abortSignal,
        });
        return { status: response.status, ok: response.ok, text: await response.text() };
      });
    } catch (error) {
      if (error instanceof StowageError) throw error;
      // The cause (the fetch failure) says how the connection failed; nothing from an answer.
      throw backendUnavailable(`IAM token endpoint ${endpoint} is unreachable (${networkErrorCode(error) ?? "connection failed"}); check iamEndpoint and the network path`, { cause: error });
    }
    const text = answer.text;
    if (!answer.ok) {
      const auth = answer.status === 400 || answer.status === 401 || answer.status === 403;
      throw new StowageError(
        auth ? Code.Unauthenticated : Code.Unavailable,
        `IAM token endpoint ${endpoint} refused the API key exchange with HTTP ${String(answer.status)}${auth ? "; check apiKey" : "; retry later"} (its answer is not shown: it may repeat the key)`,
        { reason: auth ? Reason.AccessDenied : Reason.BackendUnavailable, metadata: { http_status: String(answer.status) } },
      );
    }
    let body: { access_token?: unknown; expires_in?: unknown; expiration?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // Not the parse error as cause: its message quotes the answer.
      throw new StowageError(Code.Unavailable, `IAM token endpoint ${endpoint} answered with invalid JSON`, { reason: Reason.BackendUnavailable });
    }
    if (typeof body.access_token !== "string" || body.access_token === "") {
      throw new StowageError(Code.Unavailable, `IAM token endpoint ${endpoint} answered without access_token`, { reason: Reason.BackendUnavailable });
    }
    const lifetimeMs =
      typeof body.expires_in === "number"
        ? body.expires_in * 1000
        : typeof body.expiration === "number"
          ? body.expiration * 1000 - started
          : 3_600_000;
    const fraction = this.#options.refreshFraction ?? 0.8;
    return { value: body.access_token, refreshAt: started + lifetimeMs * fraction, expiresAt: started + lifetimeMs };
  }
}
