#!/usr/bin/env node
// An example Stowage plugin in plain JavaScript: an in-memory ObjectStore served with Node's stock
// gRPC tools, @grpc/grpc-js and @grpc/proto-loader, on the .proto files that @stowage/sdk ships
// (`@stowage/sdk/proto/*`). No Stowage library runs here and nothing is built or generated: the
// file is the plugin.
//
// It implements go-plugin's process protocol (docs/protocol.md: the cookie check, the handshake
// line, health "plugin" and "", GRPCController/Shutdown, GRPCStdio, SIGINT ignored, logs as hclog
// JSON lines on standard error) and the object-store contract (docs/contract.md section 5): Init
// with INVALID_CONFIG and valid_keys, the seven ObjectStore RPCs with ErrorInfo reasons, bodies in
// chunk messages with backpressure (no data channel), ranged reads, metadata, paged listings in
// UTF-8 byte order, cancellation and deadlines.
//
// Run it through a Stowage host, for example the conformance kit:
//     stowage conformance --config conformance.yaml -- node plugin.mjs
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const COOKIE_KEY = "STOWAGE_PLUGIN";
const COOKIE_VALUE = "b5c1e7a2-stowage-plugin";

// protocol.md §3: check the cookie before doing anything visible (and before loading gRPC).
if (process.env[COOKIE_KEY] !== COOKIE_VALUE) {
  process.stderr.write(
    "This program is a Stowage storage plugin (example.com/plain-js-memory).\n" +
      "A Stowage host starts it and talks to it over gRPC; it is not meant to be run by hand.\n" +
      "To try it, run it through the conformance kit:\n" +
      "    stowage conformance --config conformance.yaml -- node plugin.mjs\n",
  );
  process.exit(1);
}

const grpc = await import("@grpc/grpc-js");
const protoLoader = await import("@grpc/proto-loader");

const NAME = "example.com/plain-js-memory";
const VERSION = "0.1.0";
const APP_PROTOCOL_VERSION = 1;
const CONTRACT_VERSION = "1.0";
const MIB = 1024 * 1024;
const CHUNK_BYTES = MIB; // contract 2.7.1: at most 1 MiB of body per chunk message
const MAX_PAGE_SIZE = 1000; // contract 5.5.6
const MAX_KEY_BYTES = 1024; // contract 1.3.1
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const { status: Status } = grpc;

// ---------------------------------------------------------------------------------------------
// The contract, from the .proto files in the installed @stowage/sdk package (one include root).

const PROTO_ROOT = fileURLToPath(new URL("../../", import.meta.resolve("@stowage/sdk/proto/stowage/v1/object_store.proto")));
const definition = protoLoader.loadSync(
  ["stowage/v1/object_store.proto", "stowage/v1/plugin_info.proto", "plugin/grpc_controller.proto", "plugin/grpc_stdio.proto", "grpc/health/v1/health.proto"],
  // Field names as in the protos; int64 as numbers (sizes stay far below 2^53); presence of
  // `optional` fields and the `part` oneofs as virtual fields.
  { includeDirs: [PROTO_ROOT], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true },
);
const loaded = grpc.loadPackageDefinition(definition);
const stowage = loaded.stowage.v1;

const CONFIG_KEYS = [
  {
    name: "buckets",
    required: true,
    description:
      "Comma-separated names of the buckets this in-memory backend holds. They are created at Init (this is the explicit opt-in of contract clause 5.0.3); no call ever creates another.",
  },
  {
    name: "maxTotalSize",
    description:
      "Memory the stored objects may use: a size (512MiB, 2GiB) or a number of MiB (default 1GiB); a PutObject that would exceed it fails with RESOURCE_EXHAUSTED. maxTotalMiB, its old name, is an alias.",
  },
];
/** Old names still accepted, as in every Stowage plugin: alias -> key. */
const ALIASES = { maxTotalMiB: "maxTotalSize" };
/** Every accepted name, aliases included (contract 5.1.1: valid_keys lists every accepted key). */
const VALID_KEYS = [...CONFIG_KEYS.map((k) => k.name), ...Object.keys(ALIASES)].sort();

// ---------------------------------------------------------------------------------------------
// Logging: hclog-shaped JSON lines on standard error (protocol.md §10).

function log(level, message, fields = {}) {
  const stamp = new Date().toISOString().replace(/Z$/, "000Z"); // six fractional digits
  process.stderr.write(`${JSON.stringify({ "@level": level, "@message": message, "@timestamp": stamp, "@module": NAME, ...fields })}\n`);
}

// ---------------------------------------------------------------------------------------------
// Errors: a gRPC code, a Stowage reason in a google.rpc.ErrorInfo detail, and a message (contract §4).
//
// The detail travels as a serialised google.rpc.Status in the trailer grpc-status-details-bin
// (contract 4.3.2). @grpc/proto-loader hands out service definitions, not codecs for standalone
// messages, so the three small messages (Status, Any, ErrorInfo: field numbers from the shipped
// google/rpc/*.proto and google/protobuf/any.proto) are written here with the protobuf wire format.

class StowageError extends Error {
  constructor(code, reason, message, metadata = {}) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.metadata = metadata;
  }
}

function varint(value) {
  const bytes = [];
  let rest = value >>> 0;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A length-delimited field (wire type 2). */
function bytesField(number, payload) {
  const data = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  return Buffer.concat([varint((number << 3) | 2), varint(data.length), data]);
}

function statusDetails(error) {
  const info = [bytesField(1, error.reason ?? ""), bytesField(2, "stowage.io")];
  for (const [key, value] of Object.entries(error.metadata)) info.push(bytesField(3, Buffer.concat([bytesField(1, key), bytesField(2, value)])));
  const any = Buffer.concat([bytesField(1, "type.googleapis.com/google.rpc.ErrorInfo"), bytesField(2, Buffer.concat(info))]);
  return Buffer.concat([varint((1 << 3) | 0), varint(error.code), bytesField(2, error.message), bytesField(3, any)]);
}

/** The status object grpc-js sends for `error`. */
function toStatus(error) {
  const metadata = new grpc.Metadata();
  if (error.reason !== undefined) metadata.set("grpc-status-details-bin", statusDetails(error));
  return { code: error.code, details: error.message, metadata };
}

/** Contract 4.5.1: an exception that escapes a handler is INTERNAL, and the process keeps serving. */
function asStowageError(method, error) {
  if (error instanceof StowageError) return error;
  log("error", "unexpected exception in plugin call", { method, error: String(error?.stack ?? error) });
  return new StowageError(Status.INTERNAL, "INTERNAL", `unexpected error in the plugin: ${error}`);
}

/** The error of a call whose caller cancelled it or whose deadline passed (contract 2.4.3). */
function ended(call) {
  const deadline = call.getDeadline();
  if (deadline instanceof Date ? deadline.getTime() <= Date.now() : Number.isFinite(deadline) && deadline <= Date.now()) {
    return new StowageError(Status.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED", "the call's deadline passed");
  }
  return new StowageError(Status.CANCELLED, "CANCELLED", "the caller cancelled the call");
}

/** A unary or client-streaming handler: StowageErrors and unexpected exceptions become statuses. */
function unary(method, fn) {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call))
      .then(
        (response) => callback(null, response),
        (error) => callback(toStatus(asStowageError(method, error))),
      );
  };
}

/** A server-streaming handler: `fn` writes with `send`; an error ends the stream with its status (contract 4.7.3). */
function streaming(method, fn) {
  return (call) => {
    const send = async (message) => {
      if (call.cancelled) throw ended(call);
      // Backpressure: wait until grpc-js has room for more (contract 2.5.3).
      if (!call.write(message)) await new Promise((resolve) => call.once("drain", resolve).once("cancelled", resolve));
    };
    Promise.resolve()
      .then(() => fn(call, send))
      .then(
        () => call.cancelled || call.end(),
        (error) => call.cancelled || call.emit("error", toStatus(asStowageError(method, error))),
      );
  };
}

const invalidName = (message, metadata = {}) => new StowageError(Status.INVALID_ARGUMENT, "INVALID_NAME", message, metadata);
const invalidArgument = (message) => new StowageError(Status.INVALID_ARGUMENT, undefined, message);

// ---------------------------------------------------------------------------------------------
// The storage: objects in memory, replaced whole, never modified in place.

/** UTF-8 byte order of keys (contract 5.5.5); JavaScript's own string order is UTF-16's. */
const compareUtf8 = (a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

function configError(message, metadata = {}) {
  return new StowageError(Status.INVALID_ARGUMENT, "INVALID_CONFIG", message, { valid_keys: VALID_KEYS.join(","), ...metadata });
}

/** Contract 5.1.1 and 5.1.2: the whole map is checked before anything changes. */
function parseConfig(config) {
  const unknown = Object.keys(config).filter((k) => !VALID_KEYS.includes(k)).sort();
  const missing = CONFIG_KEYS.filter((k) => k.required && !(config[k.name] ?? "").trim()).map((k) => k.name);
  if (unknown.length > 0 || missing.length > 0) {
    const problems = [];
    if (unknown.length > 0) problems.push(`config has invalid keys [${unknown.join(", ")}]`);
    if (missing.length > 0) problems.push(`config lacks required keys [${missing.join(", ")}]`);
    throw configError(`${problems.join("; ")}; valid keys are [${VALID_KEYS.join(", ")}]`, { invalid_keys: unknown.join(","), missing_keys: missing.join(",") });
  }
  const buckets = config.buckets.split(",").map((b) => b.trim()).filter((b) => b !== "");
  for (const bucket of buckets) {
    if (!BUCKET_NAME.test(bucket)) throw configError(`config key buckets: ${JSON.stringify(bucket)} is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')`, { key: "buckets" });
  }
  // The key under its name or its alias; both set must agree.
  const given = ["maxTotalSize", "maxTotalMiB"].filter((k) => (config[k] ?? "").trim() !== "");
  const key = given[0] ?? "maxTotalSize";
  const raw = (config[key] ?? "").trim() || "1024";
  const maxTotalBytes = parseSize(raw);
  if (maxTotalBytes === undefined || maxTotalBytes < 1) {
    throw configError(`config key ${key} must be a size (e.g. 512MiB, 2GiB; a bare number is MiB), got ${JSON.stringify(config[key])}`, { key });
  }
  if (given.length === 2 && parseSize(config[given[1]]) !== maxTotalBytes) {
    throw configError(`maxTotalSize and its alias maxTotalMiB are both set, to different values; keep only maxTotalSize`, { key: "maxTotalSize" });
  }
  return { buckets: new Set(buckets), maxTotalBytes };
}

const SIZE_UNITS = { b: 1, k: 1024, ki: 1024, kib: 1024, m: MIB, mi: MIB, mib: MIB, g: 1024 * MIB, gi: 1024 * MIB, gib: 1024 * MIB };

/** The size syntax of every Stowage plugin: `512MiB`, `2GiB`, `64K`, or a bare number of MiB (this key's old unit). */
function parseSize(text) {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * MIB);
  const match = /^(\d+)\s*([a-z]+)$/i.exec(value);
  const unit = match === null ? undefined : SIZE_UNITS[match[2].toLowerCase()];
  return unit === undefined ? undefined : Number(match[1]) * unit;
}

function checkKey(key) {
  const size = Buffer.byteLength(key, "utf8");
  if (size > MAX_KEY_BYTES) throw invalidName(`a key is 1 to ${MAX_KEY_BYTES} bytes of UTF-8; this one has ${size}: choose a shorter key`);
}

/** Contract 1.1.2: a REQUIRED field left empty fails with INVALID_ARGUMENT naming the field. */
function require(value, field) {
  if (value === "") throw invalidName(`${field} is required`);
}

/** Contract 3.5.2: a name this executable does not serve fails with PLUGIN_NOT_FOUND. */
function route(name) {
  if (name !== NAME) {
    throw new StowageError(Status.NOT_FOUND, "PLUGIN_NOT_FOUND", `no object-store plugin named ${JSON.stringify(name)} here; this executable serves [${NAME}]`, { plugin: name });
  }
}

class Store {
  settings = undefined;
  buckets = new Map(); // bucket name -> Map(key -> { data, sha256, modifiedMs, contentType, metadata })
  used = 0; // bytes of stored bodies
  staged = 0; // bytes of bodies being received

  init(settings) {
    for (const bucket of settings.buckets) if (!this.buckets.has(bucket)) this.buckets.set(bucket, new Map());
    this.settings = settings;
  }

  /** Contract 3.6.2: every call but Init needs a successful Init first. */
  current() {
    if (this.settings === undefined) {
      throw new StowageError(Status.FAILED_PRECONDITION, "NOT_INITIALIZED", `${NAME} is not initialised: call Init with its configuration first`, { plugin: NAME });
    }
    return this.settings;
  }

  bucket(settings, name) {
    if (!BUCKET_NAME.test(name)) throw invalidName(`${JSON.stringify(name)} is not a bucket name (3 to 63 of a-z, 0-9, '.', '-')`, { bucket: name });
    if (!settings.buckets.has(name)) throw new StowageError(Status.NOT_FOUND, "BUCKET_NOT_FOUND", `bucket ${JSON.stringify(name)} does not exist; list it in the buckets setting`, { bucket: name });
    return this.buckets.get(name);
  }

  reserve(settings, size) {
    if (this.used + this.staged + size > settings.maxTotalBytes) {
      throw new StowageError(Status.RESOURCE_EXHAUSTED, undefined, `the store holds ${this.used} bytes and receives ${this.staged}; ${size} more would exceed maxTotalSize`);
    }
    this.staged += size;
  }

  publish(bucket, key, object) {
    this.used += object.data.length - (bucket.get(key)?.data.length ?? 0);
    bucket.set(key, object);
  }

  delete(bucket, key) {
    this.used -= bucket.get(key)?.data.length ?? 0;
    bucket.delete(key);
  }
}

function infoOf(key, object, withAttributes = true) {
  const info = {
    key,
    size: object.data.length,
    etag: object.sha256.toString("hex"),
    last_modified: { seconds: Math.floor(object.modifiedMs / 1000), nanos: (object.modifiedMs % 1000) * 1e6 },
  };
  return withAttributes ? { ...info, content_type: object.contentType, metadata: object.metadata } : info;
}

// Page tokens (contract 5.5.11): the last entry returned, bound to its bucket, prefix and delimiter.
function encodeToken(listing, after) {
  return Buffer.from(JSON.stringify({ ...listing, after })).toString("base64url");
}

function decodeToken(token, listing) {
  let parsed;
  try {
    parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== "object" || parsed === null || typeof parsed.after !== "string" || Object.entries(listing).some(([k, v]) => parsed[k] !== v)) {
    throw new StowageError(Status.INVALID_ARGUMENT, "INVALID_PAGE_TOKEN", "the page token does not belong to this listing; restart it without a token");
  }
  return parsed.after;
}

/** Sorted entries [name, isPrefix] of a listing (contract 5.5.1 to 5.5.5). */
function entriesOf(keys, prefix, delimiter) {
  const entries = [];
  let lastPrefix;
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    const cut = delimiter === "" ? -1 : rest.indexOf(delimiter);
    if (cut < 0) {
      entries.push([key, false]);
      continue;
    }
    // The keys sharing a common prefix sort together, right after it: one entry for all of them.
    const common = prefix + rest.slice(0, cut + delimiter.length);
    if (common !== lastPrefix) entries.push([common, true]);
    lastPrefix = common;
  }
  return entries;
}

// ---------------------------------------------------------------------------------------------
// The services. Checks run in the order of contract clause 4.8.1: request form, plugin name, Init,
// names, bucket, object.

const store = new Store();

function bucketOf(request) {
  require(request.bucket, "bucket");
  require(request.key, "key");
  route(request.plugin);
  const settings = store.current();
  checkKey(request.key);
  return store.bucket(settings, request.bucket);
}

/** Resolves once `call` is cancelled (or its deadline passes), or after `ms` milliseconds. */
function cancelledWithin(call, ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    call.once("cancelled", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const objectStore = {
  Init: unary("Init", ({ request }) => {
    route(request.plugin);
    const settings = parseConfig(request.config); // a failed Init leaves the previous configuration (3.6.3)
    store.init(settings);
    log("info", "configured", { buckets: [...settings.buckets].sort().join(","), maxTotalSize: `${settings.maxTotalBytes / MIB}MiB` });
    return {};
  }),

  HeadObject: unary("HeadObject", ({ request }) => {
    const object = bucketOf(request).get(request.key);
    // Contract 5.4.1: a missing key is not an error.
    return object === undefined ? { exists: false } : { exists: true, object: infoOf(request.key, object) };
  }),

  DeleteObject: unary("DeleteObject", ({ request }) => {
    store.delete(bucketOf(request), request.key); // a missing key is OK (5.6.2)
    return {};
  }),

  CreateSignedURL: unary("CreateSignedURL", ({ request }) => {
    require(request.bucket, "bucket");
    require(request.key, "key");
    if (request.ttl_seconds < 1) throw invalidArgument(`ttl_seconds must be at least 1, got ${request.ttl_seconds}`);
    route(request.plugin);
    store.current();
    // No SIGNED_*_URLS capability is announced (contract 5.7.1).
    throw new StowageError(Status.UNIMPLEMENTED, "UNSUPPORTED", `${NAME} does not sign URLs; read and write objects through the host`);
  }),

  PutObject: unary("PutObject", async (call) => {
    const messages = call[Symbol.asyncIterator]();
    const first = (await messages.next()).value;
    if (first === undefined || first.part !== "header") throw invalidArgument("the first PutObject message must be a header (5.2.1)");
    const { header } = first;
    require(header.bucket, "bucket");
    require(header.key, "key");
    const sized = header._size === "size";
    if (sized && header.size < 0) throw invalidArgument(`size must not be negative, got ${header.size}`);
    if (header.sha256.length > 0 && header.sha256.length !== 32) throw invalidArgument(`sha256 must be 32 bytes, got ${header.sha256.length} (5.2.7)`);
    route(header.plugin);
    const settings = store.current();
    if (header.data_channel_token.length > 0) {
      // This plugin advertises no data channel, so a host never sends a token (contract 2.6.3).
      throw new StowageError(Status.UNIMPLEMENTED, "UNSUPPORTED", "this plugin offers no data channel; send the body in chunk messages");
    }
    checkKey(header.key);
    const bucket = store.bucket(settings, header.bucket);

    // Receive the body; nothing is visible until it has arrived whole and verified (5.2.8). The
    // for-await reads one message at a time, so a fast sender waits for us (backpressure, 2.5.3).
    const chunks = [];
    const digest = createHash("sha256");
    let received = 0;
    let trailerSize;
    let reserved = 0;
    try {
      for await (const message of { [Symbol.asyncIterator]: () => messages }) {
        if (message.part === "chunk") {
          if (trailerSize !== undefined) throw invalidArgument("a chunk arrived after the trailer (5.2.2)");
          store.reserve(settings, message.chunk.length);
          reserved += message.chunk.length;
          chunks.push(message.chunk);
          digest.update(message.chunk);
          received += message.chunk.length;
        } else if (message.part === "trailer") {
          if (trailerSize !== undefined) throw invalidArgument("a second trailer arrived (5.2.2)");
          trailerSize = message.trailer.size;
        } else {
          throw invalidArgument("a second header arrived (5.2.2)");
        }
      }
      const sha256 = digest.digest();
      let mismatch;
      if (sized && header.size !== received) mismatch = `the header announced ${header.size} bytes, ${received} arrived`;
      else if (trailerSize !== undefined && trailerSize !== received) mismatch = `the trailer announced ${trailerSize} bytes, ${received} arrived`;
      else if (header.sha256.length > 0 && !header.sha256.equals(sha256)) mismatch = "the body's SHA-256 differs from the header's";
      if (mismatch !== undefined) {
        throw new StowageError(Status.DATA_LOSS, "INTEGRITY_MISMATCH", `${mismatch}; nothing was stored, send the body again`, { bucket: header.bucket });
      }
      if (trailerSize === undefined && !sized && !call.cancelled) {
        // Nothing announced the body's length, and a stream the caller reset can end like a finished
        // one, the cancellation arriving just after: give it a moment before storing (the Stowage host
        // always sends a trailer, so its complete uploads never wait).
        await cancelledWithin(call, 500);
      }
      if (call.cancelled) throw ended(call);
      const object = { data: Buffer.concat(chunks, received), sha256, modifiedMs: Date.now(), contentType: header.content_type, metadata: { ...header.metadata } };
      store.publish(bucket, header.key, object);
      return { size: received, etag: sha256.toString("hex"), sha256 };
    } catch (error) {
      // A cancelled or expired call breaks the request stream (contract 2.4): report it as such.
      if (!(error instanceof StowageError) && call.cancelled) throw ended(call);
      throw error;
    } finally {
      store.staged -= reserved;
    }
  }),

  GetObject: streaming("GetObject", async ({ request }, send) => {
    require(request.bucket, "bucket");
    require(request.key, "key");
    const range = request.range;
    const ranged = range !== null && range !== undefined;
    if (ranged && (range.offset < 0 || (range._length === "length" && range.length < 0))) throw invalidArgument("range offset and length must not be negative (5.3.11)");
    route(request.plugin);
    const settings = store.current();
    if (request.data_channel_token.length > 0) throw new StowageError(Status.UNIMPLEMENTED, "UNSUPPORTED", "this plugin offers no data channel");
    checkKey(request.key);
    const object = store.bucket(settings, request.bucket).get(request.key);
    if (object === undefined) {
      throw new StowageError(Status.NOT_FOUND, "OBJECT_NOT_FOUND", `object ${JSON.stringify(request.key)} does not exist in bucket ${JSON.stringify(request.bucket)}`, {
        bucket: request.bucket,
        key: request.key,
      });
    }
    const size = object.data.length;
    let offset = 0;
    let length = size;
    if (ranged) {
      offset = range.offset;
      if (offset > size) throw new StowageError(Status.OUT_OF_RANGE, "INVALID_RANGE", `range offset ${offset} is past the end of ${JSON.stringify(request.key)} (${size} bytes)`, { size: String(size) });
      length = size - offset;
      if (range._length === "length") length = Math.min(range.length, length);
    }
    await send({ header: { object: infoOf(request.key, object), content_length: length, offset } });
    for (let start = offset; start < offset + length; start += CHUNK_BYTES) {
      await send({ chunk: object.data.subarray(start, Math.min(start + CHUNK_BYTES, offset + length)) });
    }
    await send({ trailer: { size: length } });
  }),

  ListObjects: streaming("ListObjects", async (call, send) => {
    const { request } = call;
    require(request.bucket, "bucket");
    if (request.page_size < 0 || request.page_size > MAX_PAGE_SIZE) throw invalidArgument(`page_size must be between 0 and ${MAX_PAGE_SIZE}, got ${request.page_size} (5.5.6)`);
    if (request.max_pages < 0) throw invalidArgument(`max_pages must not be negative, got ${request.max_pages} (5.5.9)`);
    route(request.plugin);
    const settings = store.current();
    if (Buffer.byteLength(request.prefix, "utf8") > MAX_KEY_BYTES) throw invalidName(`the prefix is longer than ${MAX_KEY_BYTES} bytes`);
    const listing = { bucket: request.bucket, prefix: request.prefix, delimiter: request.delimiter };
    const after = request.page_token === "" ? undefined : decodeToken(request.page_token, listing);
    const bucket = store.bucket(settings, request.bucket);
    const pageSize = request.page_size || MAX_PAGE_SIZE;
    const entries = entriesOf([...bucket.keys()].sort(compareUtf8), request.prefix, request.delimiter);
    let position = after === undefined ? 0 : entries.findIndex(([name]) => compareUtf8(name, after) > 0);
    if (position < 0) position = entries.length;
    for (let pages = 1; ; pages++) {
      const batch = entries.slice(position, position + pageSize);
      position += batch.length;
      const more = position < entries.length;
      const page = { objects: [], common_prefixes: [], next_page_token: more ? encodeToken(listing, batch.at(-1)[0]) : "" };
      for (const [name, isPrefix] of batch) {
        if (isPrefix) page.common_prefixes.push(name);
        else if (bucket.has(name)) page.objects.push(infoOf(name, bucket.get(name), false)); // deleted since the listing started: 5.5.13
      }
      await send(page); // fails with CANCELLED once the caller is gone (2.4.2)
      if (!more || pages === request.max_pages) return;
    }
  }),
};

const pluginInfo = {
  GetPluginInfo: unary("GetPluginInfo", () => ({
    contract_version: CONTRACT_VERSION,
    runtime: `example-plain-js-memory/${VERSION} node/${process.versions.node}`,
    plugins: [
      {
        name: NAME,
        kind: "PLUGIN_KIND_OBJECT_STORE",
        capabilities: ["CAPABILITY_RANGED_READS", "CAPABILITY_OBJECT_METADATA"],
        description: "Objects in this process's memory (an example in plain JavaScript with @grpc/grpc-js)",
        config_keys: CONFIG_KEYS,
      },
    ],
  })),
};

// ---------------------------------------------------------------------------------------------
// go-plugin's services (protocol.md §9) and the process (§2 to §11).

const server = new grpc.Server({ "grpc.max_receive_message_length": 16 * MIB }); // contract 2.7.3: at least 4 MiB plus framing
const openStreams = new Set(); // StreamStdio and Health/Watch streams, ended at shutdown
let stopping = false;

function stop(socketPath, socketDir) {
  if (stopping) return;
  stopping = true;
  for (const call of openStreams) call.end();
  const exit = () => {
    rmSync(socketPath, { force: true });
    if (socketDir !== undefined) rmSync(socketDir, { recursive: true, force: true });
    process.exit(0);
  };
  // Calls still running after a second are cancelled (contract 2.3.1).
  const force = setTimeout(() => {
    server.forceShutdown();
    exit();
  }, 1000);
  server.tryShutdown(() => {
    clearTimeout(force);
    exit();
  });
}

/** Keeps a server stream open until the host cancels it or the plugin stops. */
function holdOpen(call) {
  openStreams.add(call);
  call.once("cancelled", () => openStreams.delete(call));
}

const SERVING = new Set(["plugin", ""]);
server.addService(loaded.grpc.health.v1.Health.service, {
  Check: ({ request }, callback) =>
    SERVING.has(request.service) ? callback(null, { status: "SERVING" }) : callback({ code: Status.NOT_FOUND, details: `unknown service ${JSON.stringify(request.service)}` }),
  Watch: (call) => {
    call.write({ status: SERVING.has(call.request.service) ? "SERVING" : "SERVICE_UNKNOWN" });
    holdOpen(call);
  },
});
server.addService(loaded.plugin.GRPCStdio.service, {
  // Logs go straight to standard error, so nothing is sent; the stream stays open (protocol.md §9.3).
  StreamStdio: holdOpen,
});
server.addService(stowage.PluginInfoService.service, pluginInfo);
server.addService(stowage.ObjectStoreService.service, objectStore);

process.on("SIGINT", () => {}); // protocol.md §11: the host alone stops the plugin

const offered = (process.env.PLUGIN_PROTOCOL_VERSIONS ?? "").split(",").map((v) => v.trim());
if (!offered.includes(String(APP_PROTOCOL_VERSION))) {
  log("warn", "the host does not offer protocol version 1; announcing it anyway so the host can report the mismatch", { offered: offered.join(",") });
}

// protocol.md §5: the socket goes into PLUGIN_UNIX_SOCKET_DIR; without it (a plain go-plugin host)
// into a private directory made in the system's temporary directory.
const given = process.env.PLUGIN_UNIX_SOCKET_DIR ?? "";
const socketDir = given === "" ? mkdtempSync(join(tmpdir(), "stowage-plugin-")) : undefined;
const socketPath = join(socketDir ?? given, `plugin-${process.pid}.sock`);

server.addService(loaded.plugin.GRPCController.service, {
  Shutdown: (_call, callback) => {
    // Reply first (protocol.md §9.2): the stop runs once the reply is on its way.
    callback(null, {});
    setImmediate(() => stop(socketPath, socketDir));
  },
});

server.bindAsync(`unix:${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) => {
  if (error !== null) {
    process.stderr.write(`cannot listen on ${socketPath}: ${error.message}\n`);
    process.exit(1);
  }
  // protocol.md §6: one line, only once the server accepts connections; nothing on standard output after it.
  process.stdout.write(`1|${APP_PROTOCOL_VERSION}|unix|${socketPath}|grpc|\n`);
  process.stdout.write = process.stderr.write.bind(process.stderr);
  log("info", "plugin started", { socket: socketPath, pid: process.pid });
});

process.on("SIGTERM", () => stop(socketPath, socketDir));
// The host died without Shutdown: do not linger as an orphan.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) {
    log("warn", "the host is gone; exiting");
    stop(socketPath, socketDir);
  }
}, 1000).unref();
