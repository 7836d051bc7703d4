/**
 * Velero's default Blob authentication: no `storageAccountKeyEnvVar`, no `useAAD`, so the plugin
 * exchanges the credentials file's service principal for the account key through Resource Manager
 * ListKeys and learns the blob endpoint through GetProperties. Resource Manager is the HTTPS test
 * double (with its token endpoint); the account is Azurite's, so the data calls really run.
 */
import type { Logger } from "@stowage/sdk";
import { Code, Reason } from "@stowage/sdk";
import { AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME } from "@stowage/test-servers";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startArmComputeDouble, writeCredentialsFile, type ArmComputeDouble } from "../../test/support/arm-compute-double.js";
import { blobExists, chunks, startAzuriteFixture, type AzuriteFixture } from "../../test/support/blob-fixture.js";
import { LIST_KEYS_ACTION, resolveBlobEndpoint } from "./account-arm.js";
import { BlobObjectStore } from "./blob-object-store.js";
import { configureBlobStore } from "./config.js";
import { rejection } from "@stowage/sdk/testing";
import { buffer } from "node:stream/consumers";

vi.setConfig({ testTimeout: 30_000 });

const CONTAINER = "listkeys";
const RG = "stowage-storage";
const READ_FIRST_RG = "stowage-read-first";
const READ_ONLY_RG = "stowage-read-only";

let azurite: AzuriteFixture;
let double: ArmComputeDouble;
let dir: string;
let credentials: string;

function randomKey(): string {
  return randomBytes(64).toString("base64");
}

/** The Velero-style config: only the account, its resource group and subscription, plus the double's endpoints. */
function config(extra: Record<string, string> = {}): Record<string, string> {
  return {
    storageAccount: AZURITE_ACCOUNT_NAME,
    resourceGroup: RG,
    subscriptionId: double.subscriptionId,
    credentialsFile: credentials,
    resourceManagerEndpoint: double.endpoint,
    activeDirectoryAuthorityURI: double.authorityHost,
    caCert: double.caCertFile,
    maxRetries: "0",
    ...extra,
  };
}

/** The config without `resourceGroup` and `subscriptionId`. */
function withoutLocation(c: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(c).filter(([k]) => k !== "resourceGroup" && k !== "subscriptionId"));
}

/** A logger that records the level and message of every line. */
function recordingLogger(): { logger: Logger; lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at =
    (level: string) =>
    (_fields: unknown, message?: string): void => {
      lines.push({ level, message: message ?? "" });
    };
  const logger = { trace: at("trace"), debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => logger } as unknown as Logger;
  return { logger, lines };
}

function storageRequests(): { method: string; path: string; query: URLSearchParams }[] {
  return double.requests.filter((r) => r.path.toLowerCase().includes("/microsoft.storage/"));
}

beforeAll(async () => {
  azurite = await startAzuriteFixture([CONTAINER]);
  double = await startArmComputeDouble();
  dir = await mkdtemp(join(tmpdir(), "stowage-listkeys-test-"));
  // The file's resource group is the disks one: the config's resourceGroup must win.
  credentials = await writeCredentialsFile(double, dir);
  double.addStorageAccount({
    name: AZURITE_ACCOUNT_NAME,
    resourceGroup: RG,
    keys: [
      { keyName: "key1", value: AZURITE_ACCOUNT_KEY, permissions: "Full" },
      { keyName: "key2", value: randomKey(), permissions: "Full" },
    ],
    blobEndpoint: `${azurite.server.blobEndpoint}/`,
  });
  double.addStorageAccount({
    name: AZURITE_ACCOUNT_NAME,
    resourceGroup: READ_FIRST_RG,
    keys: [
      { keyName: "key1", value: randomKey(), permissions: "Read" },
      { keyName: "key2", value: AZURITE_ACCOUNT_KEY, permissions: "FULL" },
    ],
    blobEndpoint: `${azurite.server.blobEndpoint}/`,
  });
  double.addStorageAccount({
    name: AZURITE_ACCOUNT_NAME,
    resourceGroup: READ_ONLY_RG,
    keys: [{ keyName: "key1", value: randomKey(), permissions: "Read" }],
  });
}, 60_000);

afterEach(() => {
  double.denyStorageActions([]);
});

afterAll(async () => {
  await double.stop();
  await azurite.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("ListKeys exchange (no storageAccountKeyEnvVar, no useAAD)", () => {
  it("gets the key through ListKeys, finds Azurite through GetProperties, and round-trips put/get/list/delete", async () => {
    const before = storageRequests().length;
    const store = new BlobObjectStore();
    await store.init(config());
    const calls = storageRequests().slice(before);
    expect(calls.map((c) => `${c.method} ${c.path.split("/").slice(-1)[0] ?? ""}`)).toEqual(["POST listKeys", `GET ${AZURITE_ACCOUNT_NAME}`]);
    expect(calls[0]?.path).toContain(`/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/${AZURITE_ACCOUNT_NAME}/listKeys`);
    expect(calls[0]?.query.get("$expand")).toBe("kerb");
    expect(calls[0]?.query.get("api-version")).toMatch(/^\d{4}-\d{2}-\d{2}/);
    // The bearer token was issued for the Resource Manager audience.
    expect(double.tokenScopes.at(-1)).toContain("https://management.core.windows.net/.default");

    await store.putObject({ bucket: CONTAINER, key: "velero/backups/b1/velero-backup.json", body: chunks(Buffer.from('{"kind":"Backup"}')) });
    expect(await blobExists(azurite.oob, CONTAINER, "velero/backups/b1/velero-backup.json")).toBe(true);
    const got = await store.getObject({ bucket: CONTAINER, key: "velero/backups/b1/velero-backup.json" });
    expect((await buffer(got.body)).toString()).toBe('{"kind":"Backup"}');
    const keys: string[] = [];
    for await (const page of store.listObjects({ bucket: CONTAINER, prefix: "velero/" })) keys.push(...page.objects.map((o) => o.key));
    expect(keys).toEqual(["velero/backups/b1/velero-backup.json"]);
    // The exchanged key signs service SAS URLs, as a key from the file would.
    const signed = await store.createSignedUrl({ bucket: CONTAINER, key: "velero/backups/b1/velero-backup.json", ttlSeconds: 60 });
    expect(signed.url.startsWith(azurite.server.blobEndpoint)).toBe(true);
    await store.deleteObject({ bucket: CONTAINER, key: "velero/backups/b1/velero-backup.json" });
    expect(await blobExists(azurite.oob, CONTAINER, "velero/backups/b1/velero-backup.json")).toBe(false);
  });

  it("reports the auth kind and the discovered endpoint", async () => {
    const settings = await configureBlobStore(config());
    expect(settings.auth).toBe("listkeys");
    expect(settings.endpoint).toBe(azurite.server.blobEndpoint);
    expect(settings.endpointSource).toBe("resource-manager");
    expect(settings.sharedKey?.accountName).toBe(AZURITE_ACCOUNT_NAME);
  });

  it("skips a Read key and uses the first key with Full permissions (any letter case)", async () => {
    const store = new BlobObjectStore();
    await store.init(config({ resourceGroup: READ_FIRST_RG }));
    // A Read key would make Azurite refuse the write (the wrong key's signature does not match).
    await store.putObject({ bucket: CONTAINER, key: "full-key", body: chunks(Buffer.from("full")) });
    expect(await blobExists(azurite.oob, CONTAINER, "full-key")).toBe(true);
  });

  it("takes the subscription and resource group from the credentials file when the config has none", async () => {
    const file = await writeCredentialsFile(double, dir, { AZURE_RESOURCE_GROUP: RG }, "storage-rg");
    const rest = withoutLocation(config({ credentialsFile: file }));
    const settings = await configureBlobStore(rest);
    expect(settings.auth).toBe("listkeys");
    expect(settings.endpoint).toBe(azurite.server.blobEndpoint);
  });

  it("a 403 on ListKeys fails init with PERMISSION_DENIED naming the permission and both alternatives", async () => {
    double.denyStorageActions(["listKeys"]);
    const error = await rejection(new BlobObjectStore().init(config()));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.message).toContain(LIST_KEYS_ACTION);
    expect(error.message).toContain("storageAccountKeyEnvVar");
    expect(error.message).toContain("useAAD=true");
    expect(error.message).toContain(AZURITE_ACCOUNT_NAME);
    expect(error.metadata.azure_code).toBe("AuthorizationFailed");
  });

  it("no key with Full permissions fails init with a clear error", async () => {
    const error = await rejection(new BlobObjectStore().init(config({ resourceGroup: READ_ONLY_RG })));
    expect(error.code).toBe(Code.FailedPrecondition);
    expect(error.message).toContain("no key with Full permissions");
    expect(error.message).toContain("key1 (Read)");
  });

  it("an unknown account or resource group fails with INVALID_CONFIG naming the key to fix", async () => {
    const account = await rejection(new BlobObjectStore().init(config({ storageAccount: "nosuchaccount" })));
    expect(account.reason).toBe(Reason.InvalidConfig);
    expect(account.metadata.key).toBe("storageAccount");
    const group = await rejection(new BlobObjectStore().init(config({ resourceGroup: "no-such-group" })));
    expect(group.reason).toBe(Reason.InvalidConfig);
    expect(group.metadata.key).toBe("resourceGroup");
    expect(group.message).toContain("no-such-group");
  });

  it("missing subscription or resource group fails with INVALID_CONFIG naming the key and the credentials-file entry", async () => {
    const file = await writeCredentialsFile(double, dir, { AZURE_SUBSCRIPTION_ID: "", AZURE_RESOURCE_GROUP: "" }, "no-location");
    const rest = withoutLocation(config({ credentialsFile: file }));
    const before = storageRequests().length;
    const noSubscription = await rejection(new BlobObjectStore().init({ ...rest, resourceGroup: RG }));
    expect(noSubscription.reason).toBe(Reason.InvalidConfig);
    expect(noSubscription.metadata.key).toBe("subscriptionId");
    expect(noSubscription.message).toContain("AZURE_SUBSCRIPTION_ID");
    const noGroup = await rejection(new BlobObjectStore().init({ ...rest, subscriptionId: double.subscriptionId }));
    expect(noGroup.metadata.key).toBe("resourceGroup");
    expect(noGroup.message).toContain("AZURE_RESOURCE_GROUP");
    expect(storageRequests().length).toBe(before);
  });

  it("a wrong client secret fails init with UNAUTHENTICATED before any key is listed", async () => {
    const file = await writeCredentialsFile(double, dir, { AZURE_CLIENT_SECRET: "wrong" }, "wrong-secret");
    const before = storageRequests().length;
    const error = await rejection(new BlobObjectStore().init(config({ credentialsFile: file })));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(storageRequests().length).toBe(before);
  });
});

describe("blob endpoint resolution", () => {
  it("falls back to the default endpoint, logging at debug level only, when GetProperties is refused", async () => {
    double.denyStorageActions(["read"]);
    const { logger, lines } = recordingLogger();
    // configureBlobStore builds the client without contacting the data plane.
    const settings = await configureBlobStore(config(), { logger });
    expect(settings.auth).toBe("listkeys");
    expect(settings.endpoint).toBe(`https://${AZURITE_ACCOUNT_NAME}.blob.core.windows.net`);
    expect(settings.endpointSource).toBe("default");
    expect(lines.filter((l) => l.level !== "debug")).toEqual([]);
    expect(lines.some((l) => l.level === "debug" && l.message.includes("default endpoint"))).toBe(true);
  });

  it("storageAccountURI wins and a key from the credentials file makes no Resource Manager call", async () => {
    const before = storageRequests().length;
    const settings = await configureBlobStore({ ...azurite.config, resourceGroup: RG, subscriptionId: double.subscriptionId, resourceManagerEndpoint: double.endpoint });
    expect(settings.auth).toBe("shared-key");
    expect(settings.endpointSource).toBe("config");
    const withoutUri = Object.fromEntries(Object.entries(azurite.config).filter(([k]) => k !== "storageAccountURI"));
    const defaulted = await configureBlobStore({ ...withoutUri, resourceGroup: RG, subscriptionId: double.subscriptionId, resourceManagerEndpoint: double.endpoint });
    expect(defaulted.endpoint).toBe(`https://${AZURITE_ACCOUNT_NAME}.blob.core.windows.net`);
    expect(storageRequests().length).toBe(before);
  });

  it("useAAD discovers the endpoint through Resource Manager when the subscription and resource group are known", async () => {
    const settings = await configureBlobStore(config({ useAAD: "true" }));
    expect(settings.auth).toBe("entra-id");
    expect(settings.endpoint).toBe(azurite.server.blobEndpoint);
    expect(settings.endpointSource).toBe("resource-manager");
  });

  it("resolveBlobEndpoint: configured value first, then discovery, then the cloud's default", async () => {
    const discover = vi.fn(() => Promise.resolve("https://acct.z7.blob.storage.azure.net/"));
    expect(await resolveBlobEndpoint({ accountName: "acct", storageEndpointSuffix: "core.windows.net", configured: "https://custom.example", discover })).toEqual({
      endpoint: "https://custom.example",
      source: "config",
    });
    expect(discover).not.toHaveBeenCalled();
    expect(await resolveBlobEndpoint({ accountName: "acct", storageEndpointSuffix: "core.windows.net", discover })).toEqual({
      endpoint: "https://acct.z7.blob.storage.azure.net",
      source: "resource-manager",
    });
    expect(await resolveBlobEndpoint({ accountName: "acct", storageEndpointSuffix: "core.chinacloudapi.cn" })).toEqual({
      endpoint: "https://acct.blob.core.chinacloudapi.cn",
      source: "default",
    });
    const { logger, lines } = recordingLogger();
    const failing = await resolveBlobEndpoint({
      accountName: "acct",
      storageEndpointSuffix: "core.usgovcloudapi.net",
      discover: () => Promise.reject(new Error("403 AuthorizationFailed")),
      logger,
    });
    expect(failing).toEqual({ endpoint: "https://acct.blob.core.usgovcloudapi.net", source: "default" });
    expect(lines.map((l) => l.level)).toEqual(["debug"]);
    const unusable = await resolveBlobEndpoint({
      accountName: "acct",
      storageEndpointSuffix: "core.windows.net",
      discover: () => Promise.resolve("ftp://nope"),
      normalise: () => {
        throw new Error("not http(s)");
      },
    });
    expect(unusable.source).toBe("default");
  });
});
