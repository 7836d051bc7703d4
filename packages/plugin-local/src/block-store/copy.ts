/**
 * Copying volume data: a reflink (copy-on-write clone) when the file system offers one, otherwise
 * a streamed copy that keeps holes, reports progress and can be cancelled.
 *
 * @packageDocumentation
 */
import { constants } from "node:fs";
import { copyFile, type FileHandle } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { abortError, throwIfAborted } from "@stowage/sdk/plugin";
import { writeFully } from "../shared/fs.js";

/** Bytes copied per step of a streamed copy; also the unit of the artificial delay. */
export const COPY_CHUNK_BYTES = 1024 * 1024;
const ZEROES = Buffer.alloc(COPY_CHUNK_BYTES);

/** Options of {@link copyImage}. */
export interface CopyImageOptions {
  /** Artificial delay per MiB copied, in milliseconds; a positive value forces a streamed copy. */
  readonly delayPerMiBMs?: number | undefined;
  /** Stops the copy. */
  readonly signal?: AbortSignal | undefined;
  /** Called after each step with the bytes copied so far and the total. */
  readonly onProgress?: ((copied: number, total: number) => void) | undefined;
  /**
   * Paths that reach the two open files themselves (`/proc/self/fd/<fd>`), for the reflink,
   * which Node only offers on paths; without them no reflink is tried.
   */
  readonly descriptorPaths?: { readonly source: string; readonly destination: string } | undefined;
  /** Mode of the destination, set again after a reflink (which copies the source's). */
  readonly mode?: number | undefined;
}

/** How the data was copied. */
export type CopyMethod = "reflink" | "stream";

/**
 * Copies the open file `source` into the open, empty file `destination` and flushes it to stable
 * storage. First tries a reflink, which shares blocks and is instant on Btrfs, XFS and the like;
 * falls back to reading and writing {@link COPY_CHUNK_BYTES} at a time, skipping all-zero chunks
 * so that sparse volumes stay sparse. On failure or cancellation the destination holds a part:
 * the caller discards it.
 */
export async function copyImage(source: FileHandle, destination: FileHandle, options: CopyImageOptions = {}): Promise<CopyMethod> {
  const { signal, delayPerMiBMs = 0, descriptorPaths } = options;
  throwIfAborted(signal);
  if (delayPerMiBMs <= 0 && descriptorPaths !== undefined && (await tryReflink(descriptorPaths.source, descriptorPaths.destination))) {
    if (options.mode !== undefined) await destination.chmod(options.mode);
    await destination.sync();
    throwIfAborted(signal);
    return "reflink";
  }
  await streamCopy(source, destination, delayPerMiBMs, signal, options.onProgress);
  return "stream";
}

/** Clones `source` to `destination`; `false` when the file system cannot. */
async function tryReflink(source: string, destination: string): Promise<boolean> {
  try {
    await copyFile(source, destination, constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    // ENOTSUP, EXDEV, EINVAL, ENOSYS...: no reflinks here. Real failures (a full disk) show up
    // again in the streamed copy with a clearer context.
    return false;
  }
}

async function streamCopy(
  input: FileHandle,
  output: FileHandle,
  delayPerMiBMs: number,
  signal: AbortSignal | undefined,
  onProgress: ((copied: number, total: number) => void) | undefined,
): Promise<void> {
  const total = (await input.stat()).size;
  const buffer = Buffer.allocUnsafe(COPY_CHUNK_BYTES);
  let position = 0;
  for (;;) {
    throwIfAborted(signal);
    const { bytesRead } = await input.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    const chunk = buffer.subarray(0, bytesRead);
    // An all-zero chunk is left as a hole; the final truncate gives the file its full size.
    if (!chunk.equals(ZEROES.subarray(0, bytesRead))) {
      await writeFully(output, chunk, position);
    }
    position += bytesRead;
    onProgress?.(position, total);
    if (delayPerMiBMs > 0) await delay((delayPerMiBMs * bytesRead) / COPY_CHUNK_BYTES, signal);
  }
  await output.truncate(position);
  await output.sync();
}

async function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted === true) throw abortError(signal);
    throw error;
  }
}
