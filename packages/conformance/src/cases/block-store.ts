/**
 * Block-store cases (contract section 6). The kit needs an existing volume (`blockStore.volumeId`)
 * and snapshots it; one snapshot per run is shared by the cases that only read it, because real
 * backends take minutes per snapshot.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError, type Snapshot } from "@stowage/sdk";
import type { PersistentVolumeTemplate } from "../config.js";
import { CaseSkipped, ConfigProblem, defineCase } from "../define.js";
import { CaseFailure, check, describeFailure, expectError, expectOk, preview } from "../harness/expect.js";
import { sleep } from "../harness/wait.js";
import type { CaseContext, ConformanceCase } from "../types.js";

const BS = ["block-store"] as const;

const SHARED_SNAPSHOT = "block-store:snapshot";
const SHARED_READY = "block-store:ready";

/** Takes a tagged snapshot of the configured volume and registers its deletion. */
async function takeSnapshot(ctx: CaseContext, caseTag: string, tracker = ctx.tracker): Promise<Snapshot> {
  const tags = { ...ctx.tags, "stowage.io/conformance-case": caseTag };
  const snapshot = await ctx.blockStore.createSnapshot({ volumeId: ctx.blockSettings.volumeId, zone: ctx.blockSettings.zone, tags }, { signal: ctx.signal });
  if (snapshot.snapshotId !== "") trackSnapshot(ctx, snapshot.snapshotId, tracker);
  return snapshot;
}

/** Registers a snapshot for deletion, waiting for it to leave PENDING if the backend refuses then. */
function trackSnapshot(ctx: CaseContext, snapshotId: string, tracker = ctx.tracker): void {
  tracker.add(`snapshot ${snapshotId}`, async (signal) => {
    for (;;) {
      try {
        await ctx.blockStore.deleteSnapshot(snapshotId, { signal });
        return;
      } catch (error) {
        const e = StowageError.from(error);
        if (e.reason !== Reason.SnapshotNotReady) throw e;
        await sleep(ctx.blockSettings.pollIntervalMs, signal);
      }
    }
  });
}

/** Registers a volume for deletion (or reports it as a leak when the plugin cannot delete volumes). */
function trackVolume(ctx: CaseContext, volumeId: string): void {
  if (!ctx.descriptor.capabilities.includes("DELETE_VOLUME")) {
    ctx.note(`volume ${volumeId} was created and cannot be deleted through the contract (no DELETE_VOLUME capability): delete it by hand`);
    ctx.tracker.add(`volume ${volumeId}`, () => Promise.reject(new Error("the plugin does not announce DELETE_VOLUME; delete the volume by other means")));
    return;
  }
  ctx.tracker.add(`volume ${volumeId}`, async (signal) => {
    await ctx.blockStore.deleteVolume({ volumeId, zone: ctx.blockSettings.zone }, { signal });
  });
}

/** Polls a snapshot until READY or FAILED, checking that state never goes back (6.0.5). */
async function waitReady(ctx: CaseContext, snapshotId: string, history: Snapshot[] = []): Promise<Snapshot> {
  const end = Date.now() + ctx.blockSettings.snapshotReadyTimeoutMs;
  for (;;) {
    const current = await ctx.blockStore.getSnapshot(snapshotId, { signal: ctx.signal });
    const previous = history.at(-1);
    history.push(current);
    if (previous !== undefined && previous.state !== "pending") {
      check(current.state === previous.state, `snapshot ${snapshotId} went from ${previous.state.toUpperCase()} to ${current.state.toUpperCase()}; READY and FAILED are final (6.0.5)`);
    }
    if (current.state === "ready") return current;
    if (current.state === "failed") throw new CaseFailure(`snapshot ${snapshotId} of volume ${ctx.blockSettings.volumeId} FAILED: ${current.message || "(no message)"} (6.3.3)`);
    if (Date.now() > end) throw new CaseFailure(`snapshot ${snapshotId} was still PENDING after ${String(ctx.blockSettings.snapshotReadyTimeoutMs / 1000)} s (blockStore.snapshotReadyTimeout)`);
    await sleep(ctx.blockSettings.pollIntervalMs, ctx.signal);
  }
}

function memo<T>(ctx: CaseContext, key: string, make: () => Promise<T>): Promise<T> {
  let value = ctx.shared.get(key) as Promise<T> | undefined;
  if (value === undefined) {
    value = make();
    value.catch(() => undefined);
    ctx.shared.set(key, value);
  }
  return value;
}

/** The run's shared snapshot (created once, possibly still pending). */
function sharedSnapshot(ctx: CaseContext): Promise<Snapshot> {
  return memo(ctx, SHARED_SNAPSHOT, () => takeSnapshot(ctx, "shared", ctx.runTracker));
}

/** The run's shared snapshot once READY; cases that merely need one are skipped when it cannot be had. */
async function readySnapshot(ctx: CaseContext, direct = false): Promise<Snapshot> {
  const ready = memo(ctx, SHARED_READY, async () => waitReady(ctx, (await sharedSnapshot(ctx)).snapshotId));
  if (direct) return ready;
  try {
    return await ready;
  } catch (error) {
    throw new CaseSkipped(`needs the run's snapshot, which did not become READY: ${describeFailure(error)}`);
  }
}

function needs<T>(value: T | undefined, setting: string): T {
  if (value === undefined) throw new CaseSkipped(`set ${setting} in the configuration to run this case`);
  return value;
}

/** A PV template with every `${volumeId}` replaced. */
function fillTemplate(template: PersistentVolumeTemplate, volumeId: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(template).replaceAll("${volumeId}", volumeId.replaceAll("\\", "\\\\").replaceAll('"', '\\"'))) as Record<string, unknown>;
}

/** Deep equality of JSON values, ignoring key order. */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
    const ak = Object.keys(a).sort();
    const bk = Object.keys(b).sort();
    return ak.length === bk.length && ak.every((k, i) => k === bk[i] && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

/** Adds fields no plugin knows, which SetVolumeID must carry over unchanged (6.10.2). */
function withUnknownFields(pv: Record<string, unknown>): Record<string, unknown> {
  const metadata = typeof pv.metadata === "object" && pv.metadata !== null ? (pv.metadata as Record<string, unknown>) : {};
  const annotations = typeof metadata.annotations === "object" && metadata.annotations !== null ? (metadata.annotations as Record<string, unknown>) : {};
  const spec = typeof pv.spec === "object" && pv.spec !== null ? (pv.spec as Record<string, unknown>) : {};
  return {
    ...pv,
    metadata: { ...metadata, annotations: { ...annotations, "conformance.stowage.io/untouched": "yes" } },
    spec: { ...spec, conformanceUnknownField: { nested: [1, "two", { three: true }] } },
    conformanceTopLevel: "kept",
  };
}

function pvCases(form: "inTree" | "csi", label: string): ConformanceCase[] {
  const suffix = form === "inTree" ? "IN-TREE" : "CSI";
  const template = (ctx: CaseContext): PersistentVolumeTemplate => needs(ctx.blockSettings.pvTemplates[form], `blockStore.pvTemplates.${form}`);
  return [
    defineCase({
      id: `BS-PV-GET-${suffix}`,
      title: `GetVolumeID returns the bare volume ID of a PersistentVolume with ${label}`,
      clause: "6.9.2, 6.9.5",
      kinds: BS,
      async run(ctx) {
        const volumeId = ctx.blockSettings.volumeId;
        const pv = fillTemplate(template(ctx), volumeId);
        const got = await expectOk(`GetVolumeID of the ${label} PV`, () => ctx.blockStore.getVolumeId(pv, { signal: ctx.signal }));
        check(got === volumeId, `GetVolumeID of the ${label} PV returned ${JSON.stringify(got)}; expected ${JSON.stringify(volumeId)} (6.9.2)`);
      },
    }),
    defineCase({
      id: `BS-PV-SET-${suffix}`,
      title: `SetVolumeID on a PersistentVolume with ${label} changes only the ID, keeps unknown fields, and GetVolumeID reads it back`,
      clause: "6.10.2–6.10.4, 6.10.6",
      kinds: BS,
      async run(ctx) {
        const from = ctx.blockSettings.volumeId;
        const to = ctx.blockSettings.missingVolumeId ?? from;
        if (to === from) ctx.note("blockStore.missingVolumeId is not set: the ID is replaced by itself");
        const original = withUnknownFields(fillTemplate(template(ctx), from));
        const expected = withUnknownFields(fillTemplate(template(ctx), to));
        const result = await expectOk(`SetVolumeID on the ${label} PV`, () => ctx.blockStore.setVolumeId(original, to, { signal: ctx.signal }));
        check(jsonEqual(result, expected), `SetVolumeID changed more than the volume ID (6.10.2): got ${preview(result, 600)}, expected ${preview(expected, 600)}`);
        const back = await expectOk("GetVolumeID of SetVolumeID's result", () => ctx.blockStore.getVolumeId(result, { signal: ctx.signal }));
        check(back === to, `GetVolumeID of SetVolumeID's result returned ${JSON.stringify(back)}; expected ${JSON.stringify(to)} (6.10.4)`);
      },
    }),
  ];
}

/** Every block-store case, in catalogue order. */
export const blockStoreCases: readonly ConformanceCase[] = [
  defineCase({
    id: "BS-INIT",
    title: "Init accepts the configuration and the configured volume is visible",
    clause: "6.1",
    kinds: BS,
    requires: [],
    async run(ctx) {
      try {
        await ctx.blockStore.init(ctx.pluginConfig, { signal: ctx.signal });
      } catch (error) {
        const e = StowageError.from(error);
        if (e.reason === Reason.InvalidConfig) throw new ConfigProblem(`Init refused the configuration in blockStore.config: ${e.rawMessage}`);
        throw new CaseFailure(`Init with the configuration in blockStore.config failed: ${describeFailure(e)}`);
      }
      try {
        await ctx.blockStore.getVolumeInfo({ volumeId: ctx.blockSettings.volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal });
      } catch (error) {
        const e = StowageError.from(error);
        if (e.reason === Reason.VolumeNotFound || e.reason === Reason.InvalidName) {
          throw new ConfigProblem(`blockStore.volumeId ${JSON.stringify(ctx.blockSettings.volumeId)} names no usable volume: ${e.rawMessage}`);
        }
        throw new CaseFailure(`GetVolumeInfo of the configured volume failed: ${describeFailure(e)}`);
      }
    },
  }),
  defineCase({
    id: "BS-INIT-REPEAT",
    title: "Init is repeatable: a second Init with the same configuration succeeds and calls keep working",
    clause: "6.1.2",
    kinds: BS,
    async run(ctx) {
      await expectOk("a second Init with the same configuration", () => ctx.blockStore.init(ctx.pluginConfig, { signal: ctx.signal }));
      await expectOk("GetVolumeInfo after the second Init", () => ctx.blockStore.getVolumeInfo({ volumeId: ctx.blockSettings.volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }));
    },
  }),
  defineCase({
    id: "BS-SNAPSHOT-CREATE",
    title: "CreateSnapshot returns at once with a non-empty ID, the source volume and a defined state",
    clause: "6.2.1, 6.2.2, 6.0.4",
    kinds: BS,
    async run(ctx) {
      const snapshot = await expectOk("CreateSnapshot of the configured volume", () => sharedSnapshot(ctx));
      check(snapshot.snapshotId !== "", "CreateSnapshot returned an empty snapshot_id (6.2.2)");
      check(snapshot.volumeId === ctx.blockSettings.volumeId, `CreateSnapshot reports volume ${JSON.stringify(snapshot.volumeId)}; expected ${JSON.stringify(ctx.blockSettings.volumeId)} (6.2.2)`);
      check(["pending", "ready", "failed"].includes(snapshot.state), `CreateSnapshot reports state ${JSON.stringify(snapshot.state)} (6.0.4)`);
    },
  }),
  defineCase({
    id: "BS-SNAPSHOT-READY",
    title: "The snapshot becomes READY (within blockStore.snapshotReadyTimeout) and never leaves READY",
    clause: "6.3, 6.0.5",
    kinds: BS,
    async run(ctx) {
      const ready = await readySnapshot(ctx, true);
      for (let i = 0; i < 2; i++) {
        const again = await ctx.blockStore.getSnapshot(ready.snapshotId, { signal: ctx.signal });
        check(again.state === "ready", `snapshot ${ready.snapshotId} went from READY to ${again.state.toUpperCase()} (6.0.5)`);
      }
    },
  }),
  defineCase({
    id: "BS-SNAPSHOT-TAGS",
    title: "The snapshot carries the tags given to CreateSnapshot",
    clause: "6.2.3",
    kinds: BS,
    async run(ctx) {
      const created = await readySnapshot(ctx);
      const snapshot = await ctx.blockStore.getSnapshot(created.snapshotId, { signal: ctx.signal });
      const wanted = { ...ctx.tags, "stowage.io/conformance-case": "shared" };
      const wrong = Object.entries(wanted).filter(([k, v]) => snapshot.tags[k] !== v);
      check(wrong.length === 0, `the snapshot's tags ${JSON.stringify(snapshot.tags)} lack or change ${JSON.stringify(Object.fromEntries(wrong))} (6.2.3)`);
    },
  }),
  defineCase({
    id: "BS-SNAPSHOT-PROGRESS",
    title: "progress_percent stays within 0–100, never decreases, and is 100 (or unset) once READY",
    clause: "6.3.4, 6.3.5",
    kinds: BS,
    capabilities: ["SNAPSHOT_PROGRESS"],
    async run(ctx) {
      const snapshot = await expectOk("CreateSnapshot", () => takeSnapshot(ctx, "BS-SNAPSHOT-PROGRESS"));
      const history: Snapshot[] = [snapshot];
      await waitReady(ctx, snapshot.snapshotId, history);
      let last = -1;
      for (const s of history) {
        if (s.progressPercent === undefined) continue;
        check(s.progressPercent >= 0 && s.progressPercent <= 100, `progress_percent ${String(s.progressPercent)} is outside 0–100 (6.3.4)`);
        check(s.progressPercent >= last, `progress_percent went down from ${String(last)} to ${String(s.progressPercent)} (6.3.5)`);
        last = s.progressPercent;
      }
      const final = history.at(-1);
      check(final?.progressPercent === undefined || final.progressPercent === 100, `a READY snapshot reports progress_percent ${String(final?.progressPercent)}; it must be 100 when set (6.3.5)`);
      ctx.note(`${String(history.length)} polls`);
    },
  }),
  defineCase({
    id: "BS-SNAPSHOT-MISSING-VOLUME",
    title: "CreateSnapshot of a volume that does not exist fails with NOT_FOUND/VOLUME_NOT_FOUND",
    clause: "6.2.5",
    kinds: BS,
    async run(ctx) {
      const volumeId = needs(ctx.blockSettings.missingVolumeId, "blockStore.missingVolumeId");
      await expectError(`CreateSnapshot of the missing volume ${volumeId}`, { code: Code.NotFound, reason: Reason.VolumeNotFound }, async () => {
        const s = await ctx.blockStore.createSnapshot({ volumeId, zone: ctx.blockSettings.zone, tags: ctx.tags }, { signal: ctx.signal });
        if (s.snapshotId !== "") trackSnapshot(ctx, s.snapshotId);
        return s;
      });
    },
  }),
  defineCase({
    id: "BS-GET-SNAPSHOT-MISSING",
    title: "GetSnapshot of a snapshot that does not exist fails with NOT_FOUND/SNAPSHOT_NOT_FOUND",
    clause: "6.3.1",
    kinds: BS,
    async run(ctx) {
      const snapshotId = needs(ctx.blockSettings.missingSnapshotId, "blockStore.missingSnapshotId");
      await expectError(`GetSnapshot of ${snapshotId}`, { code: Code.NotFound, reason: Reason.SnapshotNotFound }, () => ctx.blockStore.getSnapshot(snapshotId, { signal: ctx.signal }));
    },
  }),
  defineCase({
    id: "BS-LIST-SNAPSHOTS",
    title: "ListSnapshots with the run's tags finds its snapshots, each once across pages of 1, and a filter matching nothing gives one empty page",
    clause: "6.4.1, 6.4.3, 6.4.4",
    kinds: BS,
    capabilities: ["LIST_SNAPSHOTS"],
    async run(ctx) {
      const shared = await expectOk("the run's snapshot", () => sharedSnapshot(ctx));
      const own = await expectOk("CreateSnapshot", () => takeSnapshot(ctx, "BS-LIST-SNAPSHOTS"));
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await expectOk("ListSnapshots with the run's tags", () => ctx.blockStore.listSnapshots({ tagFilter: ctx.tags, pageSize: 1, pageToken: token }, { signal: ctx.signal }));
        check(page.snapshots.length <= 1, `a page of ListSnapshots with page_size 1 holds ${String(page.snapshots.length)} snapshots (6.4.2)`);
        for (const s of page.snapshots) {
          const wrong = Object.entries(ctx.tags).filter(([k, v]) => s.tags[k] !== v);
          check(wrong.length === 0, `ListSnapshots with a tag filter returned ${s.snapshotId}, which lacks ${JSON.stringify(Object.fromEntries(wrong))} (6.4.1)`);
          seen.push(s.snapshotId);
        }
        token = page.nextPageToken;
        pages++;
        check(pages < 1000, "ListSnapshots did not finish within 1000 pages");
      } while (token !== "");
      for (const id of [shared.snapshotId, own.snapshotId]) check(seen.filter((s) => s === id).length === 1, `ListSnapshots listed ${id} ${String(seen.filter((s) => s === id).length)} times; expected once (6.4.1, 6.4.5)`);
      const none = await expectOk("ListSnapshots with a filter matching nothing", () =>
        ctx.blockStore.listSnapshots({ tagFilter: { "stowage.io/conformance-run": `${ctx.runId}-none` } }, { signal: ctx.signal }),
      );
      check(none.snapshots.length === 0 && none.nextPageToken === "", `a filter matching nothing returned ${String(none.snapshots.length)} snapshots and token ${JSON.stringify(none.nextPageToken)} (6.4.3)`);
    },
  }),
  defineCase({
    id: "BS-LIST-SNAPSHOTS-UNSUPPORTED",
    title: "Without LIST_SNAPSHOTS, ListSnapshots fails with UNIMPLEMENTED/UNSUPPORTED",
    clause: "6.4, 3.4.1",
    kinds: BS,
    withoutCapabilities: ["LIST_SNAPSHOTS"],
    async run(ctx) {
      await expectError("ListSnapshots from a plugin without LIST_SNAPSHOTS", { code: Code.Unimplemented, reason: Reason.Unsupported }, () =>
        ctx.blockStore.listSnapshots({ tagFilter: ctx.tags }, { signal: ctx.signal }),
      );
    },
  }),
  defineCase({
    id: "BS-VOLUME-FROM-SNAPSHOT",
    title: "CreateVolumeFromSnapshot with type, zone and IOPS returns a new volume that GetVolumeInfo reports with them",
    clause: "6.6.3–6.6.6, 6.7.1",
    kinds: BS,
    async run(ctx) {
      const snapshot = await readySnapshot(ctx);
      const { volumeType, zone, iops } = ctx.blockSettings;
      const volumeId = await expectOk("CreateVolumeFromSnapshot", () =>
        ctx.blockStore.createVolumeFromSnapshot(
          { snapshotId: snapshot.snapshotId, volumeType, zone, iops, tags: { ...ctx.tags, "stowage.io/conformance-case": "BS-VOLUME-FROM-SNAPSHOT" } },
          { signal: ctx.signal },
        ),
      );
      check(volumeId !== "", "CreateVolumeFromSnapshot returned an empty volume_id (6.6.6)");
      trackVolume(ctx, volumeId);
      check(volumeId !== ctx.blockSettings.volumeId, "CreateVolumeFromSnapshot returned the source volume's ID (6.6.7)");
      const info = await expectOk(`GetVolumeInfo of the new volume ${volumeId}`, () => ctx.blockStore.getVolumeInfo({ volumeId, zone }, { signal: ctx.signal }));
      check(info.volumeId === volumeId, `GetVolumeInfo reports volume_id ${JSON.stringify(info.volumeId)} (6.7.1)`);
      if (volumeType !== undefined) check(info.volumeType === volumeType, `the new volume has type ${JSON.stringify(info.volumeType)}; requested ${JSON.stringify(volumeType)} (6.6.3)`);
      if (zone !== "") check(info.zone === "" || info.zone === zone, `the new volume is in zone ${JSON.stringify(info.zone)}; requested ${JSON.stringify(zone)} (6.6.3)`);
      if (iops !== undefined) check(info.iops === iops, `the new volume reports iops ${String(info.iops)}; requested ${String(iops)} (6.6.4)`);
      check(info.iops !== 0, "GetVolumeInfo reports iops 0; a volume without provisioned IOPS reports it absent (6.7.2)");
    },
  }),
  defineCase({
    id: "BS-VOLUME-FROM-MISSING-SNAPSHOT",
    title: "CreateVolumeFromSnapshot of a snapshot that does not exist fails with NOT_FOUND/SNAPSHOT_NOT_FOUND",
    clause: "6.6.2",
    kinds: BS,
    async run(ctx) {
      const snapshotId = needs(ctx.blockSettings.missingSnapshotId, "blockStore.missingSnapshotId");
      await expectError(`CreateVolumeFromSnapshot of ${snapshotId}`, { code: Code.NotFound, reason: Reason.SnapshotNotFound }, async () => {
        const volumeId = await ctx.blockStore.createVolumeFromSnapshot({ snapshotId, zone: ctx.blockSettings.zone, tags: ctx.tags }, { signal: ctx.signal });
        trackVolume(ctx, volumeId);
        return volumeId;
      });
    },
  }),
  defineCase({
    id: "BS-VOLUME-INFO",
    title: "GetVolumeInfo of the source volume reports its ID, and IOPS absent rather than 0",
    clause: "6.7.1, 6.7.2",
    kinds: BS,
    async run(ctx) {
      const info = await expectOk("GetVolumeInfo of the configured volume", () => ctx.blockStore.getVolumeInfo({ volumeId: ctx.blockSettings.volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }));
      check(info.volumeId === ctx.blockSettings.volumeId, `GetVolumeInfo reports volume_id ${JSON.stringify(info.volumeId)} (6.7.1)`);
      check(info.iops !== 0, "GetVolumeInfo reports iops 0; a volume without provisioned IOPS reports it absent (6.7.2)");
    },
  }),
  defineCase({
    id: "BS-VOLUME-INFO-MISSING",
    title: "GetVolumeInfo of a volume that does not exist fails with NOT_FOUND/VOLUME_NOT_FOUND",
    clause: "6.7.3",
    kinds: BS,
    async run(ctx) {
      const volumeId = needs(ctx.blockSettings.missingVolumeId, "blockStore.missingVolumeId");
      await expectError(`GetVolumeInfo of ${volumeId}`, { code: Code.NotFound, reason: Reason.VolumeNotFound }, () =>
        ctx.blockStore.getVolumeInfo({ volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }),
      );
    },
  }),
  ...pvCases("inTree", "an in-tree source"),
  ...pvCases("csi", "a CSI source"),
  defineCase({
    id: "BS-PV-FOREIGN",
    title: "A PersistentVolume of another driver: GetVolumeID returns \"\" (OK) and SetVolumeID fails with INVALID_ARGUMENT",
    clause: "6.9.3, 6.10.5",
    kinds: BS,
    async run(ctx) {
      const foreign = {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: "conformance-foreign" },
        spec: { capacity: { storage: "1Gi" }, csi: { driver: "foreign.conformance.stowage.io", volumeHandle: "foreign-volume-1" } },
      };
      const got = await expectOk("GetVolumeID of a foreign PV", () => ctx.blockStore.getVolumeId(foreign, { signal: ctx.signal }));
      check(got === "", `GetVolumeID of a PV of the CSI driver foreign.conformance.stowage.io returned ${JSON.stringify(got)}; expected "" (6.9.3)`);
      await expectError("SetVolumeID on a foreign PV", { code: Code.InvalidArgument }, () => ctx.blockStore.setVolumeId(foreign, ctx.blockSettings.volumeId, { signal: ctx.signal }));
    },
  }),
  defineCase({
    id: "BS-DELETE-SNAPSHOT",
    title: "DeleteSnapshot removes the snapshot; deleting it again, or one that never existed, succeeds",
    clause: "6.5.1, 6.5.2",
    kinds: BS,
    async run(ctx) {
      const snapshot = await expectOk("CreateSnapshot", () => takeSnapshot(ctx, "BS-DELETE-SNAPSHOT"));
      await waitReady(ctx, snapshot.snapshotId);
      await expectOk("DeleteSnapshot", () => ctx.blockStore.deleteSnapshot(snapshot.snapshotId, { signal: ctx.signal }));
      const end = Date.now() + ctx.blockSettings.snapshotReadyTimeoutMs;
      for (;;) {
        try {
          await ctx.blockStore.getSnapshot(snapshot.snapshotId, { signal: ctx.signal });
        } catch (error) {
          const e = StowageError.from(error);
          check(e.code === Code.NotFound && e.reason === Reason.SnapshotNotFound, `GetSnapshot of the deleted snapshot failed with ${describeFailure(e)}; expected NOT_FOUND/SNAPSHOT_NOT_FOUND (6.5.1)`);
          break;
        }
        if (Date.now() > end) throw new CaseFailure("GetSnapshot still finds the deleted snapshot (6.5.1)");
        await sleep(ctx.blockSettings.pollIntervalMs, ctx.signal);
      }
      await expectOk("DeleteSnapshot of the already deleted snapshot", () => ctx.blockStore.deleteSnapshot(snapshot.snapshotId, { signal: ctx.signal }));
      const missing = ctx.blockSettings.missingSnapshotId;
      if (missing !== undefined) await expectOk(`DeleteSnapshot of ${missing}, which never existed`, () => ctx.blockStore.deleteSnapshot(missing, { signal: ctx.signal }));
    },
  }),
  defineCase({
    id: "BS-DELETE-VOLUME",
    title: "DeleteVolume removes a restored volume; deleting it again succeeds",
    clause: "6.8.1, 6.8.2",
    kinds: BS,
    capabilities: ["DELETE_VOLUME"],
    async run(ctx) {
      const snapshot = await readySnapshot(ctx);
      const volumeId = await expectOk("CreateVolumeFromSnapshot", () =>
        ctx.blockStore.createVolumeFromSnapshot({ snapshotId: snapshot.snapshotId, zone: ctx.blockSettings.zone, tags: { ...ctx.tags, "stowage.io/conformance-case": "BS-DELETE-VOLUME" } }, { signal: ctx.signal }),
      );
      trackVolume(ctx, volumeId);
      await expectOk(`DeleteVolume ${volumeId}`, () => ctx.blockStore.deleteVolume({ volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }));
      await expectError(`GetVolumeInfo of the deleted volume ${volumeId}`, { code: Code.NotFound, reason: Reason.VolumeNotFound }, () =>
        ctx.blockStore.getVolumeInfo({ volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }),
      );
      await expectOk(`DeleteVolume ${volumeId} again`, () => ctx.blockStore.deleteVolume({ volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }));
      ctx.tracker.forget(`volume ${volumeId}`);
    },
  }),
  defineCase({
    id: "BS-DELETE-VOLUME-UNSUPPORTED",
    title: "Without DELETE_VOLUME, DeleteVolume fails with UNIMPLEMENTED/UNSUPPORTED",
    clause: "6.8, 3.4.1",
    kinds: BS,
    withoutCapabilities: ["DELETE_VOLUME"],
    async run(ctx) {
      const volumeId = ctx.blockSettings.missingVolumeId ?? "stowage-conformance-no-such-volume";
      await expectError("DeleteVolume from a plugin without DELETE_VOLUME", { code: Code.Unimplemented, reason: Reason.Unsupported }, () =>
        ctx.blockStore.deleteVolume({ volumeId, zone: ctx.blockSettings.zone }, { signal: ctx.signal }),
      );
    },
  }),
];

