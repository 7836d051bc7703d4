/**
 * Confinement: every file-system call of plugin-local goes through a {@link ConfinedRoot}, which
 * never reads, writes, creates, renames or removes anything outside the configured root directory,
 * whatever symbolic links, hard links or mount points exist inside it.
 *
 * ## How
 *
 * Node has no `openat()`, but on Linux `/proc/self/fd/<fd>/<name>` names `<name>` inside the
 * directory that descriptor `<fd>` has open, without resolving that directory's path again, and
 * `/proc/self/fd/<fd>` tells the path and `/proc/self/fdinfo/<fd>` the mount of what a descriptor
 * has open. So:
 *
 * - At `init` the configured root is resolved once (it may itself be a link set up by the
 *   operator) and opened; the descriptor is kept.
 * - A directory or file below the root is opened by its full path (`O_NOFOLLOW`, and
 *   `O_DIRECTORY` for a directory) and then *verified* before anything else is done with it: the
 *   path the kernel reports for the descriptor must be exactly the expected one (so no link was
 *   followed on the way) and its mount ID the root's (so no mount point was crossed). Nothing is
 *   read, written or created through a descriptor that fails this check.
 * - When the full-path open fails or does not verify (something missing, a link, a mount, a path
 *   too long), the path is walked again one component at a time from the root's descriptor, each
 *   directory opened through `/proc/self/fd/<parent>/<name>` with `O_DIRECTORY | O_NOFOLLOW` and
 *   checked likewise, creating missing directories where asked: this names the offending
 *   component in the error.
 * - Every change (create, mkdir, rename, link, unlink, rmdir) is made on
 *   `/proc/self/fd/<dir>/<name>` of a verified directory: it acts in that very directory even if a
 *   component of its path is swapped for a link meanwhile. Files are created with `O_EXCL` and
 *   `O_NOFOLLOW`; files opened for reading must be regular, on the root's mount and have a single
 *   link (a hard link could name a file outside the root).
 *
 * Anything refused fails with `PERMISSION_DENIED`/`UNSAFE_PATH`, naming the offending component
 * (its absolute path) in the message and in the metadata key `path`.
 *
 * ## What holds, and what does not
 *
 * - With `/proc` (Linux), a link swapped in between a check and a use cannot make an operation act
 *   outside the root: every use goes through a descriptor that was checked, never through a path
 *   resolved again. Only directories are opened by a full path: one that runs into a planted link
 *   may open (never read, list or change) a directory outside the root before the check closes it
 *   again. Files are only ever opened or created through a verified directory's descriptor, so no
 *   file outside the root is opened, not even a device whose open alone would act; `O_NONBLOCK`
 *   keeps a FIFO planted inside the root from blocking an open.
 * - Where `/proc/self/fd` is missing (other systems), each component is checked with `lstat`
 *   before a path-based call. That fallback is racy: a component swapped for a link between the
 *   check and the call is followed. It also sees other file systems (by device number) but not
 *   bind mounts of the same file system.
 * - Neither mode can stop a process that can write both inside the root and outside it on the
 *   same file system from moving a directory out of the root while an operation holds it open;
 *   such a process can already write outside the root itself.
 *
 * Descriptors: a walk holds at most two directory descriptors at a time (plus the root's), and
 * every one is closed when its operation ends; a descriptor is never closed while a call uses it.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import {
  closeSync,
  constants,
  fchmod,
  fstat,
  fsync,
  open as openCallback,
  openSync,
  readFileSync,
  readSync,
  readlinkSync,
  statSync,
  type Dirent,
  type Stats,
} from "node:fs";
import { chmod, link, lstat, mkdir, open, readdir, realpath, rename, rmdir, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { errnoCode, fsyncDirectory } from "./fs.js";

const openDescriptor = promisify(openCallback);
const fstatDescriptor = promisify(fstat);
const fsyncDescriptor = promisify(fsync);
const fchmodDescriptor = promisify(fchmod);

const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const O_DIRECTORY = constants.O_DIRECTORY ?? 0;
// A FIFO planted where a file is expected must not block the open.
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;
const DIRECTORY_FLAGS = constants.O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const UPDATE_FLAGS = constants.O_RDWR | O_NOFOLLOW | O_NONBLOCK;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;

/** How a root confines its calls: see the module description. */
export type ConfinementMode =
  /** Verified descriptors and descriptor-relative paths through `/proc/self/fd` (Linux): race-free. */
  | "proc-fd"
  /** `lstat` of each component before path-based calls: racy, used where `/proc` is missing. */
  | "lstat";

/** Options of {@link ConfinedRoot.open}. */
export interface ConfinedRootOptions {
  /** Force a mode; by default `proc-fd` when `/proc/self/fd` works, else `lstat`. */
  readonly mode?: ConfinementMode | undefined;
}

/** Options of {@link Directory.child} and {@link Directory.walk}. */
export interface ChildOptions {
  /** Create missing directories with this mode (exactly, whatever the umask). */
  readonly create?: number | undefined;
  /** Flush the parent after creating a directory in it, so the new entry survives a crash. */
  readonly sync?: boolean | undefined;
}

/** Options of {@link Directory.openFile} and {@link Directory.openFileAt}. */
export interface OpenFileOptions {
  /** Open for reading and writing (in place, never creating or truncating) instead of reading only. */
  readonly update?: boolean | undefined;
}

/** A file opened for reading, with what `fstat` said about it. */
export interface OpenedFile {
  /** The open file. */
  readonly handle: FileHandle;
  /** Its status (a regular file with one link). */
  readonly stats: Stats;
}

/** The `UNSAFE_PATH` error for a component (`path` is its absolute path). */
export function unsafePath(path: string, what: string): StowageError {
  return new StowageError(
    Code.PermissionDenied,
    `${path} is ${what}; stowage.io/local never follows links or crosses mount points inside its root: remove it or move it out of the root`,
    { reason: Reason.UnsafePath, metadata: { path } },
  );
}

/** Holds what `/proc/self/fdinfo/<fd>` says (a few lines). */
const fdinfoBuffer = Buffer.allocUnsafe(1024);

/**
 * The mount ID of an open descriptor, from `/proc/self/fdinfo`; `undefined` when unavailable. A
 * synchronous read of procfs, which lives in memory and never waits for a disk: an open, a read
 * and a close (no `fstat`, unlike `readFileSync`), about 10 µs on an idle machine.
 */
function mountIdOf(fd: number): string | undefined {
  let info: number;
  try {
    info = openSync(`/proc/self/fdinfo/${String(fd)}`, "r");
  } catch {
    return undefined;
  }
  try {
    const length = readSync(info, fdinfoBuffer, 0, fdinfoBuffer.length, 0);
    return /^mnt_id:\s*(\d+)$/m.exec(fdinfoBuffer.toString("latin1", 0, length))?.[1];
  } catch {
    return undefined;
  } finally {
    closeSync(info);
  }
}

/** This process's umask, from `/proc/self/status`; `undefined` when unavailable. */
function currentUmask(): number | undefined {
  try {
    const match = /^Umask:\s*([0-7]+)$/m.exec(readFileSync("/proc/self/status", "latin1"));
    return match?.[1] === undefined ? undefined : Number.parseInt(match[1], 8);
  } catch {
    return undefined;
  }
}

/** Whether `/proc/self/fd/<fd>` reaches the directory open as `fd`. */
function procFdWorks(fd: number, ino: number): boolean {
  try {
    return statSync(`/proc/self/fd/${String(fd)}`).ino === ino;
  } catch {
    return false;
  }
}

function checkName(name: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new StowageError(Code.Internal, `bug: ${JSON.stringify(name)} is not a single path component`);
  }
}

/**
 * The root directory of a store, held open. Every operation starts from {@link acquire}, which
 * returns a {@link Directory} for the root; see the module description.
 */
export class ConfinedRoot {
  /** The root's canonical path (links in the configured path resolved once). */
  readonly path: string;
  /** How calls are confined. */
  readonly mode: ConfinementMode;
  readonly #fd: number;
  readonly #mountId: string | undefined;
  readonly #device: number;
  readonly #umask: number | undefined;
  #users = 0;
  #retired = false;

  private constructor(path: string, fd: number, mode: ConfinementMode, device: number) {
    this.path = path;
    this.#fd = fd;
    this.mode = mode;
    this.#mountId = mode === "proc-fd" ? mountIdOf(fd) : undefined;
    this.#device = device;
    this.#umask = currentUmask();
  }

  /**
   * Resolves `path` (links included, once) and opens it. Fails with the system error when it does
   * not exist or is not a directory.
   */
  static async open(path: string, options: ConfinedRootOptions = {}): Promise<ConfinedRoot> {
    const real = await realpath(path);
    const fd = await openDescriptor(real, DIRECTORY_FLAGS);
    try {
      const stats = await fstatDescriptor(fd);
      return new ConfinedRoot(real, fd, options.mode ?? (procFdWorks(fd, stats.ino) ? "proc-fd" : "lstat"), stats.dev);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** The root as a {@link Directory}; close it when the operation ends. */
  acquire(): Directory {
    if (this.#retired) throw new StowageError(Code.Internal, "bug: a retired root was used");
    this.#users++;
    return new Directory(this, [], this.mode === "proc-fd" ? this.#fd : undefined, false, () => this.#release());
  }

  /** Closes the root's descriptor once every operation that uses it has ended. */
  retire(): void {
    if (this.#retired) return;
    this.#retired = true;
    if (this.#users === 0) closeSync(this.#fd);
  }

  #release(): void {
    this.#users--;
    if (this.#retired && this.#users === 0) closeSync(this.#fd);
  }

  /** Absolute path of `names` below the root (for messages, and for full-path opens). */
  pathOf(names: readonly string[]): string {
    return join(this.path, ...names);
  }

  /**
   * A path that reaches an open file itself, for calls that only take paths (`copyFile`), or
   * `undefined` in `lstat` mode.
   */
  descriptorPath(handle: FileHandle): string | undefined {
    return this.mode === "proc-fd" ? `/proc/self/fd/${String(handle.fd)}` : undefined;
  }

  /** Whether creating with `mode` needs a chmod afterwards (the umask removes some of its bits). */
  needsChmod(mode: number): boolean {
    return this.#umask === undefined || (mode & this.#umask) !== 0;
  }

  /** Refuses a descriptor that lies on another mount than the root. */
  async checkMount(fd: number, names: readonly string[]): Promise<void> {
    const id = this.#mountId === undefined ? undefined : mountIdOf(fd);
    if (id !== undefined ? id !== this.#mountId : (await fstatDescriptor(fd)).dev !== this.#device) {
      throw unsafePath(this.pathOf(names), "on another mount than the root (a mount point, or inside one)");
    }
  }

  /**
   * Whether a descriptor opened by the full path of `names` holds exactly that path on the root's
   * mount (no link followed, no mount point crossed on the way).
   */
  verify(fd: number, names: readonly string[]): boolean {
    try {
      if (readlinkSync(`/proc/self/fd/${String(fd)}`) !== this.pathOf(names)) return false;
      const id = this.#mountId === undefined ? undefined : mountIdOf(fd);
      return id !== undefined ? id === this.#mountId : statSync(`/proc/self/fd/${String(fd)}`).dev === this.#device;
    } catch {
      return false;
    }
  }

  /** Refuses a status that lies on another device than the root (the `lstat` mode's check). */
  checkDevice(stats: Stats, names: readonly string[]): void {
    if (stats.dev !== this.#device) throw unsafePath(this.pathOf(names), "on another file system than the root (a mount point)");
  }
}

/**
 * A directory inside a {@link ConfinedRoot} (or the root itself), checked and held open. Close it
 * exactly once; nothing may use it afterwards.
 */
export class Directory {
  /** Its path below the root, one name per level (empty for the root). */
  readonly names: readonly string[];
  readonly #root: ConfinedRoot;
  /** The open descriptor (`proc-fd` mode); `undefined` in `lstat` mode. */
  readonly #fd: number | undefined;
  /** Whether {@link close} closes `#fd` (views of another directory's descriptor do not). */
  readonly #owned: boolean;
  readonly #onClose: (() => void) | undefined;
  #closed = false;

  /** @internal Made by {@link ConfinedRoot.acquire} and by the walks of {@link Directory}. */
  constructor(root: ConfinedRoot, names: readonly string[], fd: number | undefined, owned: boolean, onClose?: () => void) {
    this.#root = root;
    this.names = names;
    this.#fd = fd;
    this.#owned = owned;
    this.#onClose = onClose;
  }

  /** Absolute path of the directory (for messages and logs). */
  get path(): string {
    return this.#root.pathOf(this.names);
  }

  /** Absolute path of an entry (for messages and logs). */
  pathOf(name: string): string {
    return this.#root.pathOf([...this.names, name]);
  }

  /** The path through which system calls reach the directory itself. */
  get #self(): string {
    if (this.#closed) throw new StowageError(Code.Internal, `bug: directory ${this.path} used after close`);
    return this.#fd === undefined ? this.path : `/proc/self/fd/${String(this.#fd)}`;
  }

  /** The path through which system calls reach `name` inside this directory (and no other). */
  #entry(name: string): string {
    checkName(name);
    return `${this.#self}/${name}`;
  }

  /** Releases the directory. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#owned && this.#fd !== undefined) closeSync(this.#fd);
    this.#onClose?.();
  }

  /**
   * Opens the sub-directory `name`, creating it when asked to. Returns `undefined` when it does
   * not exist (or is not a directory) and is not to be created. A link or a mount point fails with
   * `UNSAFE_PATH`; a non-directory in the way of a creation with `FAILED_PRECONDITION`.
   */
  async child(name: string, options: ChildOptions = {}): Promise<Directory | undefined> {
    return this.#fd === undefined ? this.#childByPath(name, options) : this.#childByDescriptor(name, options);
  }

  /**
   * Opens the descendant reached by `names` (one name per level), like {@link child} level by
   * level: first with one verified full-path open, else walking. Returns `undefined` when a level
   * is missing and not to be created. With no names, returns a view of this directory that must
   * not outlive it.
   */
  async walk(names: readonly string[], options: ChildOptions = {}): Promise<Directory | undefined> {
    if (names.length === 0) return new Directory(this.#root, this.names, this.#fd, false);
    const fast = await this.tryWalk(names);
    if (fast !== undefined) return fast;
    // The level opened last (this directory's own descriptor is not ours to close).
    let opened: Directory | undefined;
    try {
      for (const name of names) {
        const next = await (opened ?? this).child(name, options);
        opened?.close();
        opened = next;
        if (next === undefined) return undefined;
      }
    } catch (error) {
      opened?.close();
      throw error;
    }
    return opened;
  }

  /**
   * Opens the existing descendant reached by `names` with one verified full-path open; returns
   * `undefined` when that does not work out (something missing, a link, a mount point, a path too
   * long, `lstat` mode), without saying why: the caller then uses {@link walk}, which tells.
   */
  async tryWalk(names: readonly string[]): Promise<Directory | undefined> {
    if (this.#fd === undefined || names.length === 0) return undefined;
    // Each name is one plain component: a ".." would be resolved (and verified) outside the walk.
    for (const name of names) checkName(name);
    const path = [...this.names, ...names];
    let fd: number;
    try {
      fd = await openDescriptor(this.#root.pathOf(path), DIRECTORY_FLAGS);
    } catch {
      return undefined;
    }
    if (this.#root.verify(fd, path)) return new Directory(this.#root, path, fd, true);
    closeSync(fd);
    return undefined;
  }

  /**
   * Opens the file reached by `names` for reading, like {@link openFile} in the directory of all
   * names but the last, which is reached like {@link walk}. Only directories are ever opened by a
   * full path (and verified); the file itself is opened through its verified parent's descriptor,
   * so no file outside the root is ever opened, not even briefly. `undefined` when there is no such
   * regular file.
   */
  async openFileAt(names: readonly string[], options: OpenFileOptions = {}): Promise<OpenedFile | undefined> {
    for (const name of names) checkName(name);
    const parent = await this.walk(names.slice(0, -1));
    if (parent === undefined) return undefined;
    try {
      return await parent.openFile(names.at(-1) ?? "", options);
    } finally {
      parent.close();
    }
  }

  /**
   * Opens the file `name` for reading, refusing links, files on another mount and files with
   * more than one link (`UNSAFE_PATH`). Returns `undefined` when there is no regular file of that
   * name (nothing, a directory, a FIFO...). With `update`, the file is opened for reading and
   * writing in place, with the same checks.
   */
  async openFile(name: string, options: OpenFileOptions = {}): Promise<OpenedFile | undefined> {
    const names = [...this.names, name];
    if (this.#fd === undefined && !(await this.#checkFileByPath(name, names))) return undefined;
    let handle: FileHandle;
    try {
      handle = await open(this.#entry(name), options.update === true ? UPDATE_FLAGS : READ_FLAGS);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      if (code === "ELOOP") throw unsafePath(this.pathOf(name), "a symbolic link");
      throw error;
    }
    try {
      await this.#root.checkMount(handle.fd, names);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return this.#checkOpened(handle, names);
  }

  /** Reads the (small) file `name` as UTF-8 text, checked like {@link openFile}; `undefined` when missing. */
  async readText(name: string): Promise<string | undefined> {
    const opened = await this.openFile(name);
    if (opened === undefined) return undefined;
    try {
      return await opened.handle.readFile("utf8");
    } finally {
      await opened.handle.close();
    }
  }

  /**
   * Creates the file `name`, which must not exist, for writing, with exactly `mode`. A link in its
   * place fails with `UNSAFE_PATH`, another existing file with the system's `EEXIST`.
   */
  async createFile(name: string, mode: number): Promise<FileHandle> {
    let handle: FileHandle;
    try {
      handle = await open(this.#entry(name), CREATE_FLAGS, mode);
    } catch (error) {
      if (errnoCode(error) === "EEXIST" && (await this.stat(name))?.isSymbolicLink() === true) {
        throw unsafePath(this.pathOf(name), "a symbolic link");
      }
      throw error;
    }
    try {
      // The directory was checked: so is what was created in it. open() applied the umask: set
      // the mode exactly when the umask took bits away.
      if (this.#root.needsChmod(mode)) await fchmodDescriptor(handle.fd, mode);
      return handle;
    } catch (error) {
      await handle.close();
      await unlink(this.#entry(name)).catch(() => undefined);
      throw error;
    }
  }

  /** The entries of the directory, with their types (links are reported as links, not followed). */
  async entries(): Promise<Dirent[]> {
    return readdir(this.#self, { withFileTypes: true });
  }

  /** `lstat` of an entry; `undefined` when it does not exist. */
  async stat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(this.#entry(name));
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw error;
    }
  }

  /** Removes the file (or link) `name`; `false` when there was none. */
  async unlink(name: string): Promise<boolean> {
    try {
      await unlink(this.#entry(name));
      return true;
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOENT" || code === "ENOTDIR") return false;
      throw error;
    }
  }

  /** Removes the empty directory `name`; fails with the system's error otherwise. */
  async rmdir(name: string): Promise<void> {
    await rmdir(this.#entry(name));
  }

  /**
   * Removes this directory if it is empty, and returns its parent, open; `undefined` when it is
   * not empty (or already gone). The removal goes through this directory's own descriptor
   * (`<fd>/..`), so it needs no walk; it never climbs above the root.
   */
  async removeIfEmpty(): Promise<Directory | undefined> {
    const name = this.names.at(-1);
    if (name === undefined) throw new StowageError(Code.Internal, "bug: the root is never removed");
    const parentNames = this.names.slice(0, -1);
    try {
      await rmdir(this.#fd === undefined ? this.path : `${this.#self}/../${name}`);
    } catch (error) {
      const code = errnoCode(error);
      if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw error;
    }
    if (this.#fd === undefined) return new Directory(this.#root, parentNames, undefined, false);
    // `..` of a removed directory still names the directory that held it.
    const fd = await openDescriptor(`${this.#self}/..`, DIRECTORY_FLAGS);
    try {
      await this.#root.checkMount(fd, parentNames);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    return new Directory(this.#root, parentNames, fd, true);
  }

  /** Renames `name` to `targetName` in `target` (which may be this directory), replacing it. */
  async rename(name: string, target: Directory, targetName: string): Promise<void> {
    await rename(this.#entry(name), target.#entry(targetName));
  }

  /** Links `name` as `targetName` in `target`; fails with `EEXIST` when that exists. */
  async link(name: string, target: Directory, targetName: string): Promise<void> {
    await link(this.#entry(name), target.#entry(targetName));
  }

  /** Flushes the directory's entries to stable storage (tolerated where unsupported). */
  async sync(): Promise<void> {
    if (this.#fd === undefined) {
      await fsyncDirectory(this.#self);
      return;
    }
    try {
      await fsyncDescriptor(this.#fd);
    } catch (error) {
      const code = errnoCode(error);
      if (code !== "EINVAL" && code !== "EPERM" && code !== "EBADF" && code !== "ENOTSUP") throw error;
    }
  }

  /** Checks a file opened for reading: regular (else `undefined`), one link (else `UNSAFE_PATH`). */
  async #checkOpened(handle: FileHandle, names: readonly string[]): Promise<OpenedFile | undefined> {
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        await handle.close();
        return undefined;
      }
      if (stats.nlink > 1) {
        throw unsafePath(this.#root.pathOf(names), `a file with ${String(stats.nlink)} hard links (plugin-local's files have one)`);
      }
      return { handle, stats };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async #childByDescriptor(name: string, options: ChildOptions): Promise<Directory | undefined> {
    const names = [...this.names, name];
    const entry = this.#entry(name);
    let created = false;
    for (let attempt = 1; ; attempt++) {
      let fd: number;
      try {
        fd = await openDescriptor(entry, DIRECTORY_FLAGS);
      } catch (error) {
        const code = errnoCode(error);
        if (code === "ENOTDIR" || code === "ELOOP") {
          const stats = await this.stat(name);
          if (stats?.isSymbolicLink() === true) throw unsafePath(this.pathOf(name), "a symbolic link");
          if (stats === undefined || stats.isDirectory()) {
            // Changed since the open: look again.
            if (attempt > 3) throw vanishing(this.pathOf(name));
            continue;
          }
          if (options.create === undefined) return undefined;
          throw notADirectory(this.pathOf(name));
        }
        if (code !== "ENOENT") throw error;
        if (options.create === undefined) return undefined;
        if (attempt > 3) throw vanishing(this.pathOf(name));
        created = await this.#makeDirectory(entry, options);
        continue; // open (and check) whatever is there now
      }
      try {
        await this.#root.checkMount(fd, names);
        // mkdir applied the umask: set the mode exactly, on the directory that was checked.
        if (created && options.create !== undefined && this.#root.needsChmod(options.create)) await fchmodDescriptor(fd, options.create);
      } catch (error) {
        closeSync(fd);
        throw error;
      }
      return new Directory(this.#root, names, fd, true);
    }
  }

  /** `lstat` mode (racy, see the module description): checks each child before using its path. */
  async #childByPath(name: string, options: ChildOptions): Promise<Directory | undefined> {
    const names = [...this.names, name];
    let created = false;
    for (let attempt = 1; ; attempt++) {
      const stats = await this.stat(name);
      if (stats === undefined) {
        if (options.create === undefined) return undefined;
        if (attempt > 3) throw vanishing(this.pathOf(name));
        created = await this.#makeDirectory(this.#entry(name), options);
        continue;
      }
      if (stats.isSymbolicLink()) throw unsafePath(this.pathOf(name), "a symbolic link");
      if (!stats.isDirectory()) {
        if (options.create === undefined) return undefined;
        throw notADirectory(this.pathOf(name));
      }
      this.#root.checkDevice(stats, names);
      if (created && options.create !== undefined && this.#root.needsChmod(options.create)) await chmod(this.#entry(name), options.create);
      return new Directory(this.#root, names, undefined, false);
    }
  }

  /** mkdir; `true` when this call created the directory, `false` when something was there. */
  async #makeDirectory(entry: string, options: ChildOptions): Promise<boolean> {
    try {
      await mkdir(entry, options.create);
    } catch (error) {
      if (errnoCode(error) === "EEXIST") return false;
      throw error;
    }
    if (options.sync === true) await this.sync();
    return true;
  }

  /** `lstat` mode: checks a file before it is opened by path; `false` when missing. */
  async #checkFileByPath(name: string, names: readonly string[]): Promise<boolean> {
    const stats = await this.stat(name);
    if (stats === undefined) return false;
    if (stats.isSymbolicLink()) throw unsafePath(this.pathOf(name), "a symbolic link");
    this.#root.checkDevice(stats, names);
    return true;
  }
}

function vanishing(path: string): StowageError {
  return new StowageError(Code.Unavailable, `${path} keeps changing while it is opened; retry`, { metadata: { path } });
}

function notADirectory(path: string): StowageError {
  return new StowageError(Code.FailedPrecondition, `${path} is in the way: a directory is needed there; remove it`, { metadata: { path } });
}
