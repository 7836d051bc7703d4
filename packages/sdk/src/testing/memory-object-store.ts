/**
 * An in-memory ObjectStore: the smallest complete implementation of the contract, for tests,
 * fixtures and scaffolds. Not for production: objects live in the process's memory.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { Code, Reason, StowageError, bucketNotFound, objectNotFound } from "../errors.js";
import { validateConfig } from "../plugin/config.js";
import type {
  CallOptions,
  ConfigKeySpec,
  CreateSignedUrlInput,
  GetObjectInput,
  GetObjectOutput,
  ListObjectsInput,
  ListObjectsPage,
  ObjectInfo,
  ObjectRef,
  ObjectStore,
  PluginConfig,
  PutObjectInput,
  PutObjectResult,
  SignedUrl,
} from "../types.js";

interface Stored {
  readonly info: ObjectInfo;
  readonly data: Buffer;
}

/** Config keys of {@link MemoryObjectStore}. */
export const memoryObjectStoreConfigKeys: readonly ConfigKeySpec[] = [
  { name: "buckets", description: "Comma-separated bucket names to create at Init", required: false },
  { name: "bucket", description: "Accepted for Velero compatibility; also created at Init" },
  { name: "prefix", description: "Accepted for Velero compatibility; ignored" },
];

function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** An ObjectStore kept in memory. */
export class MemoryObjectStore implements ObjectStore {
  readonly #buckets = new Map<string, Map<string, Stored>>();
  #initialised = false;

  async init(config: PluginConfig): Promise<void> {
    validateConfig(config, memoryObjectStoreConfigKeys);
    const names = [...(config.buckets ?? "").split(","), config.bucket ?? ""].map((b) => b.trim()).filter((b) => b !== "");
    for (const name of names) if (!this.#buckets.has(name)) this.#buckets.set(name, new Map());
    this.#initialised = true;
    return Promise.resolve();
  }

  #bucket(name: string): Map<string, Stored> {
    if (!this.#initialised) throw new StowageError(Code.FailedPrecondition, "call init first", { reason: Reason.NotInitialized });
    const bucket = this.#buckets.get(name);
    if (bucket === undefined) throw bucketNotFound(name);
    return bucket;
  }

  async putObject(input: PutObjectInput, options?: CallOptions): Promise<PutObjectResult> {
    const bucket = this.#bucket(input.bucket);
    const keyBytes = Buffer.byteLength(input.key, "utf8");
    if (keyBytes < 1 || keyBytes > 1024) {
      throw new StowageError(Code.InvalidArgument, `keys are 1 to 1024 bytes of UTF-8; this one has ${String(keyBytes)}`, { reason: Reason.InvalidName });
    }
    const chunks: Buffer[] = [];
    const md5 = createHash("md5");
    for await (const chunk of input.body) {
      options?.signal?.throwIfAborted();
      chunks.push(Buffer.from(chunk));
      md5.update(chunk);
    }
    options?.signal?.throwIfAborted();
    const data = Buffer.concat(chunks);
    const etag = md5.digest("hex");
    bucket.set(input.key, {
      data,
      info: { key: input.key, size: data.length, etag, lastModified: new Date(), contentType: input.contentType ?? "", metadata: { ...input.metadata } },
    });
    return { size: data.length, etag };
  }

  async getObject(input: GetObjectInput): Promise<GetObjectOutput> {
    const stored = this.#bucket(input.bucket).get(input.key);
    if (stored === undefined) throw objectNotFound(input.bucket, input.key);
    const offset = input.range?.offset ?? 0;
    if (offset > stored.data.length) {
      throw new StowageError(Code.OutOfRange, `range starts at ${String(offset)}, past the end of the ${String(stored.data.length)}-byte object`, { reason: Reason.InvalidRange });
    }
    const end = input.range?.length === undefined ? stored.data.length : Math.min(stored.data.length, offset + input.range.length);
    const slice = stored.data.subarray(offset, end);
    return Promise.resolve({ object: stored.info, contentLength: slice.length, offset, body: Readable.from(slice.length === 0 ? [] : [slice]) });
  }

  async headObject(input: ObjectRef): Promise<ObjectInfo | undefined> {
    return Promise.resolve(this.#bucket(input.bucket).get(input.key)?.info);
  }

  async *listObjects(input: ListObjectsInput): AsyncGenerator<ListObjectsPage> {
    const bucket = this.#bucket(input.bucket);
    const prefix = input.prefix ?? "";
    const delimiter = input.delimiter ?? "";
    const pageSize = input.pageSize ?? 1000;
    const entries: { key: string; info?: ObjectInfo | undefined }[] = [];
    const seen = new Set<string>();
    for (const key of [...bucket.keys()].sort(compareKeys)) {
      if (!key.startsWith(prefix)) continue;
      const at = delimiter === "" ? -1 : key.indexOf(delimiter, prefix.length);
      if (at >= 0) {
        const common = key.slice(0, at + delimiter.length);
        if (!seen.has(common)) {
          seen.add(common);
          entries.push({ key: common });
        }
      } else {
        entries.push({ key, info: bucket.get(key)?.info });
      }
    }
    // A token names the last entry of its page and the listing it belongs to (clause 5.5.11).
    const scope = `${prefix}\0${delimiter}\0`;
    let start = 0;
    if (input.pageToken !== undefined) {
      const decoded = Buffer.from(input.pageToken, "base64url").toString("utf8");
      if (!decoded.startsWith(scope)) {
        throw new StowageError(Code.InvalidArgument, "the page token belongs to another listing; restart the listing", { reason: Reason.InvalidPageToken });
      }
      const after = decoded.slice(scope.length);
      start = entries.findIndex((e) => compareKeys(e.key, after) > 0);
      if (start < 0) start = entries.length;
    }
    let pages = 0;
    do {
      const slice = entries.slice(start, start + pageSize);
      start += slice.length;
      const last = slice.at(-1);
      pages += 1;
      yield {
        objects: slice.flatMap((e) => (e.info === undefined ? [] : [e.info])),
        commonPrefixes: slice.filter((e) => e.info === undefined).map((e) => e.key),
        nextPageToken: start < entries.length && last !== undefined ? Buffer.from(scope + last.key, "utf8").toString("base64url") : "",
      };
    } while (start < entries.length && (input.maxPages === undefined || pages < input.maxPages));
  }

  async deleteObject(input: ObjectRef): Promise<void> {
    this.#bucket(input.bucket).delete(input.key);
    return Promise.resolve();
  }

  async createSignedUrl(input: CreateSignedUrlInput): Promise<SignedUrl> {
    this.#bucket(input.bucket);
    return Promise.reject(new StowageError(Code.Unimplemented, "the memory store cannot sign URLs", { reason: Reason.Unsupported }));
  }
}
