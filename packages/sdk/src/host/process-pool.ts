/**
 * Several processes behind one {@link ProcessSource}: the processes of one executable (a pool, to
 * use every core) or the replicas of a remote plugin service. Each call goes to the member with the
 * fewest calls in flight; an Init that succeeded on one member is replayed on every other before
 * its next call; each member is relaunched (or reconnected) on its own.
 */
import { Code, Reason, StowageError } from "../errors.js";
import type { PluginConfig, PluginKind } from "../types.js";
import type { LaunchedProcess, ProcessSource } from "./protocol-adapter.js";

/** One member of a {@link ProcessPool}. */
export interface PoolMember extends ProcessSource {
  /** Calls in flight to its current process or connection (0 when it has none). */
  readonly outstanding: number;
  /** Whether it can take a call without a launch or a connection first. */
  readonly running: boolean;
  /** False once it was closed, gave up (too many crashes) or left the pool. */
  readonly available: boolean;
  /** Stops its process or closes its connection. */
  close(): Promise<void>;
}

/** Balances calls across the members `members()` returns (a fixed list, or the replicas a resolver found). */
export class ProcessPool implements ProcessSource {
  readonly #members: () => readonly PoolMember[];
  readonly #what: string;
  /**
   * Calls given a member that have not started yet: those waiting for its acquire (a launch, an
   * Init replay) and, until the next turn of the event loop, those it just handed a process. The
   * member's own count only moves when a call starts, so without these a burst of calls would all
   * see the same counts and go to the same member.
   */
  readonly #picked = new Map<PoolMember, number>();
  #next = 0;

  /**
   * @param members - The current members.
   * @param what - What the pool serves, for messages ("plugin executable /plugins/aws").
   */
  constructor(members: () => readonly PoolMember[], what: string) {
    this.#members = members;
    this.#what = what;
  }

  /**
   * The member with the fewest calls in flight (a running one before one that must start first;
   * among equals, in turn). When it cannot be acquired (it does not start, its replica is gone),
   * the next is tried; the last error is thrown when none can.
   */
  async acquire(): Promise<LaunchedProcess> {
    const all = this.#members();
    const members = all.filter((m) => m.available);
    if (members.length === 0) {
      // A closed or given-up member says why itself.
      if (all[0] !== undefined) return all[0].acquire();
      throw new StowageError(Code.Unavailable, `${this.#what} has no process or replica that can take calls`, { reason: Reason.PluginCrashed });
    }
    // One member (the default: one process per executable) has nothing to balance.
    if (members.length === 1 && members[0] !== undefined) return members[0].acquire();
    const start = this.#next++ % members.length;
    // A stable sort of the rotated list keeps the rotation among members that compare equal.
    const order = [...members.slice(start), ...members.slice(0, start)].sort((a, b) => this.#load(a) - this.#load(b) || Number(b.running) - Number(a.running));
    let last: unknown;
    for (const member of order) {
      this.#pick(member, 1);
      let proc: LaunchedProcess;
      try {
        proc = await member.acquire();
      } catch (error) {
        this.#pick(member, -1);
        last = error;
        continue;
      }
      // By the next turn of the event loop the caller has started its call (or given up).
      setImmediate(() => {
        this.#pick(member, -1);
      });
      return proc;
    }
    throw last;
  }

  /** Calls in flight to `member` plus those given it that have not started yet. */
  #load(member: PoolMember): number {
    return member.outstanding + (this.#picked.get(member) ?? 0);
  }

  #pick(member: PoolMember, delta: number): void {
    const count = (this.#picked.get(member) ?? 0) + delta;
    if (count > 0) this.#picked.set(member, count);
    else this.#picked.delete(member);
  }

  /** Remembers the Init on every member; those with a running process other than `from` replay it before their next call. */
  rememberInit(kind: PluginKind, name: string, config: PluginConfig, from: LaunchedProcess): void {
    for (const member of this.#members()) member.rememberInit(kind, name, config, from);
  }

  /** Closes every member. */
  async close(): Promise<void> {
    await Promise.all(this.#members().map((m) => m.close()));
  }
}
