/**
 * Health checks apply to Velero's own Go plugins too: velero-plugin-for-aws (installed by
 * `bash scripts/install-velero-plugins`) answers them, and is replaced when stopped. The rest of
 * the health-check tests, on the Node fixture, are in host-liveness.test.ts.
 */
import { access, constants } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { Code, Reason } from "../src/errors.js";
import { PluginHost as Host } from "../src/host.js";
import { FAST_CHECKS, alive, capturingLogger } from "./support/host.js";
import { eventually, rejection } from "../src/testing.js";

const hosts: Host[] = [];
const stopped: number[] = [];

afterEach(async () => {
  // A stopped process that survived a failed test would never exit on its own.
  for (const pid of stopped.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL");
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

function pidOf(h: Host): number {
  return h.plugins()[0]?.pid ?? -1;
}

describe("health checks", () => {
  it("applies to Velero's own Go plugins: velero-plugin-for-aws answers the checks, and is replaced when stopped", async () => {
    const binary = fileURLToPath(new URL("../../../.tools/bin/velero-plugin-for-aws", import.meta.url));
    // Installed by `bash scripts/install-velero-plugins`, as for the other Velero interop tests.
    await access(binary, constants.X_OK);
    const { logger, lines } = capturingLogger();
    const h = new Host({ plugins: [{ command: binary, protocol: "velero" }], logger, ...FAST_CHECKS });
    hosts.push(h);
    await h.start();
    const store = h.objectStore("velero.io/aws");
    const config = { region: "us-east-1", bucket: "b" };
    await store.init(config);
    const before = pidOf(h);
    await eventually(() => lines.filter((l) => l.msg === "health check passed" && l.pid === before).length >= 3, { timeoutMs: 30_000 });
    stopped.push(before);
    process.kill(before, "SIGSTOP");
    expect(await rejection(store.init(config))).toMatchObject({ code: Code.Unavailable, reason: Reason.PluginUnresponsive });
    await eventually(() => !alive(before), { timeoutMs: 10_000 });
    await store.init(config);
    expect(pidOf(h)).not.toBe(before);
  }, 60_000);
});
