/**
 * Plugin process metrics (docs/observability.md): starts, crashes and relaunches per executable,
 * and a span event on the call that had to relaunch its plugin.
 */
import { trace, type Counter } from "@opentelemetry/api";
import { instrumentsOf } from "../telemetry.js";

const instruments = instrumentsOf((meter): { starts: Counter; crashes: Counter; relaunches: Counter } => ({
  starts: meter.createCounter("stowage.plugin.process.starts", { description: "Plugin processes launched (first starts and relaunches)" }),
  crashes: meter.createCounter("stowage.plugin.process.crashes", { description: "Plugin processes that exited unasked or were killed for not answering" }),
  relaunches: meter.createCounter("stowage.plugin.process.relaunches", { description: "Plugin processes launched again after a crash, with their Inits replayed" }),
}));

/** The attributes of an executable: its file name (bounded: the host's own plugin list). */
function attributes(executable: string): Record<string, string> {
  return { "stowage.executable": executable };
}

/** Records a launch; a relaunch also adds an event to the span of the call that caused it. */
export function recordProcessStart(executable: string, relaunch: boolean, pid: number): void {
  instruments().starts.add(1, attributes(executable));
  if (!relaunch) return;
  instruments().relaunches.add(1, attributes(executable));
  trace.getActiveSpan()?.addEvent("stowage.plugin.relaunch", { "stowage.executable": executable, "process.pid": pid });
}

/** Records a crash (an exit the host did not ask for, or a kill for not answering). */
export function recordProcessCrash(executable: string): void {
  instruments().crashes.add(1, attributes(executable));
}
