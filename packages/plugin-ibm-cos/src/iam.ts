/**
 * IBM Cloud IAM: exchanges an API key for a bearer token and refreshes it before it expires.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";

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
    let response: Response;
    try {
      response = await doFetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ grant_type: IAM_APIKEY_GRANT_TYPE, apikey: this.#options.apiKey }).toString(),
        ...(signal === undefined ? {} : { signal }),
      });
    } catch (error) {
      throw new StowageError(Code.Unavailable, `IAM token endpoint ${endpoint} is unreachable: ${String(error)}`, {
        reason: Reason.BackendUnavailable,
        cause: error,
      });
    }
    const text = await response.text();
    if (!response.ok) {
      const auth = response.status === 400 || response.status === 401 || response.status === 403;
      throw new StowageError(
        auth ? Code.Unauthenticated : Code.Unavailable,
        `IAM token endpoint ${endpoint} refused the API key exchange: HTTP ${response.status} ${text.slice(0, 200)}`,
        { reason: auth ? Reason.AccessDenied : Reason.BackendUnavailable },
      );
    }
    let body: { access_token?: unknown; expires_in?: unknown; expiration?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch (error) {
      throw new StowageError(Code.Unavailable, `IAM token endpoint ${endpoint} answered with invalid JSON`, { reason: Reason.BackendUnavailable, cause: error });
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
