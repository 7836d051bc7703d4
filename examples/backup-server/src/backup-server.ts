/**
 * A small backup server, written only against `@stowage/sdk/host` as a real one would be: at
 * start it loads the providers from a plugin directory and opens one client per storage location;
 * it streams a directory as a tar.gz into a location (never holding the archive in memory), lists
 * the backups there, and restores one, verifying its bytes against the digest recorded at backup.
 *
 * Layout in a location, Velero-style: `<prefix>/backups/<name>/<name>.tar.gz` and, written last,
 * `<prefix>/backups/<name>/stowage-backup.json` (size, SHA-256, time). A backup without its JSON
 * is incomplete and is not listed.
 *
 * A location with `protection` keeps its backups unchangeable (contract 5.9): both objects are
 * written with a retention until the backup's time plus the period, the server refuses to start
 * when the provider cannot protect objects in the bucket, and `delete` before then is refused by
 * the store with `OBJECT_LOCKED`, leaving the backup whole.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdir } from "node:fs/promises";
import { Readable } from "node:stream";
import { Code, StowageError, type Logger } from "@stowage/sdk";
import { PluginHost, type HostObjectStore } from "@stowage/sdk/host";
import { create as createTar, extract as extractTar } from "tar";
import type { StorageLocation } from "./locations.js";
import { serveMetrics, type MetricsEndpoint } from "./metrics-endpoint.js";

/** What the server records about a backup. */
export interface BackupRecord {
  /** Backup name. */
  readonly name: string;
  /** Size of the archive in bytes. */
  readonly size: number;
  /** SHA-256 of the archive, hex. */
  readonly sha256: string;
  /** When it was taken, ISO 8601. */
  readonly createdAt: string;
  /** Until when it is protected, ISO 8601, in a location with protection. */
  readonly retainUntil?: string | undefined;
}

/** Options of {@link BackupServer.start}. */
export interface BackupServerOptions {
  /** Directory of plugin executables. */
  readonly pluginDir: string;
  /** The storage locations. */
  readonly locations: readonly StorageLocation[];
  /** Logger for the host and the plugins (default: the host's). */
  readonly logger?: Logger | undefined;
  /**
   * Serve the host's metrics for Prometheus on `127.0.0.1:<metricsPort>/metrics` (0: a free
   * port, see {@link BackupServer.metricsUrl}); installs the global OpenTelemetry meter provider
   * before the host starts. Default: no endpoint.
   */
  readonly metricsPort?: number | undefined;
}

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** The backup server. */
export class BackupServer {
  readonly #host: PluginHost;
  readonly #stores: ReadonlyMap<string, { readonly location: StorageLocation; readonly store: HostObjectStore }>;
  readonly #metrics: MetricsEndpoint | undefined;

  private constructor(host: PluginHost, stores: ReadonlyMap<string, { location: StorageLocation; store: HostObjectStore }>, metrics: MetricsEndpoint | undefined) {
    this.#host = host;
    this.#stores = stores;
    this.#metrics = metrics;
  }

  /** The Prometheus endpoint's URL, `http://127.0.0.1:<port>/metrics`, when `metricsPort` was given. */
  get metricsUrl(): string | undefined {
    return this.#metrics?.url;
  }

  /**
   * Starts the plugin host on `pluginDir` and initialises one client per location. Each location
   * gets its own plugin process (an instance), so two locations of one provider never share a
   * configuration. Like Velero, `bucket` and `prefix` are added to the config when the plugin
   * declares those keys.
   */
  static async start(options: BackupServerOptions): Promise<BackupServer> {
    const metrics = options.metricsPort === undefined ? undefined : await serveMetrics(options.metricsPort);
    const host = new PluginHost({ pluginDir: options.pluginDir, logger: options.logger });
    try {
      await host.start();
    } catch (error) {
      await metrics?.close();
      throw error;
    }
    const stores = new Map<string, { location: StorageLocation; store: HostObjectStore }>();
    try {
      for (const location of options.locations) {
        const store = host.objectStore(location.provider, { instance: location.name });
        const declared = new Set(store.descriptor.configKeys.map((k) => k.name));
        const config: Record<string, string> = { ...location.config };
        if (declared.has("bucket")) config.bucket ??= location.bucket;
        if (declared.has("prefix") && location.prefix !== "") config.prefix ??= location.prefix;
        try {
          await store.init(config);
          if (location.protection !== undefined) await BackupServer.#checkProtectable(location, store);
        } catch (error) {
          throw new StowageError(StowageError.from(error).code, `storage location ${location.name} (${location.provider}): ${StowageError.from(error).rawMessage}`, { cause: error });
        }
        stores.set(location.name, { location, store });
      }
    } catch (error) {
      await host.close();
      await metrics?.close();
      throw error;
    }
    return new BackupServer(host, stores, metrics);
  }

  /** A location whose policy asks for protection must be able to give it (contract 5.9.11). */
  static async #checkProtectable(location: StorageLocation, store: HostObjectStore): Promise<void> {
    if (store.objectLock === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the location asks for protected backups, but the provider cannot protect objects (no OBJECT_LOCK capability)");
    }
    const bucket = await store.objectLock.getBucketProtection({ bucket: location.bucket });
    if (!bucket.lockable) {
      throw new StowageError(Code.FailedPrecondition, `the location asks for protected backups, but bucket ${JSON.stringify(location.bucket)} cannot hold them; enable object lock on it`);
    }
  }

  /** The locations, by name. */
  locations(): StorageLocation[] {
    return [...this.#stores.values()].map((s) => s.location);
  }

  #location(name: string): { location: StorageLocation; store: HostObjectStore } {
    const found = this.#stores.get(name);
    if (found === undefined) throw new StowageError(Code.NotFound, `no storage location named ${JSON.stringify(name)}; known: [${[...this.#stores.keys()].join(", ")}]`);
    return found;
  }

  static #key(location: StorageLocation, ...parts: string[]): string {
    return [location.prefix, "backups", ...parts].filter((p) => p !== "").join("/");
  }

  /**
   * Backs up `dir` as `<name>.tar.gz`: the archive streams from tar's gzip output straight into
   * PutObject while its SHA-256 is computed; the record is written once the archive is stored.
   */
  async backup(locationName: string, name: string, dir: string, signal?: AbortSignal): Promise<BackupRecord> {
    if (!NAME.test(name)) throw new StowageError(Code.InvalidArgument, `backup name ${JSON.stringify(name)}: use lower-case letters, digits, "-" and "."`);
    const { location, store } = this.#location(locationName);
    const createdAt = new Date();
    const retention = location.protection === undefined ? undefined : { mode: location.protection.mode, retainUntil: new Date(createdAt.getTime() + location.protection.retainSeconds * 1000) };
    const protection = retention === undefined ? undefined : { retention };
    const hash = createHash("sha256");
    let size = 0;
    const archive = createTar({ gzip: true, cwd: dir, portable: true }, ["."]);
    async function* counted(): AsyncGenerator<Uint8Array> {
      for await (const chunk of archive as AsyncIterable<Buffer>) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    }
    await store.putObject(
      { bucket: location.bucket, key: BackupServer.#key(location, name, `${name}.tar.gz`), body: counted(), contentType: "application/gzip", protection },
      { signal },
    );
    const record: BackupRecord = { name, size, sha256: hash.digest("hex"), createdAt: createdAt.toISOString(), ...(retention === undefined ? {} : { retainUntil: retention.retainUntil.toISOString() }) };
    await store.putObject(
      {
        bucket: location.bucket,
        key: BackupServer.#key(location, name, "stowage-backup.json"),
        body: Readable.from([Buffer.from(JSON.stringify(record))]),
        contentType: "application/json",
        protection,
      },
      { signal },
    );
    return record;
  }

  /**
   * Deletes a backup: its record first (so a backup half deleted is incomplete, not corrupt),
   * then its archive. A protected backup is refused with `OBJECT_LOCKED` by the first delete and
   * stays whole.
   */
  async delete(locationName: string, name: string, signal?: AbortSignal): Promise<void> {
    const { location, store } = this.#location(locationName);
    await store.deleteObject({ bucket: location.bucket, key: BackupServer.#key(location, name, "stowage-backup.json") }, { signal });
    await store.deleteObject({ bucket: location.bucket, key: BackupServer.#key(location, name, `${name}.tar.gz`) }, { signal });
  }

  /** The complete backups in a location, by name. */
  async list(locationName: string, signal?: AbortSignal): Promise<BackupRecord[]> {
    const { location, store } = this.#location(locationName);
    const prefix = `${BackupServer.#key(location)}/`;
    const names: string[] = [];
    for await (const page of store.listObjects({ bucket: location.bucket, prefix, delimiter: "/" }, { signal })) {
      names.push(...page.commonPrefixes.map((p) => p.slice(prefix.length, -1)));
    }
    const records: BackupRecord[] = [];
    for (const name of names) {
      const record = await this.#record(location, store, name, signal).catch((error: unknown) => {
        if (error instanceof StowageError && error.code === Code.NotFound) return undefined;
        throw error;
      });
      if (record !== undefined) records.push(record);
    }
    return records;
  }

  async #record(location: StorageLocation, store: HostObjectStore, name: string, signal?: AbortSignal): Promise<BackupRecord> {
    const out = await store.getObject({ bucket: location.bucket, key: BackupServer.#key(location, name, "stowage-backup.json") }, { signal });
    const chunks: Buffer[] = [];
    for await (const chunk of out.body) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as BackupRecord;
  }

  /**
   * Restores a backup into `targetDir`: the archive streams from GetObject through gunzip and
   * untar to disk while its SHA-256 is computed, and the restore fails with DATA_LOSS when the
   * bytes differ from those recorded at backup time.
   */
  async restore(locationName: string, name: string, targetDir: string, signal?: AbortSignal): Promise<BackupRecord> {
    const { location, store } = this.#location(locationName);
    const record = await this.#record(location, store, name, signal);
    await mkdir(targetDir, { recursive: true });
    const out = await store.getObject({ bucket: location.bucket, key: BackupServer.#key(location, name, `${name}.tar.gz`) }, { signal });
    const hash = createHash("sha256");
    let size = 0;
    const unpack = extractTar({ cwd: targetDir, strict: true });
    const done = new Promise<void>((resolve, reject) => {
      unpack.on("error", reject);
      unpack.on("close", resolve);
    });
    done.catch(() => undefined);
    try {
      for await (const chunk of out.body) {
        const bytes = chunk as Buffer;
        hash.update(bytes);
        size += bytes.length;
        if (!unpack.write(bytes)) await Promise.race([once(unpack, "drain"), done]);
      }
      unpack.end();
      await done;
    } catch (error) {
      out.body.destroy();
      unpack.abort(error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    const sha256 = hash.digest("hex");
    if (size !== record.size || sha256 !== record.sha256) {
      throw new StowageError(Code.DataLoss, `backup ${name} in ${locationName} is corrupt: read ${String(size)} bytes with SHA-256 ${sha256}, recorded ${String(record.size)} bytes with ${record.sha256}`);
    }
    return record;
  }

  /** Stops the plugins, then the metrics endpoint. */
  async close(): Promise<void> {
    try {
      await this.#host.close();
    } finally {
      await this.#metrics?.close();
    }
  }
}
