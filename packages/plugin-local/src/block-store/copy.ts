/**
 * Copying volume data: a reflink (copy-on-write clone) when the file system offers one, otherwise
 * a streamed copy that keeps holes, reports progress and can be cancelled.
 *
 * @packageDocumentation
 */
import { constants } from "node:fs";
import { copyFile, open, rm } from "node:fs/promises";
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
  /** Stops the copy; the destination is removed. */
  readonly signal?: AbortSignal | undefined;
  /** Called after each step with the bytes copied so far and the total. */
  readonly onProgress?: ((copied: number, total: number) => void) | undefined;
}

/** How the data was copied. */
export type CopyMethod = "reflink" | "stream";

/**
 * Copies the file `source` to `destination` (created or replaced) and flushes it to stable
 * storage. First tries a reflink, which shares blocks and is instant on Btrfs, XFS, APFS and the
 * like; falls back to reading and writing {@link COPY_CHUNK_BYTES} at a time, skipping all-zero
 * chunks so that sparse volumes stay sparse. On failure or cancellation the destination is
 * removed.
 */
export async function copyImage(source: string, destination: string, options: CopyImageOptions = {}): Promise<CopyMethod> {
  const { signal, delayPerMiBMs = 0 } = options;
  throwIfAborted(signal);
  try {
    if (delayPerMiBMs <= 0 && (await tryReflink(source, destination))) {
      throwIfAborted(signal);
      return "reflink";
    }
    await streamCopy(source, destination, delayPerMiBMs, signal, options.onProgress);
    return "stream";
  } catch (error) {
    await rm(destination, { force: true });
    throw error;
  }
}

/** Clones `source` to `destination`; `false` when the file system cannot. */
async function tryReflink(source: string, destination: string): Promise<boolean> {
  try {
    await copyFile(source, destination, constants.COPYFILE_FICLONE_FORCE);
  } catch {
    // ENOTSUP, EXDEV, EINVAL, ENOSYS...: no reflinks here. Real failures (a missing source, a full
    // disk) show up again in the streamed copy with a clearer context.
    return false;
  }
  const file = await open(destination, "r+");
  try {
    await file.sync();
  } finally {
    await file.close();
  }
  return true;
}

async function streamCopy(
  source: string,
  destination: string,
  delayPerMiBMs: number,
  signal: AbortSignal | undefined,
  onProgress: ((copied: number, total: number) => void) | undefined,
): Promise<void> {
  const input = await open(source, "r");
  try {
    const output = await open(destination, "w", 0o644);
    try {
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
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}

async function delay(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch (error) {
    if (signal?.aborted === true) throw abortError(signal);
    throw error;
  }
}
