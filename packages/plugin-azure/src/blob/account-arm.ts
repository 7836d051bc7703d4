/**
 * The Blob ObjectStore's Resource Manager calls on its storage account, through
 * `@azure/arm-storage`: exchanging the identity's token for the account key (ListKeys, Velero's
 * default when neither `storageAccountKeyEnvVar` nor `useAAD` is set), and discovering the
 * account's blob endpoint (GetProperties), with the silent fallback to the cloud's default.
 *
 * @packageDocumentation
 */
import type { TokenCredential } from "@azure/core-auth";
import { StorageManagementClient } from "@azure/arm-storage";
import { Code, Reason, StowageError, type Logger } from "@stowage/sdk";
import { armClientOptions, type ArmClientSettings } from "../shared/arm.js";
import { azureErrorCode, azureHttpStatus, toStowageError } from "../shared/errors.js";

/** Where a storage account is in Resource Manager. */
export interface StorageAccountLocation {
  /** Subscription of the account. */
  readonly subscriptionId: string;
  /** Resource group of the account. */
  readonly resourceGroup: string;
  /** Account name. */
  readonly accountName: string;
}

/** The Resource Manager action ListKeys needs. */
export const LIST_KEYS_ACTION = "Microsoft.Storage/storageAccounts/listkeys/action";

/** A `StorageManagementClient` for the account's subscription, with the plugin's Resource Manager settings. */
export function storageManagementClient(credential: TokenCredential, subscriptionId: string, arm: ArmClientSettings): StorageManagementClient {
  return new StorageManagementClient(credential, subscriptionId, armClientOptions(arm));
}

function describe(location: StorageAccountLocation): string {
  return `storage account ${JSON.stringify(location.accountName)} (resource group ${JSON.stringify(location.resourceGroup)}, subscription ${JSON.stringify(location.subscriptionId)})`;
}

function notFoundError(location: StorageAccountLocation, error: unknown): StowageError | undefined {
  const code = azureErrorCode(error);
  const key =
    code === "SubscriptionNotFound" ? "subscriptionId" : code === "ResourceGroupNotFound" ? "resourceGroup" : code === "ResourceNotFound" || code === "StorageAccountNotFound" || azureHttpStatus(error) === 404 ? "storageAccount" : undefined;
  if (key === undefined) return undefined;
  const what = key === "subscriptionId" ? "the subscription" : key === "resourceGroup" ? "the resource group" : "the storage account";
  return new StowageError(
    Code.InvalidArgument,
    `Resource Manager cannot find ${what} of ${describe(location)} (${code === "" ? "404" : code}); fix ${key} (subscriptionId and resourceGroup default to AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP of the credentials file)`,
    { reason: Reason.InvalidConfig, metadata: { key, azure_code: code, storage_account: location.accountName, resource_group: location.resourceGroup, subscription_id: location.subscriptionId }, cause: error },
  );
}

/**
 * Lists the account's keys through Resource Manager (`POST .../listKeys?$expand=kerb`) and returns
 * the value of the first key whose permissions are `Full` (compared case-insensitively), as
 * Velero does.
 *
 * Failures: 403 → `PERMISSION_DENIED` naming {@link LIST_KEYS_ACTION} and the two ways around
 * the exchange; an unknown subscription, resource group or account → `INVALID_CONFIG` naming the
 * key to fix; no `Full` key → `FAILED_PRECONDITION`; other errors as {@link toStowageError} maps
 * them.
 */
export async function exchangeAccountKey(client: StorageManagementClient, location: StorageAccountLocation, signal?: AbortSignal): Promise<string> {
  let keys: readonly { keyName?: string | undefined; value?: string | undefined; permissions?: string | undefined }[];
  try {
    const result = await client.storageAccounts.listKeys(location.resourceGroup, location.accountName, { expand: "kerb", ...(signal === undefined ? {} : { abortSignal: signal }) });
    keys = result.keys ?? [];
  } catch (error) {
    const mapped = toStowageError(error, { operation: "list storage account keys", signal, resource: { storage_account: location.accountName, resource_group: location.resourceGroup, subscription_id: location.subscriptionId } });
    if (mapped.code === Code.PermissionDenied) {
      throw new StowageError(
        Code.PermissionDenied,
        `the identity of the credentials file may not list the keys of ${describe(location)}: Resource Manager answered ${azureErrorCode(error) || "403"}. ` +
          `Without storageAccountKeyEnvVar or useAAD the plugin exchanges the identity for the account key, which needs the ${LIST_KEYS_ACTION} permission on the account ` +
          `(e.g. the "Storage Account Key Operator Service Role" or Contributor). Alternatively put the account key in the credentials file and set storageAccountKeyEnvVar to its entry name, ` +
          `or set useAAD=true and grant the identity a data-plane role such as "Storage Blob Data Contributor" on the account`,
        { reason: Reason.AccessDenied, metadata: { ...mapped.metadata, action: LIST_KEYS_ACTION }, cause: error },
      );
    }
    if (mapped.code === Code.NotFound) throw notFoundError(location, error) ?? mapped;
    throw mapped;
  }
  const full = keys.find((k) => (k.permissions ?? "").toLowerCase() === "full" && (k.value ?? "") !== "");
  if (full === undefined) {
    const seen = keys.map((k) => `${k.keyName ?? "?"} (${k.permissions ?? "no permissions"})`).join(", ");
    throw new StowageError(
      Code.FailedPrecondition,
      `Resource Manager returned no key with Full permissions for ${describe(location)}${seen === "" ? " (no keys at all)" : ` (got ${seen})`}; ` +
        "regenerate the account keys, or set storageAccountKeyEnvVar to a credentials-file entry holding a full key, or use useAAD=true",
      { reason: Reason.AccessDenied, metadata: { storage_account: location.accountName, resource_group: location.resourceGroup, subscription_id: location.subscriptionId } },
    );
  }
  return full.value ?? "";
}

/**
 * Asks Resource Manager for the account's properties and returns its primary blob endpoint
 * (`primaryEndpoints.blob`), which differs from the default for accounts in Azure DNS zones.
 * Throws on any failure, including an answer without a blob endpoint.
 */
export async function discoverBlobEndpoint(client: StorageManagementClient, location: StorageAccountLocation, signal?: AbortSignal): Promise<string> {
  let blob: string | undefined;
  try {
    const account = await client.storageAccounts.getProperties(location.resourceGroup, location.accountName, signal === undefined ? {} : { abortSignal: signal });
    blob = account.primaryEndpoints?.blob;
  } catch (error) {
    throw toStowageError(error, { operation: "get storage account properties", signal, resource: { storage_account: location.accountName, resource_group: location.resourceGroup, subscription_id: location.subscriptionId } });
  }
  if (blob === undefined || blob.trim() === "") {
    throw new StowageError(Code.Internal, `Resource Manager reported no primary blob endpoint for ${describe(location)}`, { reason: Reason.Internal });
  }
  return blob.trim();
}

/** How {@link resolveBlobEndpoint} found the endpoint. */
export type BlobEndpointSource = "config" | "resource-manager" | "default";

/** The result of {@link resolveBlobEndpoint}. */
export interface ResolvedBlobEndpoint {
  /** The blob endpoint, without a trailing slash. */
  readonly endpoint: string;
  /** Where it came from. */
  readonly source: BlobEndpointSource;
}

/** Options of {@link resolveBlobEndpoint}. */
export interface ResolveBlobEndpointOptions {
  /** The account name. */
  readonly accountName: string;
  /** The cloud's storage suffix, e.g. `core.windows.net`. */
  readonly storageEndpointSuffix: string;
  /** `storageAccountURI`, already validated; wins when given. */
  readonly configured?: string | undefined;
  /**
   * Asks Resource Manager for the endpoint ({@link discoverBlobEndpoint}); absent when discovery
   * does not apply (key or SAS from the credentials file, no subscription or resource group).
   */
  readonly discover?: (() => Promise<string>) | undefined;
  /** Validates and normalises a discovered endpoint; throws when it is unusable. */
  readonly normalise?: ((url: string) => string) | undefined;
  /** Receives a debug line when discovery fails. */
  readonly logger?: Logger | undefined;
}

/**
 * The blob endpoint of the account: `storageAccountURI` if configured; else the endpoint Resource
 * Manager reports, when `discover` is given and works; else `https://<account>.blob.<suffix>`.
 * A failed discovery is not an error: it is logged at debug level and the default is used.
 */
export async function resolveBlobEndpoint(options: ResolveBlobEndpointOptions): Promise<ResolvedBlobEndpoint> {
  if (options.configured !== undefined) return { endpoint: options.configured, source: "config" };
  const fallback = `https://${options.accountName}.blob.${options.storageEndpointSuffix.replace(/^\.+/, "")}`;
  if (options.discover !== undefined) {
    try {
      const found = await options.discover();
      const endpoint = options.normalise === undefined ? found.replace(/\/+$/, "") : options.normalise(found);
      return { endpoint, source: "resource-manager" };
    } catch (error) {
      options.logger?.debug(
        { storageAccount: options.accountName, endpoint: fallback, error: error instanceof Error ? error.message : String(error) },
        "could not read the storage account's blob endpoint from Resource Manager; using the default endpoint",
      );
    }
  }
  return { endpoint: fallback, source: "default" };
}
