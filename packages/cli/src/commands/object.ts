/**
 * `stowage object put|get|stat|ls|rm|url|retain|hold|protection`: one ObjectStore call each (ls
 * with `--protection`: one per object), against any ObjectStore plugin. Protection (contract 5.9)
 * needs a plugin that announces `OBJECT_LOCK`.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, Reason, StowageError, type ObjectInfo, type ObjectLock, type ObjectProtection, type ProtectionInput } from "@stowage/sdk";
import type { HostObjectStore } from "@stowage/sdk/host";
import type { Command } from "commander";
import { usageError } from "../exit.js";
import { globalOptions, withHost } from "../host-options.js";
import { formatBytes, formatDate, formatDuration, mibPerSecond, printJson, printLines, printTable, seconds } from "../output.js";
import { collect, parseDurationOption, parseInteger, parseKeyValues, parseRange, parseRetainUntil, parseRetentionMode } from "../parse.js";
import { progressEnabled, tap, transferProgress } from "../progress.js";
import { openSink, openSource } from "../sources.js";
import { addStoreOptions, openObjectStore, storeOptions, type RawStoreOptions } from "../store-options.js";

interface PutOptions extends RawStoreOptions {
  readonly contentType?: string;
  readonly meta?: readonly string[];
  readonly retainUntil?: string;
  readonly retentionMode: string;
  readonly legalHold?: boolean;
  readonly bypassGovernance?: boolean;
}

interface RmOptions extends RawStoreOptions {
  readonly bypassGovernance?: boolean;
}

interface RetainOptions extends RawStoreOptions {
  readonly until?: string;
  readonly mode: string;
  readonly remove?: boolean;
  readonly bypassGovernance?: boolean;
}

interface GetOptions extends RawStoreOptions {
  readonly range?: string;
}

interface LsOptions extends RawStoreOptions {
  readonly delimiter?: string;
  readonly pageSize?: string;
  readonly recursive?: boolean;
  readonly protection?: boolean;
}

interface UrlOptions extends RawStoreOptions {
  readonly method: string;
  readonly ttl: string;
  readonly hold?: boolean;
}

/** A protection as the JSON output shows it. */
function protectionJson(protection: ObjectProtection | undefined): Record<string, unknown> | undefined {
  if (protection === undefined) return undefined;
  const retention = protection.retention;
  return { ...(retention === undefined ? {} : { retention: { mode: retention.mode, retainUntil: retention.retainUntil.toISOString() } }), legalHold: protection.legalHold };
}

/** A protection in words, for the table outputs: `compliance until …, legal hold`, or `-`. */
function protectionText(protection: ObjectProtection | undefined): string {
  if (protection === undefined) return "-";
  const parts: string[] = [];
  if (protection.retention !== undefined) {
    const ended = protection.retention.retainUntil.getTime() <= Date.now() ? " (ended)" : "";
    parts.push(`${protection.retention.mode} until ${protection.retention.retainUntil.toISOString()}${ended}`);
  }
  if (protection.legalHold) parts.push("legal hold");
  return parts.length === 0 ? "-" : parts.join(", ");
}

/** An object's attributes as the JSON output shows them. */
function objectJson(info: ObjectInfo): Record<string, unknown> {
  return {
    key: info.key,
    size: info.size,
    etag: info.etag,
    lastModified: info.lastModified?.toISOString(),
    contentType: info.contentType,
    metadata: info.metadata,
    ...(info.protection === undefined ? {} : { protection: protectionJson(info.protection) }),
  };
}

/** The protection `put` asks for, from its options; undefined when none. */
function putProtection(options: PutOptions): ProtectionInput | undefined {
  const mode = parseRetentionMode(options.retentionMode);
  const retainUntil = options.retainUntil === undefined ? undefined : parseRetainUntil(options.retainUntil, "--retain-until");
  if (retainUntil === undefined && options.legalHold !== true) return undefined;
  return { ...(retainUntil === undefined ? {} : { retention: { mode, retainUntil } }), legalHold: options.legalHold === true };
}

/** The plugin's object protection, or a typed error that says the plugin has none. */
function objectLockOf(client: HostObjectStore): ObjectLock {
  if (client.objectLock !== undefined) return client.objectLock;
  throw new StowageError(Code.Unimplemented, `plugin ${client.descriptor.name} does not announce OBJECT_LOCK: its objects cannot be protected`, { reason: Reason.Unsupported });
}

async function put(bucket: string, key: string, file: string | undefined, options: PutOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const metadata = parseKeyValues(options.meta, "--meta");
  const protection = putProtection(options);
  const source = await openSource(file);
  // The source is closed however the upload ends, so an unread stdin cannot keep the process alive.
  const result = withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal, { createBuckets: true });
    const hash = createHash("sha256");
    let bytes = 0;
    const progress = transferProgress(`put ${key}`, source.size, progressEnabled(globals.json));
    const started = performance.now();
    try {
      const stored = await client.putObject(
        {
          bucket,
          key,
          body: tap((chunk) => {
            hash.update(chunk);
            bytes += chunk.byteLength;
            progress.advance(chunk.byteLength);
          })(source.body),
          size: source.size,
          contentType: options.contentType,
          metadata,
          protection,
          bypassGovernance: options.bypassGovernance,
        },
        { signal },
      );
      const ms = performance.now() - started;
      const sha256 = hash.digest("hex");
      if (stored.size !== bytes) throw new StowageError(Code.DataLoss, `sent ${bytes} bytes but the plugin stored ${stored.size}`);
      if (stored.sha256 !== undefined && Buffer.from(stored.sha256).toString("hex") !== sha256) {
        throw new StowageError(Code.DataLoss, "the plugin reported another SHA-256 than the bytes sent");
      }
      return { stored, sha256, ms };
    } finally {
      progress.stop();
    }
  });
  const { stored, sha256, ms } = await result.finally(() => source.body.destroy());
  if (globals.json) {
    const asked = protection === undefined ? {} : { protection: protectionJson({ retention: protection.retention, legalHold: protection.legalHold === true }) };
    printJson({ bucket, key, size: stored.size, etag: stored.etag, sha256, ...asked, seconds: seconds(ms), mibPerSecond: mibPerSecond(stored.size, ms) });
    return;
  }
  printLines(
    `uploaded ${source.name} to ${bucket}/${key}: ${formatBytes(stored.size)} in ${formatDuration(ms)} (${mibPerSecond(stored.size, ms)} MiB/s)`,
    `  etag ${stored.etag === "" ? "-" : stored.etag}  sha256 ${sha256}`,
    ...(protection === undefined ? [] : [`  protected: ${protectionText({ retention: protection.retention, legalHold: protection.legalHold === true })}`]),
  );
}

async function get(bucket: string, key: string, file: string | undefined, options: GetOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const range = options.range === undefined ? undefined : parseRange(options.range);
  const toStdout = file === undefined || file === "-";
  if (toStdout && globals.json) throw usageError("--json prints the result on stdout: give a file to write the object to");
  const sink = await openSink(file);
  try {
    const result = await withHost(globals, async (host, signal) => {
      const client = await openObjectStore(host, store, signal);
      const started = performance.now();
      const out = await client.getObject({ bucket, key, range }, { signal });
      const hash = createHash("sha256");
      let bytes = 0;
      // No bar when the bytes themselves go to the terminal.
      const bars = progressEnabled(globals.json) && !(sink.isStdout && process.stdout.isTTY);
      const progress = transferProgress(`get ${key}`, out.contentLength, bars);
      try {
        await pipeline(
          out.body,
          tap((chunk) => {
            hash.update(chunk);
            bytes += chunk.byteLength;
            progress.advance(chunk.byteLength);
          }),
          sink.stream,
          { signal, end: !sink.isStdout },
        );
      } finally {
        progress.stop();
      }
      if (bytes !== out.contentLength) throw new StowageError(Code.DataLoss, `received ${bytes} bytes, the plugin announced ${out.contentLength}`);
      return { out, bytes, sha256: hash.digest("hex"), ms: performance.now() - started };
    });
    await sink.commit();
    const { out, bytes, sha256, ms } = result;
    if (globals.json) {
      printJson({ bucket, key, file, offset: out.offset, bytes, sha256, object: objectJson(out.object), seconds: seconds(ms), mibPerSecond: mibPerSecond(bytes, ms) });
    } else if (!toStdout) {
      printLines(`downloaded ${bucket}/${key} to ${file}: ${formatBytes(bytes)} in ${formatDuration(ms)} (${mibPerSecond(bytes, ms)} MiB/s)`, `  sha256 ${sha256}`);
    }
  } catch (error) {
    await sink.discard();
    if ((error as NodeJS.ErrnoException).code === "EPIPE") return;
    throw error;
  }
}

async function ls(bucket: string, prefix: string | undefined, options: LsOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  if (options.recursive === true && options.delimiter !== undefined) throw usageError("--recursive and --delimiter exclude each other");
  const delimiter = options.recursive === true ? undefined : (options.delimiter ?? "/");
  const pageSize = options.pageSize === undefined ? undefined : parseInteger(options.pageSize, "--page-size", 1, 1000);
  const { objects, prefixes } = await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    const found: ObjectInfo[] = [];
    const common: string[] = [];
    for await (const page of client.listObjects({ bucket, prefix, delimiter, pageSize }, { signal })) {
      found.push(...page.objects);
      common.push(...page.commonPrefixes);
    }
    if (options.protection !== true) return { objects: found, prefixes: common };
    // Listings may leave protection out (contract 5.9.3): ask each object, one at a time.
    objectLockOf(client);
    const withProtection: ObjectInfo[] = [];
    for (const listed of found) {
      const head = listed.protection === undefined ? await client.headObject({ bucket, key: listed.key }, { signal }) : listed;
      withProtection.push({ ...listed, ...(head?.protection === undefined ? {} : { protection: head.protection }) });
    }
    return { objects: withProtection, prefixes: common };
  });
  if (globals.json) {
    printJson({ bucket, prefix: prefix ?? "", delimiter: delimiter ?? "", commonPrefixes: prefixes, objects: objects.map(objectJson) });
    return;
  }
  if (objects.length === 0 && prefixes.length === 0) return;
  if (options.protection === true || objects.some((o) => o.protection !== undefined)) {
    printTable(
      [{ title: "last modified" }, { title: "size", align: "right" }, { title: "protection" }, { title: "key" }],
      [...prefixes.map((p) => ["", "PRE", "", p]), ...objects.map((o) => [formatDate(o.lastModified), String(o.size), protectionText(o.protection), o.key])],
    );
    return;
  }
  printTable(
    [{ title: "last modified" }, { title: "size", align: "right" }, { title: "key" }],
    [...prefixes.map((p) => ["", "PRE", p]), ...objects.map((o) => [formatDate(o.lastModified), String(o.size), o.key])],
  );
}

async function stat(bucket: string, key: string, options: RawStoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const info = await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    return client.headObject({ bucket, key }, { signal });
  });
  if (info === undefined) throw new StowageError(Code.NotFound, `object ${JSON.stringify(key)} not found in bucket ${JSON.stringify(bucket)}`, { reason: Reason.ObjectNotFound });
  if (globals.json) {
    printJson({ bucket, ...objectJson(info) });
    return;
  }
  printLines(
    `${bucket}/${info.key}`,
    `  size          ${String(info.size)} (${formatBytes(info.size)})`,
    `  etag          ${info.etag === "" ? "-" : info.etag}`,
    `  last modified ${formatDate(info.lastModified)}`,
    `  content type  ${info.contentType === "" ? "-" : info.contentType}`,
    ...Object.entries(info.metadata).map(([name, value]) => `  meta          ${name}=${value}`),
    `  protection    ${protectionText(info.protection)}`,
  );
}

async function retain(bucket: string, key: string, options: RetainOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  if ((options.until === undefined) === (options.remove !== true)) throw usageError("give either --until <time> or --remove");
  const retention = options.until === undefined ? undefined : { mode: parseRetentionMode(options.mode), retainUntil: parseRetainUntil(options.until, "--until") };
  const protection = await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    return objectLockOf(client).setRetention({ bucket, key, retention, bypassGovernance: options.bypassGovernance }, { signal });
  });
  if (globals.json) printJson({ bucket, key, protection: protectionJson(protection) });
  else printLines(`${bucket}/${key}: ${protectionText(protection)}`);
}

async function hold(bucket: string, key: string, state: string, options: RawStoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  if (state !== "on" && state !== "off") throw usageError(`the hold state must be on or off, got ${JSON.stringify(state)}`);
  const protection = await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    return objectLockOf(client).setLegalHold({ bucket, key, legalHold: state === "on" }, { signal });
  });
  if (globals.json) printJson({ bucket, key, protection: protectionJson(protection) });
  else printLines(`${bucket}/${key}: ${protectionText(protection)}`);
}

async function bucketProtection(bucket: string, options: RawStoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const found = await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    return objectLockOf(client).getBucketProtection({ bucket }, { signal });
  });
  if (globals.json) {
    printJson({ bucket, ...found });
    return;
  }
  const period = found.defaultRetention;
  printLines(
    `${bucket}: ${found.lockable ? "lockable" : "not lockable"}${found.enforcedBy === "" ? "" : ` (${found.enforcedBy})`}`,
    `  default retention ${period === undefined ? "none" : `${period.mode}, ${formatDuration(period.periodSeconds * 1000)}`}`,
  );
}

async function rm(bucket: string, key: string, options: RmOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    await client.deleteObject({ bucket, key, bypassGovernance: options.bypassGovernance }, { signal });
  });
  if (globals.json) printJson({ bucket, key, deleted: true });
  else printLines(`deleted ${bucket}/${key}`);
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname;
    return host === "localhost" || host === "[::1]" || host.startsWith("127.");
  } catch {
    return false;
  }
}

async function url(bucket: string, key: string, options: UrlOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const method = options.method.toUpperCase();
  if (method !== "GET" && method !== "PUT") throw usageError(`--method must be GET or PUT, got ${JSON.stringify(options.method)}`);
  const ttlMs = parseDurationOption(options.ttl, "--ttl", 1000);
  if (ttlMs % 1000 !== 0) throw usageError(`--ttl must be whole seconds, got ${JSON.stringify(options.ttl)}`);
  const ttlSeconds = ttlMs / 1000;
  await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal, { createBuckets: method === "PUT" });
    const signed = await client.createSignedUrl({ bucket, key, method, ttlSeconds }, { signal });
    if (globals.json) printJson({ bucket, key, method, url: signed.url, expiresAt: signed.expiresAt.toISOString() });
    else printLines(signed.url);
    const served = isLoopback(signed.url);
    if (options.hold !== true) {
      if (served && !globals.json) {
        process.stderr.write("note: this URL is served by the plugin process and stops working when stowage exits; add --hold to keep serving it\n");
      }
      return;
    }
    const wait = signed.expiresAt.getTime() - Date.now();
    if (!globals.json) process.stderr.write(`serving until ${signed.expiresAt.toISOString()} (Ctrl-C to stop)\n`);
    try {
      await sleep(Math.max(0, wait), undefined, { signal });
    } catch {
      // Interrupted: stopping early is the normal end of --hold.
    }
  });
}

/** Registers `stowage object …` on `program`. */
export function registerObjectCommands(program: Command): void {
  const object = program.command("object").description("store, fetch, list, delete and sign objects in an ObjectStore plugin");

  addStoreOptions(
    object
      .command("put")
      .description("upload a file (or stdin) as an object")
      .argument("<bucket>", "bucket")
      .argument("<key>", "object key")
      .argument("[file]", "file to upload; stdin when absent or -")
      .option("--content-type <type>", "MIME type of the object")
      .option("--meta <key=value>", "user metadata (repeatable)", collect)
      .option("--retain-until <time>", "protect the object until this time (2027-01-31T00:00:00Z) or for this long (30d, 720h)")
      .option("--retention-mode <mode>", "governance (a privileged caller may bypass it) or compliance (nobody may)", "governance")
      .option("--legal-hold", "place a legal hold: protected until released with `stowage object hold … off`")
      .option("--bypass-governance", "replace an object under governance retention (needs the store's bypass permission)"),
  ).action(put);

  addStoreOptions(
    object
      .command("get")
      .description("download an object to a file (or stdout)")
      .argument("<bucket>", "bucket")
      .argument("<key>", "object key")
      .argument("[file]", "file to write; stdout when absent or -")
      .option("--range <first-last>", "only bytes FIRST to LAST (included), or FIRST- to the end"),
  ).action(get);

  addStoreOptions(
    object
      .command("ls")
      .description("list objects, rolled up at / unless --recursive")
      .argument("<bucket>", "bucket")
      .argument("[prefix]", "only keys starting with this prefix")
      .option("--delimiter <string>", "roll keys up into common prefixes at this string (default /)")
      .option("--recursive", "list every key under the prefix, no roll-up")
      .option("--page-size <n>", "entries per page asked from the plugin (1-1000)")
      .option("--protection", "show every object's retention and legal hold (one call per object)"),
  ).action(ls);

  addStoreOptions(object.command("stat").description("show an object's attributes and protection").argument("<bucket>", "bucket").argument("<key>", "object key")).action(
    stat,
  );

  addStoreOptions(
    object
      .command("rm")
      .description("delete an object (a missing object is not an error; a protected one is refused)")
      .argument("<bucket>", "bucket")
      .argument("<key>", "object key")
      .option("--bypass-governance", "delete an object under governance retention (needs the store's bypass permission)"),
  ).action(rm);

  addStoreOptions(
    object
      .command("retain")
      .description("set, extend or (governance, with --bypass-governance) shorten or remove an object's retention")
      .argument("<bucket>", "bucket")
      .argument("<key>", "object key")
      .option("--until <time>", "retain until this time (2027-01-31T00:00:00Z) or for this long from now (30d, 720h)")
      .option("--mode <mode>", "governance or compliance", "governance")
      .option("--remove", "remove the retention (governance only, with --bypass-governance)")
      .option("--bypass-governance", "allow shortening, removing or changing a governance retention"),
  ).action(retain);

  addStoreOptions(
    object.command("hold").description("place or release an object's legal hold").argument("<bucket>", "bucket").argument("<key>", "object key").argument("<state>", "on or off"),
  ).action(hold);

  addStoreOptions(
    object.command("protection").description("show whether a bucket can hold protected objects, and its default retention").argument("<bucket>", "bucket"),
  ).action(bucketProtection);

  addStoreOptions(
    object
      .command("url")
      .description("create a pre-signed URL for a plain HTTP client")
      .argument("<bucket>", "bucket")
      .argument("<key>", "object key")
      .option("--method <method>", "GET or PUT", "GET")
      .option("--ttl <duration>", "validity: a duration (90s, 1h, 24h) or seconds", "1h")
      .option("--hold", "keep the plugin running (and the URL working) until it expires or Ctrl-C"),
  ).action(url);
}
