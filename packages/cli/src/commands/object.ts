/**
 * `stowage object put|get|ls|rm|url`: one ObjectStore call each, against any ObjectStore plugin.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, StowageError, type ObjectInfo } from "@stowage/sdk";
import type { Command } from "commander";
import { usageError } from "../exit.js";
import { globalOptions, withHost } from "../host-options.js";
import { formatBytes, formatDate, formatDuration, mibPerSecond, printJson, printLines, printTable, seconds } from "../output.js";
import { collect, parseDurationOption, parseInteger, parseKeyValues, parseRange } from "../parse.js";
import { progressEnabled, tap, transferProgress } from "../progress.js";
import { openSink, openSource } from "../sources.js";
import { addStoreOptions, openObjectStore, storeOptions, type RawStoreOptions } from "../store-options.js";

interface PutOptions extends RawStoreOptions {
  readonly contentType?: string;
  readonly meta?: readonly string[];
}

interface GetOptions extends RawStoreOptions {
  readonly range?: string;
}

interface LsOptions extends RawStoreOptions {
  readonly delimiter?: string;
  readonly pageSize?: string;
  readonly recursive?: boolean;
}

interface UrlOptions extends RawStoreOptions {
  readonly method: string;
  readonly ttl: string;
  readonly hold?: boolean;
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
  };
}

async function put(bucket: string, key: string, file: string | undefined, options: PutOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const metadata = parseKeyValues(options.meta, "--meta");
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
    printJson({ bucket, key, size: stored.size, etag: stored.etag, sha256, seconds: seconds(ms), mibPerSecond: mibPerSecond(stored.size, ms) });
    return;
  }
  printLines(
    `uploaded ${source.name} to ${bucket}/${key}: ${formatBytes(stored.size)} in ${formatDuration(ms)} (${mibPerSecond(stored.size, ms)} MiB/s)`,
    `  etag ${stored.etag === "" ? "-" : stored.etag}  sha256 ${sha256}`,
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
    return { objects: found, prefixes: common };
  });
  if (globals.json) {
    printJson({ bucket, prefix: prefix ?? "", delimiter: delimiter ?? "", commonPrefixes: prefixes, objects: objects.map(objectJson) });
    return;
  }
  if (objects.length === 0 && prefixes.length === 0) return;
  printTable(
    [{ title: "last modified" }, { title: "size", align: "right" }, { title: "key" }],
    [...prefixes.map((p) => ["", "PRE", p]), ...objects.map((o) => [formatDate(o.lastModified), String(o.size), o.key])],
  );
}

async function rm(bucket: string, key: string, options: RawStoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  await withHost(globals, async (host, signal) => {
    const client = await openObjectStore(host, store, signal);
    await client.deleteObject({ bucket, key }, { signal });
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
      .option("--meta <key=value>", "user metadata (repeatable)", collect),
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
      .option("--page-size <n>", "entries per page asked from the plugin (1-1000)"),
  ).action(ls);

  addStoreOptions(
    object.command("rm").description("delete an object (a missing object is not an error)").argument("<bucket>", "bucket").argument("<key>", "object key"),
  ).action(rm);

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
