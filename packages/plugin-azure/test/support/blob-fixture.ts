/**
 * Test helpers of the Blob ObjectStore: an Azurite server per test file, an independent
 * `@azure/storage-blob` client to check the store out of band, and a credentials file holding the
 * account key.
 */
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { startAzurite, type AzuriteOptions, type AzuriteServer } from "@stowage/test-servers";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Name of the credentials-file entry holding the account key in the tests. */
export const KEY_ENTRY = "AZURE_STORAGE_ACCOUNT_ACCESS_KEY";

/** A started Azurite with an out-of-band client and a plugin config. */
export interface AzuriteFixture {
  readonly server: AzuriteServer;
  /** Out-of-band client (shared key). */
  readonly oob: BlobServiceClient;
  /** Plugin config pointing at this server with shared-key auth through a credentials file. */
  readonly config: Record<string, string>;
  /** Folder of the credentials files; removed by `stop`. */
  readonly dir: string;
  /** Writes a credentials file with these entries and returns its path. */
  credentialsFile(entries: Record<string, string>, name?: string): Promise<string>;
  /** Stops the server and removes the folder. */
  stop(): Promise<void>;
}

/** Starts Azurite, creates `containers`, and writes a credentials file with the account key. */
export async function startAzuriteFixture(containers: readonly string[], options: AzuriteOptions = {}): Promise<AzuriteFixture> {
  const server = await startAzurite(options);
  const dir = await mkdtemp(join(tmpdir(), "stowage-azure-blob-"));
  const oob = new BlobServiceClient(
    server.blobEndpoint,
    new StorageSharedKeyCredential(server.accountName, server.accountKey),
    server.caCertPem === undefined ? {} : ({ tlsOptions: { ca: server.caCertPem } } as object),
  );
  for (const c of containers) await oob.getContainerClient(c).create();
  let count = 0;
  const credentialsFile = async (entries: Record<string, string>, name?: string): Promise<string> => {
    const file = join(dir, name ?? `credentials-${String(count++)}`);
    await writeFile(file, Object.entries(entries).map(([k, v]) => `${k}=${v}\n`).join(""));
    return file;
  };
  const file = await credentialsFile({ [KEY_ENTRY]: server.accountKey }, "credentials");
  return {
    server,
    oob,
    dir,
    credentialsFile,
    config: {
      storageAccount: server.accountName,
      storageAccountURI: server.blobEndpoint,
      storageAccountKeyEnvVar: KEY_ENTRY,
      credentialsFile: file,
      ...(server.caCertPath === undefined ? {} : { caCert: server.caCertPath }),
    },
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Random bytes. */
export function bytes(size: number): Buffer {
  return randomBytes(size);
}

/** Yields `data` in chunks of `chunk` bytes. */
export async function* chunks(data: Buffer, chunk = 1024 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
}

/** Whether a blob exists, asked out of band. */
export async function blobExists(oob: BlobServiceClient, container: string, name: string): Promise<boolean> {
  return oob.getContainerClient(container).getBlobClient(name).exists();
}
