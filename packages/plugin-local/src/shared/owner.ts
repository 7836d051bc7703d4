/**
 * Who owns a temporary file: the writing process, identified well enough that another process
 * can tell whether it is still alive.
 *
 * An owner is `<host>_<pid>_<start>`:
 *
 * - `host` (16 hex digits) identifies the PID namespace of one boot of one kernel: a digest of
 *   `/proc/sys/kernel/random/boot_id` and the inode of `/proc/self/ns/pid`. Two processes with the
 *   same `host` see the same process IDs. Containers on one node have different ones (their own
 *   PID namespaces), as do other machines sharing a root over NFS and the same machine after a
 *   reboot. Where `/proc` is missing, `host` is random per process, so every other process is
 *   treated as remote.
 * - `pid` and `start` (the process start time in clock ticks since boot, field 22 of
 *   `/proc/<pid>/stat`) identify the process, so a recycled PID is not mistaken for the owner.
 *
 * @packageDocumentation
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, readlinkSync } from "node:fs";
import { errnoCode } from "./fs.js";

/** The writer of a temporary file. */
export interface Owner {
  /** PID namespace of one boot; see the module description. */
  readonly host: string;
  /** Process ID. */
  readonly pid: number;
  /** Process start time (clock ticks since boot), `0` when unknown. */
  readonly start: string;
}

/** What {@link ownerLiveness} can tell. */
export type Liveness =
  /** The owner runs. */
  | "alive"
  /** The owner has exited (or its PID now belongs to another process). */
  | "dead"
  /** The owner runs elsewhere (another host or PID namespace): only its refreshes tell. */
  | "remote";

/** Pattern of an owner tag in a file name. */
export const OWNER_TAG_PATTERN = /([0-9a-f]{16})_(\d{1,10})_(\d{1,20})/;

/** The start time of process `pid` and whether it is a zombie; `undefined` when it does not exist. */
function processStat(pid: number): { start: string; zombie: boolean } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${String(pid)}/stat`, "latin1");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { start: fields[19] ?? "0", zombie: fields[0] === "Z" || fields[0] === "X" };
}

function hostIdentity(): string {
  try {
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "latin1").trim();
    const namespace = readlinkSync("/proc/self/ns/pid");
    return createHash("sha256").update(`${boot}\0${namespace}`).digest("hex").slice(0, 16);
  } catch {
    return randomBytes(8).toString("hex");
  }
}

let self: Owner | undefined;

/** This process. */
export function currentOwner(): Owner {
  self ??= { host: hostIdentity(), pid: process.pid, start: processStat(process.pid)?.start ?? "0" };
  return self;
}

/** The owner identity of process `pid` of this host; `undefined` when it does not exist. */
export function processOwner(pid: number): Owner | undefined {
  const stat = processStat(pid);
  return stat === undefined ? undefined : { host: currentOwner().host, pid, start: stat.start };
}

/** The tag of an owner, as it appears in file names. */
export function ownerTag(owner: Owner): string {
  return `${owner.host}_${String(owner.pid)}_${owner.start}`;
}

/** Reads an owner tag found by {@link OWNER_TAG_PATTERN}. */
export function parseOwnerTag(match: RegExpExecArray): Owner {
  return { host: match[1] ?? "", pid: Number(match[2]), start: match[3] ?? "0" };
}

/** Whether `a` and `b` are the same process. */
export function sameOwner(a: Owner, b: Owner): boolean {
  return a.host === b.host && a.pid === b.pid && a.start === b.start;
}

/**
 * Whether the owner of a temporary file still runs. Only processes of this host (this PID
 * namespace of this boot) can be checked; others are `remote`.
 */
export function ownerLiveness(owner: Owner): Liveness {
  const me = currentOwner();
  if (owner.host !== me.host) return "remote";
  if (sameOwner(owner, me)) return "alive";
  const stat = processStat(owner.pid);
  if (stat !== undefined) return stat.zombie || (owner.start !== "0" && stat.start !== owner.start) ? "dead" : "alive";
  // /proc may hide other users' processes (hidepid): ask the kernel whether the PID exists.
  try {
    process.kill(owner.pid, 0);
    return "remote"; // it exists but cannot be identified: leave it to the refresh rule
  } catch (error) {
    return errnoCode(error) === "ESRCH" ? "dead" : "remote";
  }
}
