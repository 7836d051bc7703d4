/**
 * Where object bodies come from and go to: files, stdin and stdout, with the size when it is
 * known and crash-safe writes (a temporary file renamed into place on success).
 *
 * @packageDocumentation
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, fstatSync, type WriteStream } from "node:fs";
import { rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { usageError } from "./exit.js";

/** A body to upload. */
export interface Source {
  /** The bytes. */
  readonly body: Readable;
  /** Its size, when known (regular files, including stdin redirected from one). */
  readonly size: number | undefined;
  /** `"stdin"` or the file's path, for messages. */
  readonly name: string;
}

/** Opens `file` for reading, or stdin when it is absent or `-`. Refuses a terminal as stdin. */
export async function openSource(file: string | undefined): Promise<Source> {
  if (file === undefined || file === "-") {
    if (process.stdin.isTTY) throw usageError("no file given and stdin is a terminal: give a file or pipe the data in");
    let size: number | undefined;
    try {
      const info = fstatSync(0);
      size = info.isFile() ? info.size : undefined;
    } catch {
      size = undefined;
    }
    return { body: process.stdin, size, name: "stdin" };
  }
  const info = await stat(file).catch(() => undefined);
  if (info === undefined) throw usageError(`cannot read ${file}: no such file`);
  if (!info.isFile()) throw usageError(`cannot read ${file}: not a regular file`);
  return { body: createReadStream(file, { highWaterMark: 1024 * 1024 }), size: info.size, name: file };
}

/** A file being written: bytes go to a temporary sibling that {@link Sink.commit} renames into place. */
export interface Sink {
  /** The stream to write to. */
  readonly stream: WriteStream | NodeJS.WriteStream;
  /** Whether the stream is stdout (which must not be ended). */
  readonly isStdout: boolean;
  /** Moves the finished file into place. */
  commit(): Promise<void>;
  /** Removes the unfinished file. */
  discard(): Promise<void>;
}

/** Opens `file` for writing (via a temporary sibling), or stdout when it is absent or `-`. */
export async function openSink(file: string | undefined): Promise<Sink> {
  if (file === undefined || file === "-") {
    return { stream: process.stdout, isStdout: true, commit: async () => undefined, discard: async () => undefined };
  }
  const dir = dirname(file);
  const info = await stat(dir).catch(() => undefined);
  if (info?.isDirectory() !== true) throw usageError(`cannot write ${file}: ${dir} is not a directory`);
  const existing = await stat(file).catch(() => undefined);
  if (existing?.isDirectory() === true) throw usageError(`cannot write ${file}: it is a directory`);
  const temp = join(dir, `.${basename(file)}.${randomBytes(4).toString("hex")}.partial`);
  const stream = createWriteStream(temp, { flags: "wx" });
  return {
    stream,
    isStdout: false,
    commit: () => rename(temp, file),
    discard: () => unlink(temp).catch(() => undefined),
  };
}
