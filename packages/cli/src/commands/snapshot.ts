/**
 * `stowage snapshot create|get|ls|rm|restore`: volume snapshots through any BlockStore plugin.
 *
 * @packageDocumentation
 */
import type { Snapshot } from "@stowage/sdk";
import type { Command } from "commander";
import { globalOptions, withHost } from "../host-options.js";
import { formatBytes, formatDate, printJson, printLines, printTable } from "../output.js";
import { collect, parseInteger, parseKeyValues } from "../parse.js";
import { percentProgress, progressEnabled } from "../progress.js";
import { describeSnapshot, describeVolume, formatTags, snapshotJson, volumeJson, waitForSnapshot } from "../snapshots.js";
import { addStoreOptions, openBlockStore, storeOptions, type RawStoreOptions } from "../store-options.js";

interface CreateOptions extends RawStoreOptions {
  readonly zone?: string;
  readonly tag?: readonly string[];
  readonly wait?: boolean;
}

interface LsOptions extends RawStoreOptions {
  readonly tag?: readonly string[];
}

interface RestoreOptions extends RawStoreOptions {
  readonly volumeType?: string;
  readonly zone?: string;
  readonly iops?: string;
  readonly tag?: readonly string[];
}

function printSnapshot(snapshot: Snapshot, json: boolean): void {
  if (json) printJson(snapshotJson(snapshot));
  else printLines(...describeSnapshot(snapshot));
}

async function create(volumeId: string, options: CreateOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const tags = parseKeyValues(options.tag, "--tag");
  const snapshot = await withHost(globals, async (host, signal) => {
    const client = await openBlockStore(host, store, signal);
    const started = await client.createSnapshot({ volumeId, zone: options.zone, tags }, { signal });
    if (options.wait !== true || started.state === "ready") return started;
    const progress = percentProgress(`snapshot ${started.snapshotId}`, progressEnabled(globals.json));
    try {
      return await waitForSnapshot(client, started.snapshotId, { signal, progress });
    } finally {
      progress.stop();
    }
  });
  printSnapshot(snapshot, globals.json);
}

async function get(snapshotId: string, options: RawStoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const snapshot = await withHost(globals, async (host, signal) => (await openBlockStore(host, store, signal)).getSnapshot(snapshotId, { signal }));
  printSnapshot(snapshot, globals.json);
}

async function ls(options: LsOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const tagFilter = parseKeyValues(options.tag, "--tag");
  const snapshots = await withHost(globals, async (host, signal) => {
    const client = await openBlockStore(host, store, signal);
    const all: Snapshot[] = [];
    let pageToken = "";
    do {
      const page = await client.listSnapshots({ tagFilter, pageToken: pageToken === "" ? undefined : pageToken }, { signal });
      all.push(...page.snapshots);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return all;
  });
  if (globals.json) {
    printJson({ snapshots: snapshots.map(snapshotJson) });
    return;
  }
  if (snapshots.length === 0) return;
  printTable(
    [{ title: "snapshot" }, { title: "volume" }, { title: "state" }, { title: "size", align: "right" }, { title: "created" }, { title: "tags" }],
    snapshots.map((s) => [s.snapshotId, s.volumeId, s.state, formatBytes(s.sizeBytes), formatDate(s.createdAt), formatTags(s.tags)]),
  );
}

async function rm(snapshotId: string, options: RawStoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  await withHost(globals, async (host, signal) => (await openBlockStore(host, store, signal)).deleteSnapshot(snapshotId, { signal }));
  if (globals.json) printJson({ snapshotId, deleted: true });
  else printLines(`deleted snapshot ${snapshotId}`);
}

async function restore(snapshotId: string, options: RestoreOptions, command: Command): Promise<void> {
  const globals = globalOptions(command);
  const store = storeOptions(options);
  const iops = options.iops === undefined ? undefined : parseInteger(options.iops, "--iops", 1);
  const tags = parseKeyValues(options.tag, "--tag");
  const volume = await withHost(globals, async (host, signal) => {
    const client = await openBlockStore(host, store, signal);
    const volumeId = await client.createVolumeFromSnapshot({ snapshotId, volumeType: options.volumeType, zone: options.zone, iops, tags }, { signal });
    return client.getVolumeInfo({ volumeId, zone: options.zone }, { signal });
  });
  if (globals.json) printJson({ snapshotId, volume: volumeJson(volume) });
  else printLines(`restored snapshot ${snapshotId} as volume ${volume.volumeId}`, ...describeVolume(volume));
}

/** Registers `stowage snapshot …` on `program`. */
export function registerSnapshotCommands(program: Command): void {
  const snapshot = program.command("snapshot").description("create, inspect, list, delete and restore volume snapshots in a BlockStore plugin");

  addStoreOptions(
    snapshot
      .command("create")
      .description("snapshot a volume")
      .argument("<volumeId>", "volume to snapshot")
      .option("--zone <zone>", "zone of the volume")
      .option("--tag <key=value>", "snapshot tag (repeatable)", collect)
      .option("--wait", "wait until the snapshot is ready (or failed), showing progress"),
  ).action(create);

  addStoreOptions(snapshot.command("get").description("show a snapshot").argument("<snapshotId>", "snapshot")).action(get);

  addStoreOptions(
    snapshot.command("ls").description("list snapshots").option("--tag <key=value>", "only snapshots with this tag (repeatable)", collect),
  ).action(ls);

  addStoreOptions(snapshot.command("rm").description("delete a snapshot (a missing one is not an error)").argument("<snapshotId>", "snapshot")).action(rm);

  addStoreOptions(
    snapshot
      .command("restore")
      .description("create a volume from a ready snapshot")
      .argument("<snapshotId>", "snapshot")
      .option("--volume-type <type>", "volume type (default: the provider's)")
      .option("--zone <zone>", "zone of the new volume")
      .option("--iops <n>", "provisioned IOPS")
      .option("--tag <key=value>", "volume tag (repeatable)", collect),
  ).action(restore);
}
