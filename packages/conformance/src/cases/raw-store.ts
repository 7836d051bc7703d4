/**
 * The run's own process of the plugin under test, for the cases that call RPCs the host does not
 * expose or would not send as they are (direct transfer, contract 5.8; protection fields a host
 * refuses to send, contract 5.9.1, 5.9.4): launched and initialised with the configuration on first
 * use, shared by those cases, and stopped when the run ends.
 *
 * @packageDocumentation
 */
import { CaseSkipped } from "../define.js";
import { CaseFailure, describeFailure } from "../harness/expect.js";
import { RawObjectStore } from "../harness/raw-object-store.js";
import { protocolOf } from "../harness/raw-plugin.js";
import type { CaseContext } from "../types.js";

/** Where the run's own plugin process is kept in `ctx.shared`. */
const RAW_STORE = "the kit's own plugin process";

/**
 * The run's own process of the plugin under test; skips the case when the command line is not
 * known or the plugin speaks Velero's protocol. `purpose` says, in failure messages, why the kit
 * launches it (for example "the direct-transfer RPCs").
 */
export async function rawStore(ctx: CaseContext, purpose: string): Promise<RawObjectStore> {
  let entry = ctx.shared.get(RAW_STORE) as Promise<RawObjectStore> | undefined;
  if (entry === undefined) {
    const command = ctx.plugin.command;
    if (command === undefined) throw new CaseSkipped("the plugin's command line is not known (pass `command` when you hand the kit a host)");
    if (protocolOf(command) === "velero") throw new CaseSkipped(`the plugin speaks Velero's protocol, which has no ${purpose} (contract 7)`);
    entry = RawObjectStore.launch(command, ctx.descriptor.name, ctx.pluginConfig);
    ctx.shared.set(RAW_STORE, entry);
    entry.then(
      (store) => {
        ctx.runTracker.add("the kit's own process of the plugin", () => store.dispose());
      },
      () => undefined,
    );
  }
  try {
    return await entry;
  } catch (error) {
    throw new CaseFailure(`launching the plugin's executable again and initialising it with objectStore.config (the kit calls ${purpose} on a process of its own) failed: ${describeFailure(error)}`);
  }
}
