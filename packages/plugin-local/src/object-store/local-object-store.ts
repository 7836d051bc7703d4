/**
 * The local ObjectStore: buckets are directories under a root directory, objects are files.
 *
 * See `key-layout.ts` for how keys map to paths, `object-file.ts` for the file format,
 * `object-writer.ts` for how puts stay atomic, `listing.ts` for ordered listings,
 * `signed-url-server.ts` for signed URLs, and `protection-record.ts` and `key-locks.ts` for object
 * protection (contract 5.9).
 *
 * ## Object protection
 *
 * With `objectLock` on, every bucket is lockable and the plugin itself enforces retentions and
 * legal holds (clause 5.9.13): there is no store underneath that could.
 *
 * - The protection lives in the object file's preamble (format 2, `protection-record.ts`), so a
 *   put with protection is one atomic rename like any put: the object is never visible
 *   unprotected. `SetRetention` and `SetLegalHold` rewrite a 24-byte slot in place and flush it,
 *   without touching the body; a format-1 file (written before, or with `objectLock` off) reads as
 *   unprotected and is rewritten once into format 2 by its first protection change.
 * - A delete, the rename that completes a put, and a protection change of a key run one at a time
 *   in this process (`key-locks.ts`), each after reading the protection in force, so a delete
 *   racing a `SetLegalHold` never loses the hold. With `objectLock` on, a put is also checked before
 *   its body is read.
 * - Refusals are `OBJECT_LOCKED` (`checkMutable`, `checkRetentionChange` from the SDK); a
 *   governance retention yields to `bypassGovernance`, a legal hold and a compliance retention to
 *   nobody. Retention is measured by the plugin's clock (the host's).
 * - Protections already stored are enforced even when `objectLock` is turned off; new ones and
 *   changes are then refused (`BUCKET_NOT_LOCKABLE`).
 *
 * What it cannot protect against: anyone who can write the directory (or is root) can remove or
 * change the files; a change of the host's clock shortens or lengthens retentions; files deleted
 * outside the plugin are simply gone; other processes sharing the root are not serialised with
 * this one.
 *
 * @packageDocumentation
 */
import {
  Code,
  Reason,
  StowageError,
  bucketNotFound,
  bucketNotLockable,
  checkMutable,
  checkRetentionChange,
  objectNotFound,
  silentLogger,
  type BucketProtection,
  type CallOptions,
  type DeleteObjectInput,
  type ObjectLock,
  type ObjectProtection,
  type ProtectionInput,
  type Retention,
  type SetLegalHoldInput,
  type SetRetentionInput,
  type CreateSignedUrlInput,
  type GetObjectInput,
  type GetObjectOutput,
  type ListObjectsInput,
  type ListObjectsPage,
  type Logger,
  type ObjectInfo,
  type ObjectRef,
  type ObjectStore,
  type PluginConfig,
  type PutObjectInput,
  type PutObjectResult,
  type SignedUrl,
} from "@stowage/sdk";
import type { FileHandle } from "node:fs/promises";
import { abortError, redactConfig, throwIfAborted } from "@stowage/sdk/plugin";
import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { openRoot } from "../shared/config.js";
import type { ChildOptions, ConfinedRoot, Directory, OpenFileOptions, OpenedFile } from "../shared/confined-root.js";
import { DirectoryCache } from "../shared/directory-cache.js";
import { Sweeper } from "../shared/sweeper.js";
import { toStowageError } from "../shared/fs.js";
import { checkContentType, checkMetadata } from "./attributes.js";
import { OBJECT_STORE_CONFIG_KEYS, parseObjectStoreConfig, type ObjectStoreSettings } from "./config.js";
import { checkBucket, checkKey, objectPath } from "./key-layout.js";
import { decodePageToken, encodePageToken, listingScope, walkBucket, type ListEntry } from "./listing.js";
import { KeyLocks } from "./key-locks.js";
import { headerProtection, readHeader, readProtection, writeProtection, type ObjectHeader } from "./object-file.js";
import { sweepUploads, writeObject } from "./object-writer.js";
import { SignedUrlServer } from "./signed-url-server.js";
import { UrlSigner, buildSignedUrl, loadSigningKey, type SignedUrlClaims } from "./signing.js";

/** Default and largest number of entries in a listing page. */
export const MAX_LIST_PAGE_SIZE = 1000;
/** Object headers read in parallel while filling a listing page. */
const LIST_READ_CONCURRENCY = 16;
/** Read bodies in chunks of this size. */
const READ_CHUNK_BYTES = 256 * 1024;
/** Why a bucket is not lockable without `objectLock`. */
const NOT_LOCKABLE_WHY = 'stowage.io/local stores protected objects only with "objectLock: true" in its configuration';
/** What {@link BucketProtection.enforcedBy} says. */
export const LOCAL_ENFORCED_BY =
  "the plugin only: stowage.io/local refuses deletes, overwrites and weakened retentions itself; anyone with write access to the directory (or root) can still change or remove the files, and retention follows the host's clock";
/** The protection of an object stored without any. */
const UNPROTECTED: ObjectProtection = { legalHold: false };

/** Options of {@link LocalObjectStore}. */
export interface LocalObjectStoreOptions {
  /** Where to log; nothing is logged by default. */
  readonly logger?: Logger | undefined;
  /** The clock for signed URLs and retentions, in milliseconds since the epoch; `Date.now` by default. */
  readonly now?: (() => number) | undefined;
}

/** A configuration in force: the settings and the root they name, held open. */
interface Configured {
  readonly settings: ObjectStoreSettings;
  readonly root: ConfinedRoot;
}

/**
 * An ObjectStore on a local (or mounted) file system. Buckets are the directories directly under
 * the configured `root`; objects are files inside them, laid out as `key-layout.ts` describes.
 *
 * - Every file-system call is confined to the root (`confined-root.ts`): a symbolic link or a mount
 *   point inside it fails with `PERMISSION_DENIED`/`UNSAFE_PATH` instead of being followed.
 * - Puts are streamed with backpressure into a temporary file, checked against the announced size
 *   and SHA-256, flushed (unless `fsync=false`) and renamed into place: a reader sees the old
 *   object or the new one, never a part, and a failed put leaves nothing behind. The parts of a
 *   writer that died mid-put are reclaimed at `init` and periodically (`temp-files.ts`).
 * - The entity tag is the lower-case hex SHA-256 of the body, computed while it is received.
 * - Content type and metadata are checked (`attributes.ts`) and live in the object file itself,
 *   so they change atomically with it.
 * - Signed URLs are served by a small HTTP server started on first use (at `init` when
 *   `signedUrlAddress` names a fixed port); call {@link close} to stop it and the periodic sweep
 *   (neither keeps the process alive by itself).
 *
 * @example
 * ```ts
 * const store = new LocalObjectStore();
 * await store.init({ root: "/var/lib/stowage", createBuckets: "true" });
 * await store.putObject({ bucket: "backups", key: "b1/b1.tar.gz", body: createReadStream("b1.tar.gz") });
 * ```
 */
export class LocalObjectStore implements ObjectStore {
  readonly #logger: Logger;
  readonly #now: () => number;
  /** The key of URLs signed without a configured key: one per instance, so a repeated init keeps them valid. */
  readonly #randomKey = randomBytes(32);
  #signer = new UrlSigner(this.#randomKey);
  #configured: Configured | undefined;
  #server: Promise<SignedUrlServer> | undefined;
  readonly #sweeper = new Sweeper(() => this.#sweep());
  readonly #locks = new KeyLocks();

  /**
   * Object protection (contract 5.9): every bucket is lockable when `objectLock` is on, and the
   * plugin enforces retentions and legal holds itself; see the module description.
   */
  readonly objectLock: ObjectLock = {
    getBucketProtection: (input, options) => this.#getBucketProtection(input, options),
    setRetention: (input, options) => this.#setRetention(input, options),
    setLegalHold: (input, options) => this.#setLegalHold(input, options),
  };

  /** @param options - Logger and clock. */
  constructor(options: LocalObjectStoreOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Configures the store; see `OBJECT_STORE_CONFIG_KEYS` for the keys. May be called again: the
   * last successful call wins (a changed `signedUrlAddress` restarts the signed-URL server). Also
   * reclaims what dead writers left in the buckets' temporary areas, and starts doing so
   * periodically.
   */
  async init(config: PluginConfig, options: CallOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const settings = parseObjectStoreConfig(config);
    const root = await openRoot(settings.root);
    try {
      const key = settings.signingKey.kind === "random" ? this.#randomKey : await loadSigningKey(settings.signingKey, this.#logger);
      const previous = this.#configured;
      if (previous !== undefined && (previous.settings.signedUrlHost !== settings.signedUrlHost || previous.settings.signedUrlPort !== settings.signedUrlPort)) {
        await this.#stopServer();
      }
      // A fixed port: serve from now on, so that URLs signed before a restart work again at once.
      if (settings.signedUrlPort !== 0) await this.#startServer(settings);
      this.#signer = new UrlSigner(key);
      this.#configured = { settings, root };
      previous?.root.retire();
    } catch (error) {
      root.retire();
      throw toStowageError(error);
    }
    this.#logger.info({ config: redactConfig(config, OBJECT_STORE_CONFIG_KEYS), confinement: root.mode }, "local object store configured");
    await this.#sweeper.now();
    this.#sweeper.schedule(settings.files.sweepIntervalMs);
  }

  /**
   * Stores an object atomically, with its protection when asked; see the class description. An
   * object that a protection forbids to replace is refused with `OBJECT_LOCKED` before the body is
   * read, and checked again right before the rename.
   */
  async putObject(input: PutObjectInput, options: CallOptions = {}): Promise<PutObjectResult> {
    try {
      const { settings } = this.#require();
      checkKey(input.key);
      checkPutInput(input);
      checkBucket(input.bucket);
      const asked = requestedProtection(input.protection, this.#clock());
      if (asked !== undefined && !settings.objectLock) throw bucketNotLockable(input.bucket, NOT_LOCKABLE_WHY);
      const bypass = input.bypassGovernance === true;
      return await this.#inRoot(async (root) => {
        // Refuse before reading the body (clause 5.9.7): with objectLock off, protected objects are
        // left from an earlier configuration only, and the check before the rename suffices.
        if (settings.objectLock) await this.#checkReplaceable(root, input.bucket, input.key, bypass, "replace");
        const written = await writeObject({
          root,
          bucket: input.bucket,
          bucketOptions: settings.createBuckets ? { create: settings.files.dirMode, sync: settings.fsync } : {},
          key: input.key,
          body: input.body,
          size: input.size,
          sha256: input.sha256,
          attributes: { contentType: input.contentType ?? "", metadata: { ...input.metadata } },
          protection: settings.objectLock ? (asked ?? UNPROTECTED) : undefined,
          // A protected object is always flushed: a protection lost in a crash protects nothing.
          fsync: settings.fsync || asked !== undefined,
          dirMode: settings.files.dirMode,
          fileMode: settings.files.fileMode,
          signal: options.signal,
          guard: (commit) => this.#locks.run(lockId(input.bucket, input.key), commit),
          checkReplace: (parent, fileName) => this.#checkReplaceableIn(parent, fileName, input.bucket, input.key, bypass, "replace"),
        });
        return {
          size: written.size,
          etag: written.sha256.toString("hex"),
          sha256: input.sha256 === undefined ? undefined : new Uint8Array(written.sha256),
        };
      });
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Opens an object, or a range of it, for reading. The body reads the file in chunks (bounded
   * memory) and is destroyed when `options.signal` fires.
   */
  async getObject(input: GetObjectInput, options: CallOptions = {}): Promise<GetObjectOutput> {
    try {
      const { signal } = options;
      this.#require();
      checkKey(input.key);
      const opened = await this.#inRoot((root) => findObject(root, input.bucket, input.key));
      if (opened === undefined) throw objectNotFound(input.bucket, input.key);
      const { file, header } = opened;
      let range: { offset: number; length: number };
      try {
        range = resolveRange(input, header.size);
        throwIfAborted(signal);
      } catch (error) {
        await file.close();
        throw error;
      }
      let body: Readable;
      if (range.length === 0) {
        await file.close();
        body = Readable.from([]);
      } else {
        // The stream owns the file from here on and closes it when it ends or is destroyed.
        const start = header.bodyOffset + range.offset;
        body = file.createReadStream({ start, end: start + range.length - 1, highWaterMark: READ_CHUNK_BYTES });
      }
      if (signal !== undefined) destroyOnAbort(body, signal);
      return { object: toInfo(input.key, header), contentLength: range.length, offset: range.offset, body };
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /** Returns an object's attributes, or `undefined` when the key does not exist. */
  async headObject(input: ObjectRef, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    try {
      throwIfAborted(options.signal);
      this.#require();
      checkKey(input.key);
      const opened = await this.#inRoot((root) => findObject(root, input.bucket, input.key));
      if (opened === undefined) return undefined;
      await opened.file.close();
      return toInfo(input.key, opened.header);
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Lists keys page by page in byte order of their UTF-8 encoding, with prefix, delimiter roll-ups,
   * page size (default and maximum {@link MAX_LIST_PAGE_SIZE}, counting objects and prefixes),
   * resumable page tokens and a page limit. A listing always yields at least one page.
   */
  async *listObjects(input: ListObjectsInput, options: CallOptions = {}): AsyncGenerator<ListObjectsPage, void, undefined> {
    const { signal } = options;
    let root: Directory | undefined;
    let bucket: Directory | undefined;
    let directories: DirectoryCache | undefined;
    let entries: AsyncGenerator<ListEntry, void, undefined> | undefined;
    try {
      const configured = this.#require();
      const { prefix, delimiter, pageSize, maxPages } = checkListInput(input);
      const scope = listingScope(prefix, delimiter);
      const cursor = input.pageToken === undefined || input.pageToken === "" ? undefined : decodePageToken(input.pageToken, scope);
      root = configured.root.acquire();
      bucket = await openBucket(root, input.bucket);
      directories = new DirectoryCache(bucket);
      entries = walkBucket({ directories, prefix, delimiter, cursor, signal });
      let next = await entries.next();
      for (let pages = 1; ; pages++) {
        const batch: ListEntry[] = [];
        while (next.done !== true && batch.length < pageSize) {
          batch.push(next.value);
          next = await entries.next();
        }
        const page = await this.#fillPage(bucket, batch, next.done !== true, scope);
        throwIfAborted(signal);
        yield page;
        if (page.nextPageToken === "" || pages === maxPages) return;
      }
    } catch (error) {
      throw toStowageError(error);
    } finally {
      await entries?.return();
      directories?.close();
      bucket?.close();
      root?.close();
    }
  }

  /**
   * Deletes an object and the directories it leaves empty; a missing key is success. A protected
   * object is refused with `OBJECT_LOCKED` (a governance retention yields to `bypassGovernance`).
   */
  async deleteObject(input: DeleteObjectInput, options: CallOptions = {}): Promise<void> {
    try {
      throwIfAborted(options.signal);
      const { settings } = this.#require();
      checkKey(input.key);
      checkBucket(input.bucket);
      const bypass = input.bypassGovernance === true;
      await this.#inRoot((root) =>
        this.#locks.run(lockId(input.bucket, input.key), () =>
          deleteObjectFile(root, input.bucket, objectPath(input.key), settings.fsync, (parent, fileName) =>
            this.#checkReplaceableIn(parent, fileName, input.bucket, input.key, bypass, "delete"),
          ),
        ),
      );
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Creates a URL that a plain HTTP client can GET or PUT until it expires. The validity is
   * shortened to `maxSignedUrlTtl`; `expiresAt` tells the real expiry. Starts the
   * signed-URL server on first use.
   */
  async createSignedUrl(input: CreateSignedUrlInput, options: CallOptions = {}): Promise<SignedUrl> {
    try {
      throwIfAborted(options.signal);
      const { settings } = this.#require();
      checkKey(input.key);
      const method = input.method ?? "GET";
      if (method !== "GET" && method !== "PUT") {
        throw new StowageError(Code.InvalidArgument, `signed URL method ${JSON.stringify(method)} is invalid; use GET or PUT`);
      }
      if (typeof input.ttlSeconds !== "number" || !(input.ttlSeconds >= 1)) {
        throw new StowageError(Code.InvalidArgument, `ttlSeconds must be at least 1, got ${String(input.ttlSeconds)}`);
      }
      // With createBuckets, a PUT URL may name a bucket that its upload will create.
      checkBucket(input.bucket);
      if (method !== "PUT" || !settings.createBuckets) await this.#inRoot(async (root) => (await openBucket(root, input.bucket)).close());
      const ttlSeconds = Math.min(Math.floor(input.ttlSeconds), settings.maxSignedUrlTtlSeconds);
      const claims: SignedUrlClaims = { method, bucket: input.bucket, key: input.key, expiresAtMs: this.#now() + ttlSeconds * 1000 };
      const server = await this.#startServer(settings);
      const url = buildSignedUrl(settings.signedUrlBase ?? server.origin, claims, this.#signer.sign(claims));
      return { url, expiresAt: new Date(claims.expiresAtMs) };
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Stops the signed-URL server, if it runs, and the periodic sweep. The store stays usable: the
   * server restarts on demand.
   */
  async close(): Promise<void> {
    await this.#sweeper.stop();
    await this.#stopServer();
  }

  /**
   * Every bucket is lockable with `objectLock`, none without. A missing bucket is `BUCKET_NOT_FOUND`,
   * except with `createBuckets`, where the first put creates it (lockable like any other).
   */
  async #getBucketProtection(input: { readonly bucket: string }, options: CallOptions = {}): Promise<BucketProtection> {
    try {
      throwIfAborted(options.signal);
      const { settings } = this.#require();
      checkBucket(input.bucket);
      if (!settings.createBuckets) await this.#inRoot(async (root) => (await openBucket(root, input.bucket)).close());
      return { lockable: settings.objectLock, enforcedBy: LOCAL_ENFORCED_BY };
    } catch (error) {
      throw toStowageError(error);
    }
  }

  async #setRetention(input: SetRetentionInput, options: CallOptions = {}): Promise<ObjectProtection> {
    const now = this.#clock();
    const retention = input.retention === undefined ? undefined : checkRetention(input.retention, now);
    return this.#changeProtection(input, options, (current) => {
      checkRetentionChange(input.bucket, input.key, current, retention, input.bypassGovernance === true, now);
      return { ...(retention === undefined ? {} : { retention }), legalHold: current?.legalHold ?? false };
    });
  }

  async #setLegalHold(input: SetLegalHoldInput, options: CallOptions = {}): Promise<ObjectProtection> {
    if (typeof input.legalHold !== "boolean") throw new StowageError(Code.InvalidArgument, "legalHold must be true or false");
    return this.#changeProtection(input, options, (current) => ({
      ...(current?.retention === undefined ? {} : { retention: current.retention }),
      legalHold: input.legalHold,
    }));
  }

  /**
   * Replaces an object's protection by what `change` makes of the current one (which may throw),
   * under the key's lock: in place in a format-2 file, by rewriting a format-1 file once.
   */
  async #changeProtection(ref: ObjectRef, options: CallOptions, change: (current: ObjectProtection | undefined) => ObjectProtection): Promise<ObjectProtection> {
    try {
      throwIfAborted(options.signal);
      const { settings } = this.#require();
      checkKey(ref.key);
      checkBucket(ref.bucket);
      if (!settings.objectLock) throw bucketNotLockable(ref.bucket, NOT_LOCKABLE_WHY);
      return await this.#inRoot((root) =>
        this.#locks.run(lockId(ref.bucket, ref.key), async () => {
          const opened = await findObject(root, ref.bucket, ref.key, { update: true });
          if (opened === undefined) throw objectNotFound(ref.bucket, ref.key);
          const { file, header } = opened;
          try {
            const next = change(header.record?.protection);
            throwIfAborted(options.signal);
            if (header.record !== undefined) {
              await writeProtection(file, header.record, next, header.lastModified);
              return next;
            }
            // Format 1: rewrite it once into format 2, same body, version tag and time.
            await writeObject({
              root,
              bucket: ref.bucket,
              bucketOptions: {},
              key: ref.key,
              body: readBody(file, header),
              size: header.size,
              attributes: { contentType: header.contentType, metadata: header.metadata },
              protection: next,
              versionTag: header.sha256,
              lastModified: header.lastModified,
              fsync: true,
              dirMode: settings.files.dirMode,
              fileMode: settings.files.fileMode,
              signal: options.signal,
            });
            return next;
          } finally {
            await file.close();
          }
        }),
      );
    } catch (error) {
      throw toStowageError(error);
    }
  }

  /**
   * Throws `OBJECT_LOCKED` when the object under `key`, if any, may not be deleted or replaced now
   * (`bypass`: the caller bypasses a governance retention).
   */
  async #checkReplaceable(root: Directory, bucket: string, key: string, bypass: boolean, action: string): Promise<void> {
    const names = [bucket, ...objectPath(key)];
    const fileName = names.pop() ?? "";
    // A link among the directories fails here, as it fails the delete or put itself.
    const parent = await root.walk(names);
    if (parent === undefined) return;
    try {
      await this.#checkReplaceableIn(parent, fileName, bucket, key, bypass, action);
    } finally {
      parent.close();
    }
  }

  /** {@link #checkReplaceable} for the object file `fileName` of the directory `parent`. */
  async #checkReplaceableIn(parent: Directory, fileName: string, bucket: string, key: string, bypass: boolean, action: string): Promise<void> {
    let opened: OpenedFile | undefined;
    try {
      opened = await parent.openFile(fileName);
    } catch (error) {
      // A link (or a file with several links) in the object's own place is nothing the plugin
      // wrote, so nothing it protects: the delete removes, the put replaces, the link itself.
      if (error instanceof StowageError && error.reason === Reason.UnsafePath) return;
      throw error;
    }
    if (opened === undefined) return;
    let protection: ObjectProtection | undefined;
    try {
      protection = (await readProtection(opened.handle, parent.pathOf(fileName)))?.protection;
    } finally {
      await opened.handle.close();
    }
    checkMutable(bucket, key, protection, bypass, action, this.#clock());
  }

  /** The plugin's clock as a date. */
  #clock(): Date {
    return new Date(this.#now());
  }

  #require(): Configured {
    if (this.#configured === undefined) {
      throw new StowageError(Code.FailedPrecondition, "the local object store is not configured; call init first", {
        reason: Reason.NotInitialized,
      });
    }
    return this.#configured;
  }

  /** Runs `fn` on the root directory, then releases it. */
  async #inRoot<T>(fn: (root: Directory) => Promise<T>): Promise<T> {
    const root = this.#require().root.acquire();
    try {
      return await fn(root);
    } finally {
      root.close();
    }
  }

  /** Reads the attributes of a page's objects (in parallel) and assembles the page. */
  async #fillPage(bucket: Directory, batch: readonly ListEntry[], more: boolean, scope: string): Promise<ListObjectsPage> {
    const infos = await mapConcurrently(batch, LIST_READ_CONCURRENCY, async (entry) => {
      if (entry.kind === "prefix") return undefined;
      try {
        const opened = await openObjectFile(bucket, [...entry.directory, entry.file]);
        if (opened === undefined) return undefined; // deleted since the walk saw it
        await opened.file.close();
        return toInfo(entry.key, opened.header);
      } catch (error) {
        if (error instanceof StowageError && error.code === Code.DataLoss) {
          this.#logger.warn({ err: error, key: entry.key }, "skipping damaged object in listing");
          return undefined;
        }
        throw error;
      }
    });
    const last = batch.at(-1);
    return {
      objects: infos.filter((info) => info !== undefined),
      commonPrefixes: batch.flatMap((entry) => (entry.kind === "prefix" ? [entry.prefix] : [])),
      nextPageToken:
        more && last !== undefined
          ? encodePageToken(last.kind === "prefix" ? { after: last.prefix, isPrefix: true } : { after: last.key, isPrefix: false }, scope)
          : "",
    };
  }

  /** The signed-URL server, started on first use (once; a failed start is retried next time). */
  async #startServer(settings: ObjectStoreSettings): Promise<SignedUrlServer> {
    if (this.#server === undefined) {
      const starting = SignedUrlServer.start({
        host: settings.signedUrlHost,
        port: settings.signedUrlPort,
        verify: (claims, signature) => this.#signer.verify(claims, signature),
        store: this,
        now: this.#now,
        logger: this.#logger,
      });
      this.#server = starting;
      starting.catch(() => {
        if (this.#server === starting) this.#server = undefined;
      });
    }
    return this.#server;
  }

  async #stopServer(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    try {
      await (await server).close();
    } catch {
      // It never started: nothing to stop.
    }
  }

  /** Reclaims dead writers' uploads; failures are logged, never thrown. */
  async #sweep(): Promise<void> {
    const configured = this.#configured;
    if (configured === undefined) return;
    const root = configured.root.acquire();
    try {
      const onSkipped = (bucket: string, error: unknown): void => this.#logger.warn({ err: error, bucket }, "cannot sweep the bucket's temporary area");
      const { files, bytes } = await sweepUploads(root, configured.settings.files.staleTempMs, onSkipped);
      if (files > 0) this.#logger.info({ files, bytes }, "reclaimed uploads left by dead writers");
    } catch (error) {
      this.#logger.warn({ err: error }, "sweeping temporary files failed");
    } finally {
      root.close();
    }
  }
}

/**
 * The open directory of `bucket` under the root, created when asked to (with `createBuckets`);
 * a missing bucket fails with `BUCKET_NOT_FOUND`, a link or mount point with `UNSAFE_PATH`.
 */
async function openBucket(root: Directory, bucket: string, options: ChildOptions = {}): Promise<Directory> {
  checkBucket(bucket);
  const directory = await root.walk([bucket], options);
  if (directory === undefined) throw bucketNotFound(bucket);
  return directory;
}

/**
 * Opens the object file of `key` in `bucket` and reads its header; `undefined` when the key does
 * not exist, `BUCKET_NOT_FOUND` when the bucket does not.
 */
async function findObject(
  root: Directory,
  bucket: string,
  key: string,
  options: OpenFileOptions = {},
): Promise<{ file: FileHandle; header: ObjectHeader } | undefined> {
  checkBucket(bucket);
  const found = await openObjectFile(root, [bucket, ...objectPath(key)], options);
  if (found !== undefined) return found;
  (await openBucket(root, bucket)).close();
  return undefined;
}

/** Opens an object file (`names` below `directory`) and reads its header; `undefined` when it does not exist. */
async function openObjectFile(
  directory: Directory,
  names: readonly string[],
  options: OpenFileOptions = {},
): Promise<{ file: FileHandle; header: ObjectHeader } | undefined> {
  const opened = await directory.openFileAt(names, options);
  if (opened === undefined) return undefined;
  try {
    return { file: opened.handle, header: await readHeader(opened.handle, opened.stats, directory.pathOf(names.join("/"))) };
  } catch (error) {
    await opened.handle.close();
    throw error;
  }
}

/**
 * Removes an object file and then each directory it leaves empty, up to (not including) the
 * bucket, climbing from the object's directory through its own descriptor. Flushes the highest
 * directory that changed. A missing key is success; a missing bucket `BUCKET_NOT_FOUND`. `check`
 * runs first, with the object's directory and file name, and may refuse by throwing.
 */
async function deleteObjectFile(
  root: Directory,
  bucket: string,
  names: readonly string[],
  fsync: boolean,
  check: (parent: Directory, fileName: string) => Promise<void>,
): Promise<void> {
  // The directories from the root down to the object's: the bucket first.
  let changed = await root.walk([bucket, ...names.slice(0, -1)]);
  if (changed === undefined) {
    (await openBucket(root, bucket)).close();
    return; // a directory on the way is missing: so is the object
  }
  try {
    await check(changed, names.at(-1) ?? "");
    if (!(await changed.unlink(names.at(-1) ?? ""))) return;
    while (changed.names.length > 1) {
      // Not empty (another key lives there), or already removed: stop climbing.
      const parent = await changed.removeIfEmpty();
      if (parent === undefined) break;
      changed.close();
      changed = parent;
    }
    if (fsync) await changed.sync();
  } finally {
    changed.close();
  }
}

function toInfo(key: string, header: ObjectHeader): ObjectInfo {
  const protection = headerProtection(header);
  return {
    key,
    size: header.size,
    etag: header.sha256.toString("hex"),
    lastModified: header.lastModified,
    contentType: header.contentType,
    metadata: header.metadata,
    ...(protection === undefined ? {} : { protection }),
  };
}

/** The key of {@link KeyLocks} for an object (bucket names hold no NUL). */
function lockId(bucket: string, key: string): string {
  return `${bucket}\0${key}`;
}

/** Reads the body of an open object file in chunks, for rewriting it. */
async function* readBody(file: FileHandle, header: ObjectHeader): AsyncGenerator<Uint8Array, void, undefined> {
  for (let done = 0; done < header.size; ) {
    const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK_BYTES, header.size - done));
    const { bytesRead } = await file.read(chunk, 0, chunk.length, header.bodyOffset + done);
    if (bytesRead === 0) throw new StowageError(Code.DataLoss, "an object file shrank while it was read");
    done += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
}

/**
 * Checks a retention asked for (clauses 5.9.4, 5.9.9): a mode and a `retainUntil` after `now`,
 * else `INVALID_ARGUMENT`. Returns it with `retainUntil` rounded up to whole milliseconds.
 */
function checkRetention(retention: Retention, now: Date): Retention {
  if (retention.mode !== "governance" && retention.mode !== "compliance") {
    throw new StowageError(Code.InvalidArgument, `retention mode must be "governance" or "compliance", got ${JSON.stringify(retention.mode)}`);
  }
  const until = retention.retainUntil instanceof Date ? Math.ceil(retention.retainUntil.getTime()) : Number.NaN;
  if (!Number.isFinite(until)) throw new StowageError(Code.InvalidArgument, "retention needs a valid retainUntil time");
  if (until <= now.getTime()) {
    throw new StowageError(Code.InvalidArgument, `retainUntil ${new Date(until).toISOString()} is not in the future`);
  }
  return { mode: retention.mode, retainUntil: new Date(until) };
}

/** The protection a put asks for, checked; `undefined` when it asks none. */
function requestedProtection(input: ProtectionInput | undefined, now: Date): ObjectProtection | undefined {
  if (input === undefined || (input.retention === undefined && input.legalHold !== true)) return undefined;
  const retention = input.retention === undefined ? undefined : checkRetention(input.retention, now);
  return { ...(retention === undefined ? {} : { retention }), legalHold: input.legalHold === true };
}

/**
 * Checks a range against an object of `size` bytes: an offset at or past the end fails with
 * `OUT_OF_RANGE`/`INVALID_RANGE` (except offset 0 of an empty object), a length running past the
 * end is shortened.
 */
function resolveRange(input: GetObjectInput, size: number): { offset: number; length: number } {
  const range = input.range;
  if (range === undefined) return { offset: 0, length: size };
  const { offset, length } = range;
  if (!Number.isSafeInteger(offset) || offset < 0 || (length !== undefined && (!Number.isSafeInteger(length) || length < 0))) {
    // A malformed range is INVALID_ARGUMENT without a reason: INVALID_RANGE belongs to OUT_OF_RANGE (contract 4.3.5).
    throw new StowageError(Code.InvalidArgument, `range ${JSON.stringify(range)} is invalid: offset and length must be non-negative integers`);
  }
  if (offset > size) {
    throw new StowageError(Code.OutOfRange, `range offset ${offset} is past the end of ${JSON.stringify(input.key)} (${size} bytes)`, {
      reason: Reason.InvalidRange,
      metadata: { size: String(size) },
    });
  }
  return { offset, length: Math.min(length ?? size - offset, size - offset) };
}

/** Destroys `stream` with the call's cancellation error when `signal` fires before it closes. */
function destroyOnAbort(stream: Readable, signal: AbortSignal): void {
  if (signal.aborted) {
    stream.destroy(abortError(signal));
    return;
  }
  const onAbort = (): void => {
    stream.destroy(abortError(signal));
  };
  signal.addEventListener("abort", onAbort, { once: true });
  stream.once("close", () => signal.removeEventListener("abort", onAbort));
}

function checkPutInput(input: PutObjectInput): void {
  if (input.size !== undefined && (!Number.isSafeInteger(input.size) || input.size < 0)) {
    throw new StowageError(Code.InvalidArgument, `size must be a non-negative integer, got ${String(input.size)}`);
  }
  if (input.sha256 !== undefined && (!(input.sha256 instanceof Uint8Array) || input.sha256.length !== 32)) {
    throw new StowageError(Code.InvalidArgument, "sha256 must be 32 bytes");
  }
  checkContentType(input.contentType);
  checkMetadata(input.metadata);
}

function checkListInput(input: ListObjectsInput): { prefix: string; delimiter: string; pageSize: number; maxPages: number } {
  const prefix = input.prefix ?? "";
  const delimiter = input.delimiter ?? "";
  if (typeof prefix !== "string" || !prefix.isWellFormed() || typeof delimiter !== "string" || !delimiter.isWellFormed()) {
    throw new StowageError(Code.InvalidArgument, "prefix and delimiter must be well-formed strings");
  }
  const pageSize = input.pageSize ?? 0;
  if (!Number.isSafeInteger(pageSize) || pageSize < 0) {
    throw new StowageError(Code.InvalidArgument, `pageSize must be an integer from 1 to ${MAX_LIST_PAGE_SIZE}, got ${String(input.pageSize)}`);
  }
  const maxPages = input.maxPages ?? 0;
  if (!Number.isSafeInteger(maxPages) || maxPages < 0) {
    throw new StowageError(Code.InvalidArgument, `maxPages must be a non-negative integer, got ${String(input.maxPages)}`);
  }
  return { prefix, delimiter, pageSize: pageSize === 0 ? MAX_LIST_PAGE_SIZE : Math.min(pageSize, MAX_LIST_PAGE_SIZE), maxPages };
}

/** Maps `items` with at most `limit` calls of `fn` running at once, keeping the order. */
async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
