/**
 * `--sweep`: removes what earlier runs left behind when they crashed or were killed — every
 * object whose key starts with `stowage-conformance-`, and every snapshot tagged
 * `stowage.io/conformance=true` (with LIST_SNAPSHOTS). Objects are looked for in
 * `objectStore.bucket`, `lockBucket` and `plainBucket`; protected ones are released (legal hold,
 * governance bypass) when the plugin announces OBJECT_LOCK, and stay while a compliance retention
 * lasts. Volumes cannot be listed through the contract; the kit deletes them as it goes, and
 * reports those it could not.
 *
 * Do not sweep while another run against the same bucket or volume is in progress.
 *
 * @packageDocumentation
 */
import { Reason, StowageError, type ObjectStore, type PluginKind } from "@stowage/sdk";
import { checkConfig, ConfigError, configuredKinds, loadConfigFile, type ConformanceConfig } from "./config.js";
import { describeFailure } from "./harness/expect.js";
import { CONFORMANCE_TAG, KindSession, PluginStartError, SWEEP_PREFIX, Target, newRunId, type TargetOptions } from "./session.js";
import { ExitCode } from "./runner.js";
import type { Writable } from "node:stream";

/** Options of {@link sweep}. */
export interface SweepOptions extends TargetOptions {
  /** The configuration, or the path of a YAML file. */
  readonly config: ConformanceConfig | string;
  /** Kinds to sweep (default: every configured kind). */
  readonly kind?: PluginKind | readonly PluginKind[] | undefined;
  /** Plugin name, overriding the configuration. */
  readonly pluginName?: string | undefined;
  /** Where progress lines go (default: nowhere). */
  readonly output?: Writable | undefined;
}

/** What a sweep did. */
export interface SweepOutcome {
  /** Resources removed. */
  readonly removed: readonly string[];
  /** Resources that could not be removed, with the reason. */
  readonly failed: readonly string[];
  /** Usage, configuration and start-up errors. */
  readonly errors: readonly string[];
  /** 0 when everything found was removed, 1 when some could not be, 2 or 3 as for a run. */
  readonly exitCode: ExitCode;
}

/**
 * Deletes an object an earlier run left. One that a protection keeps (the `OS-LOCK-*` cases, contract
 * 5.9) has its legal hold released and is deleted with `bypass_governance`; under a compliance
 * retention that has not ended it stays, and the error says until when.
 */
async function deleteSwept(store: ObjectStore, bucket: string, key: string): Promise<void> {
  try {
    await store.deleteObject({ bucket, key });
    return;
  } catch (error) {
    const lock = store.objectLock;
    const refused = StowageError.from(error);
    if (refused.reason !== Reason.ObjectLocked || lock === undefined) throw error;
    if (refused.metadata.legal_hold === "true") await lock.setLegalHold({ bucket, key, legalHold: false });
    await store.deleteObject({ bucket, key, bypassGovernance: true });
  }
}

/** Removes the leftovers of earlier runs. */
export async function sweep(options: SweepOptions): Promise<SweepOutcome> {
  const removed: string[] = [];
  const failed: string[] = [];
  const say = (line: string): void => {
    options.output?.write(`${line}\n`);
  };
  let config: ConformanceConfig;
  try {
    config = typeof options.config === "string" ? await loadConfigFile(options.config) : checkConfig(options.config);
  } catch (error) {
    return { removed, failed, errors: [(error as Error).message], exitCode: ExitCode.Usage };
  }
  let target: Target;
  try {
    target = await Target.open(options, config);
  } catch (error) {
    return { removed, failed, errors: [(error as Error).message], exitCode: error instanceof PluginStartError ? ExitCode.PluginStart : ExitCode.Usage };
  }
  const errors: string[] = [];
  try {
    const kinds = options.kind === undefined ? configuredKinds(config) : typeof options.kind === "string" ? [options.kind] : [...(options.kind)];
    for (const kind of kinds) {
      let session: KindSession;
      try {
        session = KindSession.open(target, { kind, config, runId: newRunId(), pluginName: options.pluginName });
      } catch (error) {
        errors.push(error instanceof ConfigError ? error.message : describeFailure(error));
        continue;
      }
      const init = await session.ensureInit();
      await session.close();
      if (init.status !== "pass") {
        errors.push(`${init.id}: ${init.message ?? "failed"}`);
        continue;
      }
      const host = target.host;
      if (kind === "object-store") {
        const store = host.objectStore(session.descriptor.name);
        const section = config.objectStore;
        const named = [section?.bucket, section?.lockBucket, section?.plainBucket].filter((b): b is string => typeof b === "string" && b !== "");
        for (const bucket of [...new Set(named)]) {
          const keys: string[] = [];
          for await (const page of store.listObjects({ bucket, prefix: SWEEP_PREFIX })) keys.push(...page.objects.map((o) => o.key));
          say(`sweep: ${String(keys.length)} objects under ${bucket}/${SWEEP_PREFIX}`);
          for (const key of keys) {
            try {
              await deleteSwept(store, bucket, key);
              removed.push(`object ${bucket}/${key}`);
            } catch (error) {
              failed.push(`object ${bucket}/${key}: ${describeFailure(error)}`);
            }
          }
        }
      } else {
        const store = host.blockStore(session.descriptor.name);
        if (!session.descriptor.capabilities.includes("LIST_SNAPSHOTS")) {
          say("sweep: the plugin does not announce LIST_SNAPSHOTS; snapshots left by earlier runs (tag stowage.io/conformance=true) must be removed by hand");
          continue;
        }
        const ids: string[] = [];
        let token = "";
        do {
          const page = await store.listSnapshots({ tagFilter: { [CONFORMANCE_TAG]: "true" }, pageToken: token });
          ids.push(...page.snapshots.map((s) => s.snapshotId));
          token = page.nextPageToken;
        } while (token !== "");
        say(`sweep: ${String(ids.length)} snapshots tagged ${CONFORMANCE_TAG}=true`);
        for (const id of ids) {
          try {
            await store.deleteSnapshot(id);
            removed.push(`snapshot ${id}`);
          } catch (error) {
            failed.push(`snapshot ${id}: ${describeFailure(error)}`);
          }
        }
        say("sweep: volumes restored by earlier runs carry the same tag but cannot be listed through the contract; check the backend for them");
      }
    }
  } finally {
    await target.close();
  }
  for (const r of removed) say(`removed ${r}`);
  for (const f of failed) say(`not removed: ${f}`);
  const exitCode = errors.length > 0 ? ExitCode.Usage : failed.length > 0 ? ExitCode.Failed : ExitCode.Passed;
  return { removed, failed, errors, exitCode };
}
