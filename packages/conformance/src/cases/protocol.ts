/**
 * Process-protocol cases (contract sections 2 and 3, protocol.md), for both kinds. Most launch
 * the executable themselves, outside the host, to see its standard output, its health service,
 * its reaction to signals and to Shutdown.
 *
 * @packageDocumentation
 */
import { status } from "@grpc/grpc-js";
import { Code, compareUtf8, Reason, StowageError } from "@stowage/sdk";
import { PluginHost, type PluginCommand } from "@stowage/sdk/host";
import { silentLogger } from "@stowage/sdk";
import { CaseSkipped, defineCase } from "../define.js";
import { CaseFailure, check, describeFailure, expectError, expectOk } from "../harness/expect.js";
import { appVersionOf, childPids, processAlive, protocolOf, RawPlugin, runWithoutCookie, VELERO_APP_PROTOCOL_VERSION, VELERO_COOKIE_KEY, VELERO_COOKIE_VALUE } from "../harness/raw-plugin.js";
import { sleep, within } from "../harness/wait.js";
import type { CaseContext, ConformanceCase } from "../types.js";

const BOTH = ["object-store", "block-store"] as const;

/** The fresh plugin process that no case initialises (`PROTO-NOT-INITIALIZED`, `OS-ERROR-PRECEDENCE`). */
export const UNINITIALISED_INSTANCE = "not-initialized";

/** How long `PROTO-STDIO` watches the stdio stream stay open. */
const STDIO_HOLD_MS = 1000;

function command(ctx: CaseContext): PluginCommand {
  const c = ctx.plugin.command;
  if (c === undefined) throw new CaseSkipped("the plugin's command line is not known (pass `command` when you hand the kit a host)");
  return c;
}

/** Launches the executable outside the host, runs `fn`, and always disposes of the process. */
async function withRawPlugin<T>(ctx: CaseContext, fn: (plugin: RawPlugin) => Promise<T>): Promise<T> {
  let plugin: RawPlugin;
  try {
    plugin = await RawPlugin.launch(command(ctx), 20_000);
  } catch (error) {
    if (error instanceof CaseSkipped) throw error;
    const cookie = protocolOf(command(ctx)) === "velero" ? `Velero's cookie (${VELERO_COOKIE_KEY}=${VELERO_COOKIE_VALUE}, protocol version ${String(VELERO_APP_PROTOCOL_VERSION)})` : "the cookie";
    throw new CaseFailure(`launching the executable with ${cookie} failed: ${describeFailure(error)}`);
  }
  try {
    return await fn(plugin);
  } finally {
    await plugin.dispose();
  }
}

/** A call that needs an initialised plugin but no resource of the kit's. */
async function probe(ctx: CaseContext, fresh: string | undefined): Promise<unknown> {
  if (ctx.kind === "object-store") {
    const store = fresh === undefined ? ctx.objectStore : ctx.plugin.freshObjectStore(fresh);
    return store.headObject({ bucket: ctx.objectSettings.bucket, key: `${ctx.prefix}probe` }, { signal: ctx.signal });
  }
  const store = fresh === undefined ? ctx.blockStore : ctx.plugin.freshBlockStore(fresh);
  return store.getVolumeInfo({ volumeId: ctx.blockSettings.volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal });
}

async function initFresh(ctx: CaseContext, instance: string, config: Readonly<Record<string, string>>): Promise<void> {
  if (ctx.kind === "object-store") await ctx.plugin.freshObjectStore(instance).init(config, { signal: ctx.signal });
  else await ctx.plugin.freshBlockStore(instance).init(config, { signal: ctx.signal });
}

/** Every protocol case, in catalogue order. */
export const protocolCases: readonly ConformanceCase[] = [
  defineCase({
    id: "PROTO-HANDSHAKE",
    title: "The first stdout line is a valid handshake of five or six fields (never go-plugin's seventh), the socket answers, and nothing else is ever written to stdout",
    clause: "2.1.1, 2.1.4, protocol.md §6",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      await withRawPlugin(ctx, async (plugin) => {
        const h = plugin.handshake;
        const app = appVersionOf(command(ctx));
        check(
          h.core === 1 && h.app === app && h.protocol === "grpc",
          `the handshake line ${JSON.stringify(plugin.line)} must announce core version 1, application version ${String(app)}${app === VELERO_APP_PROTOCOL_VERSION ? " (Velero's)" : ""} and grpc (protocol.md §6)`,
        );
        check(h.network === "unix", `the handshake announces network ${JSON.stringify(h.network)}; plugins on Unix listen on a Unix socket (protocol.md §5)`);
        const fields = plugin.line.trim().split("|");
        check(
          fields.length <= 6,
          `the handshake line ${JSON.stringify(plugin.line)} has ${String(fields.length)} fields; a plugin writes five, or six with the sixth empty, and never go-plugin's seventh (its multiplexing flag), which Stowage hosts do not ask for (protocol.md §6)`,
        );
        check(
          (fields[5] ?? "") === "",
          `field 6 of the handshake line ${JSON.stringify(plugin.line)} is not empty; it is go-plugin's server certificate, used only with automatic mTLS, which Stowage hosts never ask for (protocol.md §6)`,
        );
        await expectOk("a health check on the announced socket", () => plugin.health("plugin"));
        // Stop it the way a host does; whether Shutdown itself conforms is PROTO-SHUTDOWN's business.
        await plugin.shutdown().catch(() => undefined);
        await Promise.race([plugin.exited, sleep(5000)]);
        const extra = plugin.extraStdout;
        check(extra.length === 0, `the plugin wrote ${String(extra.length)} bytes to stdout after the handshake line: ${JSON.stringify(extra.toString("utf8").slice(0, 200))} (2.1.4)`);
      });
    },
  }),
  defineCase({
    id: "PROTO-MISSING-COOKIE",
    title: "Started without the magic cookie, the executable explains itself on stderr, writes nothing on stdout and exits with status 1",
    clause: "protocol.md §3",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      const run = await runWithoutCookie(command(ctx), 10_000);
      check(run.exit !== undefined, "without the cookie the executable was still running after 10 s; it must exit with status 1 (protocol.md §3)");
      check(run.stdout === "", `without the cookie the executable wrote to stdout: ${JSON.stringify(run.stdout.slice(0, 200))} (protocol.md §3)`);
      check(run.exit.code === 1, `without the cookie the executable ${run.exit.signal === null ? `exited with status ${String(run.exit.code)}` : `died of ${run.exit.signal}`}; expected status 1 (protocol.md §3)`);
      check(run.stderr.trim() !== "", "without the cookie the executable exited silently; it must explain on stderr that a Stowage host starts it (protocol.md §3)");
    },
  }),
  defineCase({
    id: "PROTO-HEALTH",
    title: "grpc.health.v1 reports SERVING for \"plugin\" and \"\" before any Init",
    clause: "2.2.1, 2.2.2, protocol.md §9.1",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      await withRawPlugin(ctx, async (plugin) => {
        for (const service of ["plugin", ""]) {
          const status = await expectOk(`Health/Check for ${JSON.stringify(service)}`, () => plugin.health(service));
          check(status === "SERVING", `Health/Check for ${JSON.stringify(service)} answered ${status}; expected SERVING (2.2.1)`);
        }
      });
    },
  }),
  defineCase({
    id: "PROTO-STDIO",
    title: "plugin.GRPCStdio/StreamStdio is served, and its stream stays open until the host cancels it",
    clause: "protocol.md §9.3",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      await withRawPlugin(ctx, async (plugin) => {
        const stdio = plugin.openStdio();
        try {
          // A plugin that does not serve the method, or ends the stream at once, has answered by the
          // time a later call on the same connection has; the second after it is for slow runtimes.
          await expectOk("Health/Check with the stdio stream open", () => plugin.health("plugin"));
          const early = await Promise.race([stdio.ended, sleep(STDIO_HOLD_MS, ctx.signal).then(() => undefined)]);
          if (early === undefined) return;
          check(
            early.code !== status.UNIMPLEMENTED,
            `the plugin does not serve plugin.GRPCStdio/StreamStdio (UNIMPLEMENTED: ${early.details}); every plugin MUST serve it and hold the stream open, or go-plugin hosts log warnings on every start (protocol.md §9.3)`,
          );
          throw new CaseFailure(
            `the StreamStdio stream ended ${early.code === status.OK ? "with OK" : `with status ${String(early.code)} (${early.details})`} after ${String(stdio.received)} messages, before the host cancelled it; it MUST stay open until the host cancels it or the plugin shuts down (protocol.md §9.3)`,
          );
        } finally {
          stdio.cancel();
        }
      });
    },
  }),
  defineCase({
    id: "PROTO-SIGINT",
    title: "The plugin ignores SIGINT and keeps serving",
    clause: "2.3.3, protocol.md §11",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      await withRawPlugin(ctx, async (plugin) => {
        // Once it serves (a signal in the instant between the handshake and its handler is not what this checks).
        await expectOk("Health/Check before SIGINT", () => plugin.health("plugin"));
        plugin.signal("SIGINT");
        await sleep(300, ctx.signal);
        if (plugin.hasExited) {
          const exit = await plugin.exited;
          throw new CaseFailure(`the plugin ${exit.signal === null ? `exited with status ${String(exit.code)}` : `died of ${exit.signal}`} on SIGINT; it must ignore SIGINT so that the host alone decides when it stops (2.3.3)${plugin.stderrTail === "" ? "" : `; stderr: ${plugin.stderrTail.trim().slice(-300)}`}`);
        }
        const status = await expectOk("Health/Check after SIGINT", () => plugin.health("plugin"));
        check(status === "SERVING", `after SIGINT, health answers ${status} (2.3.3)`);
      });
    },
  }),
  defineCase({
    id: "PROTO-SHUTDOWN",
    title: "plugin.GRPCController/Shutdown replies and the process exits with status 0 within 5 s",
    clause: "2.3.1, protocol.md §9.2",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      await withRawPlugin(ctx, async (plugin) => {
        if (protocolOf(command(ctx)) === "velero") {
          // go-plugin's server stops itself inside the Shutdown handler, so its reply is usually
          // lost with the connection; Velero's Go client ignores that error and waits for the exit.
          // Judged as Velero judges it: the call may fail with UNAVAILABLE, the exit status must be 0.
          const outcome = await plugin.shutdown().then(
            () => "replied",
            (error: unknown) => error,
          );
          if (outcome !== "replied") {
            const code = (outcome as { code?: unknown }).code;
            const text = outcome instanceof Error ? outcome.message : String(outcome);
            check(code === status.UNAVAILABLE, `Shutdown failed with ${text}; a Velero plugin may drop the connection (UNAVAILABLE) but must not refuse the call (protocol.md §9.2)`);
            ctx.note(`Shutdown: no reply, the connection dropped (${text}), as go-plugin's server does; Velero's client ignores this`);
          }
        } else {
          await expectOk("Shutdown", () => plugin.shutdown());
        }
        const exit = await within(5000, "the plugin's exit after Shutdown (2.3.1)", () => plugin.exited);
        check(exit.code === 0, `after Shutdown the plugin ${exit.signal === null ? `exited with status ${String(exit.code)}` : `died of ${exit.signal}`}; expected status 0 (2.3.1)`);
      });
    },
  }),
  defineCase({
    id: "PROTO-NO-ORPHANS",
    title: "After the host closes, the plugin process and every child it started are gone",
    clause: "protocol.md §11",
    kinds: BOTH,
    requires: ["command"],
    async run(ctx) {
      const host = new PluginHost({ plugins: [command(ctx)], logger: silentLogger, shutdownGraceMs: 2000 });
      let pid: number | undefined;
      let children: number[];
      try {
        await expectOk("starting a second host with the plugin", () => host.start());
        pid = host.plugins().find((p) => p.descriptor.kind === ctx.kind && p.descriptor.name === ctx.descriptor.name)?.pid;
        if (pid === undefined) throw new CaseSkipped("the host reports no process ID for the plugin");
        children = await childPids(pid);
      } finally {
        await host.close();
      }
      check(!(await processAlive(pid)), `the plugin process ${String(pid)} still runs after host.close() returned (protocol.md §11)`);
      await sleep(200);
      const left = [];
      for (const child of children) if (await processAlive(child)) left.push(child);
      check(left.length === 0, `child processes [${left.join(", ")}] of the plugin still run after the host closed: a wrapper script without exec? (protocol.md §11)`);
    },
  }),
  defineCase({
    id: "PROTO-NOT-INITIALIZED",
    title: "A call before the first successful Init fails with FAILED_PRECONDITION/NOT_INITIALIZED",
    clause: "3.6.2",
    kinds: BOTH,
    requires: [],
    async run(ctx) {
      await expectError("a call to a fresh plugin process before Init", { code: Code.FailedPrecondition, reason: Reason.NotInitialized }, () => probe(ctx, UNINITIALISED_INSTANCE));
    },
  }),
  defineCase({
    id: "PROTO-INIT-UNKNOWN-KEY",
    title: "Init with an unknown key fails with INVALID_ARGUMENT/INVALID_CONFIG, lists the valid keys in valid_keys (sorted, comma-separated), and leaves the plugin uninitialised",
    clause: "5.1.1, 6.1.1, 4.3.3, 3.6.3",
    kinds: BOTH,
    requires: [],
    async run(ctx) {
      const unknown = "stowageConformanceUnknownKey";
      const error = await expectError(`Init with the extra key ${unknown}`, { code: Code.InvalidArgument, reason: Reason.InvalidConfig }, () =>
        initFresh(ctx, "unknown-key", { ...ctx.pluginConfig, [unknown]: "1" }),
      );
      const validKeys = error.metadata.valid_keys;
      check(validKeys !== undefined, `the INVALID_CONFIG error carries no valid_keys metadata (5.1.1); metadata: ${JSON.stringify(error.metadata)}`);
      check(
        /^[^\s,]+(,[^\s,]+)*$/u.test(validKeys),
        `valid_keys ${JSON.stringify(validKeys)} is not a list of key names separated by commas, without spaces (4.3.3, 5.1.1)`,
      );
      const valid = validKeys.split(",");
      const sorted = [...valid].sort(compareUtf8);
      check(valid.join(",") === sorted.join(","), `valid_keys ${JSON.stringify(validKeys)} is not sorted; expected ${JSON.stringify(sorted.join(","))} (4.3.3, 5.1.1)`);
      check(!valid.includes(unknown), `valid_keys lists the unknown key: ${validKeys} (5.1.1)`);
      const missing = Object.keys(ctx.pluginConfig).filter((k) => !valid.includes(k));
      check(missing.length === 0, `valid_keys ${JSON.stringify(validKeys)} lacks keys Init accepts: [${missing.join(", ")}] (5.1.1)`);
      if (!error.rawMessage.includes(unknown)) ctx.note(`the message does not name the unknown key (SHOULD, 5.1.1): ${error.rawMessage}`);
      await expectError("a call after the failed Init", { code: Code.FailedPrecondition, reason: Reason.NotInitialized }, () => probe(ctx, "unknown-key"));
    },
  }),
  defineCase({
    id: "PROTO-CRASH-RELAUNCH",
    title: "After the plugin process is killed, the next call relaunches it with Init replayed and succeeds",
    clause: "3.6.5, protocol.md §12",
    kinds: BOTH,
    timeoutMs: 60_000,
    async run(ctx) {
      const pid = ctx.plugin.pid();
      if (pid === undefined) throw new CaseSkipped("the plugin's process ID is not known");
      process.kill(pid, "SIGKILL");
      const end = Date.now() + 5000;
      while (await processAlive(pid)) {
        if (Date.now() > end) throw new CaseFailure(`the plugin process ${String(pid)} survived SIGKILL for 5 s`);
        await sleep(20);
      }
      await sleep(100);
      try {
        await within(30_000, "the first call after the crash", () => probe(ctx, undefined));
      } catch (error) {
        const e = StowageError.from(error);
        throw new CaseFailure(`the first call after the plugin was killed failed: ${describeFailure(e)}; the relaunched process must accept the replayed Init (3.6.5)`);
      }
      const next = ctx.plugin.pid();
      check(next !== undefined && next !== pid, `after the crash the host reports process ${String(next)}; expected a new process (protocol.md §12)`);
    },
  }),
];
