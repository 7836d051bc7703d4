/**
 * Forwarding a plugin's stderr into the host's logger: logrus lines from Velero's Go plugins carry
 * their own `level`, `time` and `timestamp` next to hclog's `@level`/`@timestamp`; those must not
 * overwrite the host logger's own fields (pino's numeric `level` and `time`).
 */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { StderrForwarder } from "../src/host/log-forward.js";
import { capturingLogger } from "./support/host.js";
import { eventually } from "../src/testing.js";

/** pino's numeric levels. */
const PINO_LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

function forward(lines: readonly string[]): { lines: Record<string, unknown>[]; forwarder: StderrForwarder; done: Promise<void> } {
  const captured = capturingLogger();
  const forwarder = new StderrForwarder(captured.logger);
  const stderr = new PassThrough();
  forwarder.attach(stderr);
  const done = new Promise<void>((resolve) => stderr.on("end", resolve));
  for (const line of lines) stderr.write(`${line}\n`);
  stderr.end();
  return { lines: captured.lines, forwarder, done };
}

describe("StderrForwarder", () => {
  it("keeps the host logger's level and time when a logrus line carries level, time and timestamp", async () => {
    const before = Date.now();
    const { lines, done } = forward([
      JSON.stringify({ "@level": "warn", "@message": "Checking if object exists", "@timestamp": "2001-02-03T04:05:06.000000Z", level: "info", time: "2001-02-03T04:05:06Z", timestamp: "yesterday", bucket: "b", cmd: "/plugins/velero-plugin-for-aws" }),
      JSON.stringify({ "@level": "error", "@message": "boom", level: "debug", error: "x" }),
    ]);
    await done;
    await eventually(() => lines.length === 2);
    const [warn, error] = lines;
    // The host's own numbers, not the plugin's words.
    expect(warn).toMatchObject({ level: PINO_LEVEL.warn, msg: "Checking if object exists", bucket: "b", cmd: "/plugins/velero-plugin-for-aws" });
    expect(typeof warn?.time).toBe("number");
    expect(warn?.time as number).toBeGreaterThanOrEqual(before);
    expect(warn).not.toHaveProperty("timestamp");
    expect(warn).not.toHaveProperty("@timestamp");
    expect(warn).not.toHaveProperty("@level");
    expect(error).toMatchObject({ level: PINO_LEVEL.error, msg: "boom", error: "x" });
  });

  it("forwards other keys, renames @module, and keeps a readable tail", async () => {
    const { lines, forwarder, done } = forward([
      JSON.stringify({ "@level": "info", "@message": "listening", "@module": "plugin.s3", key: "k" }),
      "[ERROR] disk full",
      "plain text",
    ]);
    await done;
    await eventually(() => lines.length === 3);
    expect(lines[0]).toMatchObject({ level: PINO_LEVEL.info, msg: "listening", module: "plugin.s3", key: "k" });
    expect(lines[1]).toMatchObject({ level: PINO_LEVEL.error, msg: "disk full" });
    expect(lines[2]).toMatchObject({ level: PINO_LEVEL.info, msg: "plain text" });
    expect(forwarder.tail()).toBe("info: listening\nerror: disk full\nplain text");
  });
});
