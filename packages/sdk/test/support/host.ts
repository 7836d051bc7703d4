import { readdirSync } from "node:fs";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import type { Logger } from "../../src/logging.js";
import { PluginHost, type PluginHostOptions } from "../../src/host.js";

/** Health checks every 100 ms, 300 ms each, 2 failures: a wedged plugin is replaced within about a second. */
export const FAST_CHECKS: PluginHostOptions = { healthCheck: { intervalMs: 100, timeoutMs: 300, failures: 2 }, defaultTimeoutMs: 0, streamIdleTimeoutMs: 0 };

/** Path of the in-memory fixture plugin. */
export const memoryFixture = fileURLToPath(new URL("../fixtures/memory-plugin.mjs", import.meta.url));

/** A logger that keeps every line it is given, parsed. */
export function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim() !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: "trace" }, sink), lines };
}

/** Starts a host running the memory fixture in the given mode. */
export async function startFixtureHost(mode = "ok", options: PluginHostOptions = {}): Promise<PluginHost> {
  const host = new PluginHost({
    plugins: [{ command: process.execPath, args: [memoryFixture], env: { FIXTURE_MODE: mode } }],
    logger: capturingLogger().logger,
    ...options,
  });
  await host.start();
  return host;
}

/** Whether a process is alive. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** How many file descriptors a process holds open (Linux: the entries of /proc/<pid>/fd). */
export function openFileDescriptors(pid: number): number {
  return readdirSync(`/proc/${String(pid)}/fd`).length;
}
