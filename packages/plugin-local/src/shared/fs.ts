/**
 * File-system helpers shared by both stores: error classification, durable directory updates and
 * complete writes.
 *
 * @packageDocumentation
 */
import { open, type FileHandle } from "node:fs/promises";
import { Code, Reason, StowageError } from "@stowage/sdk";

/** The `code` of a Node system error (`ENOENT`, `EEXIST`...), or `undefined`. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code: unknown = error.code;
  return typeof code === "string" ? code : undefined;
}

/** Whether `error` says a path (or one of its parent directories) does not exist. */
export function isNotFound(error: unknown): boolean {
  const code = errnoCode(error);
  return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * Flushes a directory's entries to stable storage, so that a rename or unlink inside it survives a
 * crash. File systems that cannot fsync a directory (some network and Windows file systems) are
 * tolerated: there is nothing better to do on them.
 */
export async function fsyncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    await handle.sync();
  } catch (error) {
    const code = errnoCode(error);
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "EBADF" && code !== "ENOTSUP") throw error;
  } finally {
    await handle?.close();
  }
}

/** Writes all of `data` at `position` of an open file, looping over short writes. */
export async function writeFully(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const { bytesWritten } = await file.write(data, offset, data.length - offset, position + offset);
    offset += bytesWritten;
  }
}

/**
 * Converts a failure of a file-system call into a {@link StowageError} whose code tells the caller
 * what to do: a full disk is `RESOURCE_EXHAUSTED`, missing permissions `PERMISSION_DENIED`,
 * exhausted descriptors or a busy file `UNAVAILABLE` (retry later). StowageErrors pass through;
 * anything else goes through `StowageError.from`.
 */
export function toStowageError(error: unknown): StowageError {
  if (error instanceof StowageError) return error;
  const message = error instanceof Error ? error.message : String(error);
  switch (errnoCode(error)) {
    case "ENOSPC":
    case "EDQUOT":
      return new StowageError(Code.ResourceExhausted, `out of disk space: ${message}`, { cause: error });
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new StowageError(Code.PermissionDenied, `the file system refused access: ${message}`, { reason: Reason.AccessDenied, cause: error });
    case "EMFILE":
    case "ENFILE":
    case "EBUSY":
    case "EAGAIN":
      return new StowageError(Code.Unavailable, `the file system is busy: ${message}`, { reason: Reason.BackendUnavailable, cause: error });
    default:
      return StowageError.from(error);
  }
}
