/**
 * An ObjectStore that keeps objects in memory: small, but complete and conformant, written the way
 * a third party would (only `@stowage/sdk` and `@stowage/sdk/plugin`). It serves ranged reads and
 * object metadata, bounds its memory, and follows the contract's rules the comments cite (clause
 * numbers refer to the Stowage contract, docs/contract.md). `stowage new plugin` scaffolds this
 * very file, so that the conformance kit passes before anything is changed: replace the Map with
 * your backend, keeping those rules. It is also the repository's one in-memory reference store:
 * `@stowage/sdk/testing` exports a generated copy of it as `MemoryObjectStore`.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  Code,
  Reason,
  StowageError,
  bucketNotFound,
  objectNotFound,
  silentLogger,
  type CallOptions,
  type ConfigKeySpec,
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
import { defineConfig, redactConfig, size, text } from "@stowage/sdk/plugin";

const MIB = 1024 * 1024;

/** The configuration `init` accepts, declared once (see `defineConfig`). */
export const CONFIG = defineConfig({
  buckets: { value: text(), required: true, description: "Comma-separated names of the buckets to create at Init." },
  maxTotalSize: {
    value: size({ default: 1024 * MIB, bareUnit: MIB }),
    aliases: ["maxTotalMiB"],
    description: "Memory the objects may take in total: a size (512MiB, 2GiB) or a number of MiB (default 1GiB); puts beyond it fail with RESOURCE_EXHAUSTED.",
  },
  bucket: { value: text(), description: "Accepted for Velero compatibility (Velero adds it to every location's config)." },
  prefix: { value: text(), description: "Accepted for Velero compatibility." },
});

/** The configuration keys `init` accepts. */
export const CONFIG_KEYS: readonly ConfigKeySpec[] = CONFIG.keys;

interface Stored {
  readonly info: ObjectInfo;
  readonly data: Buffer;
}

/** UTF-8 byte order, the order of keys and listings (clauses 1.3.2, 5.5.5). */
function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Keys are 1 to 1024 bytes of UTF-8 (clause 1.3.1). */
function checkKey(key: string): void {
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes < 1 || bytes > 1024) {
    throw new StowageError(Code.InvalidArgument, `a key is 1 to 1024 bytes of UTF-8; this one has ${String(bytes)}`, { reason: Reason.InvalidName });
  }
}

/** Page tokens carry their listing, so a token from another listing is refused (clause 5.5.11). */
function encodeToken(listing: string, after: string): string {
  return Buffer.from(JSON.stringify([listing, after]), "utf8").toString("base64url");
}

function decodeToken(token: string, listing: string): string {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(value) && value[0] === listing && typeof value[1] === "string") return value[1];
  } catch {
    // Not a token of ours.
  }
  throw new StowageError(Code.InvalidArgument, "the page token does not belong to this listing; restart it without a token", { reason: Reason.InvalidPageToken });
}

/** The in-memory ObjectStore. */
export class MemoryStore implements ObjectStore {
  readonly #logger: Logger;
  #buckets = new Map<string, Map<string, Stored>>();
  #maxBytes = 1024 * MIB;

  /** @param logger - Where the plugin's log lines go (they reach the host); none by default. */
  constructor(logger: Logger = silentLogger) {
    this.#logger = logger;
  }

  /** Creates the configured buckets; keeps the objects of buckets that stay configured. */
  async init(config: PluginConfig): Promise<void> {
    const settings = CONFIG.parse(config);
    const maxBytes = settings.maxTotalSize;
    const buckets = new Map<string, Map<string, Stored>>();
    for (const name of (settings.buckets ?? "").split(",").map((b) => b.trim()).filter((b) => b !== "")) {
      buckets.set(name, this.#buckets.get(name) ?? new Map<string, Stored>());
    }
    this.#buckets = buckets;
    this.#maxBytes = maxBytes;
    this.#logger.info({ config: redactConfig(config, CONFIG_KEYS) }, "memory store configured");
  }

  #bucket(name: string): Map<string, Stored> {
    const bucket = this.#buckets.get(name);
    if (bucket === undefined) throw bucketNotFound(name);
    return bucket;
  }

  #used(): number {
    let total = 0;
    for (const bucket of this.#buckets.values()) for (const stored of bucket.values()) total += stored.data.length;
    return total;
  }

  /** Stores a body once it has fully arrived; a cancelled or oversized put stores nothing (2.4.4). */
  async putObject(input: PutObjectInput, options: CallOptions = {}): Promise<PutObjectResult> {
    checkKey(input.key); // names before buckets (contract 4.8)
    const bucket = this.#bucket(input.bucket);
    const room = this.#maxBytes - this.#used() + (bucket.get(input.key)?.data.length ?? 0);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of input.body) {
      options.signal?.throwIfAborted();
      size += chunk.byteLength;
      if (size > room) throw new StowageError(Code.ResourceExhausted, `the store holds at most maxTotalSize=${String(this.#maxBytes / MIB)}MiB; delete objects or raise it`);
      chunks.push(Buffer.from(chunk));
    }
    options.signal?.throwIfAborted();
    const data = Buffer.concat(chunks);
    const info: ObjectInfo = {
      key: input.key,
      size: data.length,
      etag: createHash("md5").update(data).digest("hex"),
      lastModified: new Date(),
      contentType: input.contentType ?? "",
      metadata: { ...input.metadata },
    };
    bucket.set(input.key, { info, data });
    return { size: data.length, etag: info.etag };
  }

  /** Reads an object or a range of it (clauses 5.3.9 to 5.3.13). */
  async getObject(input: GetObjectInput): Promise<GetObjectOutput> {
    checkKey(input.key); // names before buckets (contract 4.8)
    const bucket = this.#bucket(input.bucket);
    const stored = bucket.get(input.key);
    if (stored === undefined) throw objectNotFound(input.bucket, input.key);
    const size = stored.data.length;
    const offset = input.range?.offset ?? 0;
    if (offset > size) {
      throw new StowageError(Code.OutOfRange, `range offset ${String(offset)} is past the end of the ${String(size)}-byte object`, { reason: Reason.InvalidRange });
    }
    const length = Math.min(input.range?.length ?? size - offset, size - offset);
    const slice = stored.data.subarray(offset, offset + length);
    return { object: stored.info, contentLength: slice.length, offset, body: Readable.from(slice.length === 0 ? [] : [slice]) };
  }

  /** Attributes, or `undefined` for a missing key (clause 5.4.1). */
  async headObject(input: ObjectRef): Promise<ObjectInfo | undefined> {
    checkKey(input.key); // names before buckets (contract 4.8)
    const bucket = this.#bucket(input.bucket);
    return bucket.get(input.key)?.info;
  }

  /** Deletes; a missing key is success (clause 5.6.2). */
  async deleteObject(input: ObjectRef): Promise<void> {
    checkKey(input.key); // names before buckets (contract 4.8)
    const bucket = this.#bucket(input.bucket);
    bucket.delete(input.key);
  }

  /** Lists in byte order with common prefixes, pages and tokens bound to the listing (clause 5.5). */
  async *listObjects(input: ListObjectsInput): AsyncGenerator<ListObjectsPage> {
    const prefix = input.prefix ?? "";
    const delimiter = input.delimiter ?? "";
    const pageSize = input.pageSize ?? 1000;
    const listing = JSON.stringify([input.bucket, prefix, delimiter]);
    // The page token before the bucket (contract 4.8).
    const after = input.pageToken === undefined ? undefined : decodeToken(input.pageToken, listing);
    const bucket = this.#bucket(input.bucket);
    const entries: { readonly key: string; readonly info?: ObjectInfo | undefined }[] = [];
    let lastCommon: string | undefined;
    for (const key of [...bucket.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys)) {
      const at = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
      if (at < 0) {
        entries.push({ key, info: bucket.get(key)?.info });
        continue;
      }
      const common = key.slice(0, at + delimiter.length);
      if (common !== lastCommon) entries.push({ key: common });
      lastCommon = common;
    }
    let start = 0;
    if (after !== undefined) {
      start = entries.findIndex((e) => compareKeys(e.key, after) > 0);
      if (start < 0) start = entries.length;
    }
    let pages = 0;
    do {
      const slice = entries.slice(start, start + pageSize);
      start += slice.length;
      pages++;
      const last = slice.at(-1);
      yield {
        objects: slice.flatMap((e) => (e.info === undefined ? [] : [e.info])),
        commonPrefixes: slice.filter((e) => e.info === undefined).map((e) => e.key),
        nextPageToken: start < entries.length && last !== undefined ? encodeToken(listing, last.key) : "",
      };
    } while (start < entries.length && (input.maxPages === undefined || pages < input.maxPages));
  }

  /** Not offered: the plugin announces no signed-URL capability (clause 5.7.1). */
  async createSignedUrl(): Promise<SignedUrl> {
    // UNSUPPORTED comes before any bucket lookup (contract 4.8).
    throw new StowageError(Code.Unimplemented, "this plugin does not sign URLs; stream the object through the host", { reason: Reason.Unsupported });
  }
}
