/**
 * Reachability checks for tests: which of some objects a full garbage collection frees. The
 * collector is exposed at run time (`--expose-gc` set through `v8.setFlagsFromString`, `gc` taken
 * from a fresh context), so no Node flag is needed on the test command.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

/**
 * How many of `refs` still hold their object after full collections. Turns of the event loop come
 * first, because a WeakRef keeps its target alive until the end of the job that made or read it.
 */
export async function stillReachable(refs: readonly WeakRef<object>[]): Promise<number> {
  for (let i = 0; i < 2; i++) {
    await nextTurn();
    gc();
  }
  await nextTurn();
  return refs.filter((ref) => ref.deref() !== undefined).length;
}
