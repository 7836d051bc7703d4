/**
 * The kit's configuration: the YAML file the CLI reads (`--config conf.yaml`) and the object
 * library callers pass, which have the same shape. Checked strictly: an unknown key is an error
 * that lists the valid ones, as the contract asks of plugins.
 *
 * Durations and sizes take the syntaxes every plugin's configuration takes (`parseDuration` and
 * `parseSize` of `@stowage/sdk/plugin`): `90s`, `2m`, `1h30m`, `250ms`; `64MiB`, `512KiB`. A bare
 * number (a YAML number, or a string of digits) is in the key's historical unit: seconds for the
 * durations, MiB for `largeObjectSize`. Keys are named without a unit; the old unit-suffixed names
 * (`signedUrlExpiryGraceSeconds`, `largeObjectMiB`, …) are accepted as aliases.
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import type { PluginKind } from "@stowage/sdk";
import { formatDuration, formatSize, parseDuration, parseSize } from "@stowage/sdk/plugin";
import { parse as parseYaml, YAMLParseError } from "yaml";
import * as z from "zod";

/** A usage or configuration error (exit status 2). */
export class ConfigError extends Error {
  /** @param message - What is wrong and how to fix it. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** The `objectStore` section. */
export interface ObjectStoreConfig {
  /** Name of the plugin under test; optional when the executable serves one object store. */
  readonly plugin?: string | undefined;
  /** The Init configuration. Values are strings; `${env:NAME}` is replaced by the variable's value. */
  readonly config?: Readonly<Record<string, string | number | boolean>> | undefined;
  /** The bucket the cases write into (under the run prefix). It must exist, unless the configuration opts in to creating it (contract 5.0.3). */
  readonly bucket: string;
  /** A well-formed bucket name that does not exist (default `stowage-conformance-missing-<runid>`). */
  readonly missingBucket?: string | undefined;
  /** Size of the large streamed object: a size (`64MiB`) or a number of MiB (default: the top-level `largeObjectSize`, else 64 MiB). */
  readonly largeObjectSize?: number | string | undefined;
  /** The old name of {@link ObjectStoreConfig.largeObjectSize}, still accepted. */
  readonly largeObjectMiB?: number | string | undefined;
  /** Number of keys in the pagination case, at least 1001 (default 1010). */
  readonly paginationKeys?: number | undefined;
  /** Number of parallel puts in the concurrency cases (default 8). */
  readonly concurrency?: number | undefined;
  /** Extra wait after a signed URL's `expires_at` before it must be refused: a duration (`2s`) or seconds (default 2 s; the contract allows up to 60 s). */
  readonly signedUrlExpiryGrace?: number | string | undefined;
  /** The old name of {@link ObjectStoreConfig.signedUrlExpiryGrace}, still accepted. */
  readonly signedUrlExpiryGraceSeconds?: number | string | undefined;
  /** Time a plugin has to release what a cancelled call held: a duration (`5s`) or seconds (default 5 s, clause 2.4.2). */
  readonly cancelGrace?: number | string | undefined;
  /** The old name of {@link ObjectStoreConfig.cancelGrace}, still accepted. */
  readonly cancelGraceSeconds?: number | string | undefined;
  /**
   * A bucket where objects can be protected (contract 5.9), for the `OS-LOCK-*` cases. Without it,
   * a plugin announcing OBJECT_LOCK has those cases reported as skipped, with the reason.
   */
  readonly lockBucket?: string | undefined;
  /**
   * A bucket that cannot hold protected objects, for `OS-LOCK-NOT-LOCKABLE` (default: `bucket`,
   * when the plugin reports it not lockable).
   */
  readonly plainBucket?: string | undefined;
  /** The retention the `OS-LOCK-*` cases give objects: a duration (`3s`) or seconds, 1 s to 20 s (default 3 s). */
  readonly lockRetention?: number | string | undefined;
}

/** A PersistentVolume template: JSON in which the string `${volumeId}` stands for the volume ID. */
export type PersistentVolumeTemplate = Readonly<Record<string, unknown>>;

/** The `blockStore` section. */
export interface BlockStoreConfig {
  /** Name of the plugin under test; optional when the executable serves one block store. */
  readonly plugin?: string | undefined;
  /** The Init configuration, as for the object store. */
  readonly config?: Readonly<Record<string, string | number | boolean>> | undefined;
  /** An existing volume the kit snapshots (never modified). */
  readonly volumeId: string;
  /** The volume's zone (empty: let the plugin decide). */
  readonly zone?: string | undefined;
  /** Volume type requested for restored volumes (default: the backend's default). */
  readonly volumeType?: string | undefined;
  /** IOPS requested for restored volumes (default: not set). */
  readonly iops?: number | undefined;
  /** A well-formed volume ID that does not exist; cases that need it are skipped without it. */
  readonly missingVolumeId?: string | undefined;
  /** A well-formed snapshot ID that does not exist; cases that need it are skipped without it. */
  readonly missingSnapshotId?: string | undefined;
  /** How long a snapshot may take to become ready: a duration (`10m`) or seconds (default 10 min). */
  readonly snapshotReadyTimeout?: number | string | undefined;
  /** The old name of {@link BlockStoreConfig.snapshotReadyTimeout}, still accepted. */
  readonly snapshotReadyTimeoutSeconds?: number | string | undefined;
  /** Pause between polls of a pending snapshot: a duration (`1s`, `250ms`) or seconds (default 1 s). */
  readonly pollInterval?: number | string | undefined;
  /** The old name of {@link BlockStoreConfig.pollInterval}, still accepted. */
  readonly pollIntervalSeconds?: number | string | undefined;
  /** PersistentVolumes this plugin owns, with `${volumeId}` where the volume ID goes. */
  readonly pvTemplates?: {
    /** An in-tree volume source (for example `awsElasticBlockStore`, or `local` for the local plugin). */
    readonly inTree?: PersistentVolumeTemplate | undefined;
    /** A CSI source with this plugin's driver. */
    readonly csi?: PersistentVolumeTemplate | undefined;
  } | undefined;
}

/** The whole configuration (the YAML file's top level). */
export interface ConformanceConfig {
  /** Settings for object-store runs. */
  readonly objectStore?: ObjectStoreConfig | undefined;
  /** Settings for block-store runs. */
  readonly blockStore?: BlockStoreConfig | undefined;
  /** Default size of the large streamed object: a size (`64MiB`) or a number of MiB (default 64 MiB). */
  readonly largeObjectSize?: number | string | undefined;
  /** The old name of {@link ConformanceConfig.largeObjectSize}, still accepted. */
  readonly largeObjectMiB?: number | string | undefined;
  /** Time a plugin has to complete its handshake: a duration (`30s`) or seconds (default 30 s). */
  readonly startTimeout?: number | string | undefined;
  /** The old name of {@link ConformanceConfig.startTimeout}, still accepted. */
  readonly startTimeoutSeconds?: number | string | undefined;
}

/** Object-store settings, resolved and checked. */
export interface ObjectStoreSettings {
  /** Plugin name, when given. */
  readonly plugin: string | undefined;
  /** Init configuration. */
  readonly config: Readonly<Record<string, string>>;
  /** Bucket. */
  readonly bucket: string;
  /** A bucket that does not exist. */
  readonly missingBucket: string;
  /** Large object size in bytes. */
  readonly largeObjectBytes: number;
  /** Keys in the pagination case. */
  readonly paginationKeys: number;
  /** Parallel puts. */
  readonly concurrency: number;
  /** Grace after a signed URL's expiry, in milliseconds. */
  readonly signedUrlExpiryGraceMs: number;
  /** Time to release a cancelled call's resources, in milliseconds. */
  readonly cancelGraceMs: number;
  /** A bucket where objects can be protected, when configured. */
  readonly lockBucket: string | undefined;
  /** A bucket said not to be lockable, when configured. */
  readonly plainBucket: string | undefined;
  /** The retention the object-protection cases ask for, in milliseconds. */
  readonly lockRetentionMs: number;
}

/** Block-store settings, resolved and checked. */
export interface BlockStoreSettings {
  /** Plugin name, when given. */
  readonly plugin: string | undefined;
  /** Init configuration. */
  readonly config: Readonly<Record<string, string>>;
  /** Source volume. */
  readonly volumeId: string;
  /** Its zone. */
  readonly zone: string;
  /** Volume type for restores. */
  readonly volumeType: string | undefined;
  /** IOPS for restores. */
  readonly iops: number | undefined;
  /** A missing volume ID. */
  readonly missingVolumeId: string | undefined;
  /** A missing snapshot ID. */
  readonly missingSnapshotId: string | undefined;
  /** Snapshot readiness timeout in milliseconds. */
  readonly snapshotReadyTimeoutMs: number;
  /** Poll interval in milliseconds. */
  readonly pollIntervalMs: number;
  /** PV templates. */
  readonly pvTemplates: {
    /** In-tree source template. */
    readonly inTree: PersistentVolumeTemplate | undefined;
    /** CSI source template. */
    readonly csi: PersistentVolumeTemplate | undefined;
  };
}

type Issue = z.core.$ZodRawIssue;

function got(iss: Issue): string {
  return JSON.stringify(iss.input);
}

/** An optional string; `null` counts as absent. */
function optionalString(where: string, description: string) {
  return z.string({ error: (iss) => `${where} must be a string, got ${got(iss)}` }).nullish().meta({ description });
}

/** A required, non-empty string. */
function requiredString(where: string, description: string) {
  return z
    .string({ error: (iss) => (iss.input === undefined || iss.input === null ? `${where} is required` : `${where} must be a string, got ${got(iss)}`) })
    .min(1, { error: `${where} is required` })
    .meta({ description });
}

/** An optional number from `min` to `max`; `null` counts as absent. */
function optionalNumber(where: string, description: string, min: number, max = Number.MAX_SAFE_INTEGER, integer = false) {
  const error = (iss: Issue): string => `${where} must be ${integer ? "a whole number" : "a number"} from ${String(min)} to ${String(max)}, got ${got(iss)}`;
  const base = z.number({ error }).min(min, { error }).max(max, { error });
  return (integer ? base.int({ error }) : base).nullish().meta({ description });
}

const MiB = 1024 * 1024;

/** The duration syntax, for editors (the JSON Schema's `pattern`); `parseDuration` decides. */
const DURATION_PATTERN = /^\s*(\d+(\.\d+)?|(\d+(\.\d+)?(ns|us|µs|μs|ms|s|m|h))+)\s*$/u;
/** The size syntax, for editors; `parseSize` decides. */
const SIZE_PATTERN = /^\s*(\d+(\.\d+)?|\d+\s*([KkMmGg]([Ii][Bb]?)?|[Bb]))\s*$/u;

/**
 * An optional duration in milliseconds, `null` counting as absent: a duration string (`90s`, `2m`,
 * `250ms`) or a bare number of seconds (a YAML number or a string of digits; fractions allowed).
 */
function optionalDuration(where: string, description: string, minSeconds: number, maxSeconds: number, deprecated = false) {
  const error = (input: unknown): string =>
    `${where} must be a duration from ${formatDuration(minSeconds * 1000)} to ${formatDuration(maxSeconds * 1000)} (e.g. 90s, 2m, 250ms; a bare number is seconds), got ${JSON.stringify(input)}`;
  const issue = (iss: Issue): string => error(iss.input);
  return z
    .union([z.number({ error: issue }).min(minSeconds, { error: issue }).max(maxSeconds, { error: issue }), z.string({ error: issue }).regex(DURATION_PATTERN, { error: issue })], { error: issue })
    .transform((value, ctx) => {
      const ms = typeof value === "number" ? value * 1000 : parseDuration(value, "s");
      if (ms === undefined || ms < minSeconds * 1000 || ms > maxSeconds * 1000) {
        ctx.addIssue({ code: "custom", message: error(value) });
        return z.NEVER;
      }
      return Math.round(ms);
    })
    .nullish()
    .meta({ description, ...(deprecated ? { deprecated: true } : {}) });
}

/**
 * An optional size in bytes, `null` counting as absent: a size string (`64MiB`, `512KiB`) or a bare
 * number of MiB (a YAML number or a string of digits; fractions allowed).
 */
function optionalSize(where: string, description: string, maxMiB: number, deprecated = false) {
  const error = (input: unknown): string => `${where} must be a size from 0 to ${formatSize(maxMiB * MiB)} (e.g. 64MiB, 512KiB; a bare number is MiB), got ${JSON.stringify(input)}`;
  const issue = (iss: Issue): string => error(iss.input);
  return z
    .union([z.number({ error: issue }).min(0, { error: issue }).max(maxMiB, { error: issue }), z.string({ error: issue }).regex(SIZE_PATTERN, { error: issue })], { error: issue })
    .transform((value, ctx) => {
      const bytes = typeof value === "number" ? Math.round(value * MiB) : parseSize(value, MiB);
      if (bytes === undefined || bytes > maxMiB * MiB) {
        ctx.addIssue({ code: "custom", message: error(value) });
        return z.NEVER;
      }
      return bytes;
    })
    .nullish()
    .meta({ description, ...(deprecated ? { deprecated: true } : {}) });
}

/** A key and its old name, which is accepted as an alias: both with the same syntax. */
function renamed<const K extends string, const A extends string, T extends z.ZodType>(
  key: K,
  alias: A,
  make: (where: string, description: string, deprecated: boolean) => T,
  where: string,
  description: string,
): Record<K | A, T> {
  const at = where === "" ? "" : `${where}.`;
  return { [key]: make(`${at}${key}`, description, false), [alias]: make(`${at}${alias}`, `The old name of ${key}, accepted as an alias.`, true) } as Record<K | A, T>;
}

/** The Init configuration of a plugin: values are strings (numbers and booleans are turned into strings). */
function pluginConfigSchema(where: string) {
  return z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean()]), { error: `${where} must be a map of configuration keys to values` })
    .nullish()
    .meta({ description: "The Init configuration of the plugin. Values are strings (numbers and booleans are turned into strings); ${env:NAME} is replaced by the environment variable's value." });
}

/** A PersistentVolume template: a map, or a JSON string, with `${volumeId}` where the volume ID goes. */
function pvTemplateSchema(where: string, description: string) {
  return z
    .union([z.string(), z.record(z.string(), z.unknown())], { error: `${where} must be a PersistentVolume object (YAML or a JSON string)` })
    .nullish()
    .meta({ description });
}

/** The `objectStore` section. */
const objectStoreSchema = z
  .strictObject(
    {
      plugin: optionalString("objectStore.plugin", "Name of the plugin under test; optional when the executable serves one object store."),
      config: pluginConfigSchema("objectStore.config"),
      bucket: requiredString("objectStore.bucket", "The bucket the cases write into (under the run prefix). It must exist, unless the configuration opts in to creating it (contract 5.0.3)."),
      missingBucket: optionalString("objectStore.missingBucket", "A well-formed bucket name that does not exist (default stowage-conformance-missing-<runid>)."),
      ...renamed("largeObjectSize", "largeObjectMiB", (w, d, old) => optionalSize(w, d, 1024 * 1024, old), "objectStore", "Size of the large streamed object: a size (64MiB) or a number of MiB (default: the top-level largeObjectSize, else 64MiB)."),
      paginationKeys: optionalNumber("objectStore.paginationKeys", "Number of keys in the pagination case, at least 1001 (default 1010).", 1001, 100_000, true),
      concurrency: optionalNumber("objectStore.concurrency", "Number of parallel puts in the concurrency cases (default 8).", 2, 256, true),
      ...renamed(
        "signedUrlExpiryGrace",
        "signedUrlExpiryGraceSeconds",
        (w, d, old) => optionalDuration(w, d, 0, 600, old),
        "objectStore",
        "Extra wait after a signed URL's expires_at before it must be refused: a duration (2s) or seconds (default 2s; the contract allows up to 60s).",
      ),
      ...renamed("cancelGrace", "cancelGraceSeconds", (w, d, old) => optionalDuration(w, d, 0.1, 600, old), "objectStore", "Time a plugin has to release what a cancelled call held: a duration (5s) or seconds (default 5s, clause 2.4.2)."),
      lockBucket: optionalString(
        "objectStore.lockBucket",
        "A bucket where objects can be protected (contract 5.9: S3/MinIO Object Lock, Azure version-level immutability, GCS object retention), for the OS-LOCK-* cases. Without it, a plugin announcing OBJECT_LOCK has those cases reported as skipped, with the reason. Objects there get retentions of lockRetention, compliance ones included: they cannot be removed before it ends.",
      ),
      plainBucket: optionalString("objectStore.plainBucket", "A bucket that cannot hold protected objects, for OS-LOCK-NOT-LOCKABLE (default: bucket, when the plugin reports it not lockable)."),
      lockRetention: optionalDuration(
        "objectStore.lockRetention",
        "The retention the OS-LOCK-* cases give objects: a duration (3s) or seconds, from 1s to 20s (default 3s). The cases wait for it to end before they delete compliance-protected objects, within their time limits and the 30s each removal has; raise it when the store's clock and the kit's differ by about a second.",
        1,
        20,
      ),
    },
    { error: "objectStore must be a map" },
  )
  .meta({ description: "Settings for object-store runs." });

/** The `blockStore` section. */
const blockStoreSchema = z
  .strictObject(
    {
      plugin: optionalString("blockStore.plugin", "Name of the plugin under test; optional when the executable serves one block store."),
      config: pluginConfigSchema("blockStore.config"),
      volumeId: requiredString("blockStore.volumeId", "An existing volume the kit snapshots (never modified)."),
      zone: optionalString("blockStore.zone", "The volume's zone (empty: let the plugin decide)."),
      volumeType: optionalString("blockStore.volumeType", "Volume type requested for restored volumes (default: the backend's default)."),
      iops: optionalNumber("blockStore.iops", "IOPS requested for restored volumes (default: not set).", 0, Number.MAX_SAFE_INTEGER, true),
      missingVolumeId: optionalString("blockStore.missingVolumeId", "A well-formed volume ID that does not exist; cases that need it are skipped without it."),
      missingSnapshotId: optionalString("blockStore.missingSnapshotId", "A well-formed snapshot ID that does not exist; cases that need it are skipped without it."),
      ...renamed("snapshotReadyTimeout", "snapshotReadyTimeoutSeconds", (w, d, old) => optionalDuration(w, d, 0.1, 86_400, old), "blockStore", "How long a snapshot may take to become ready: a duration (10m) or seconds (default 10m)."),
      ...renamed("pollInterval", "pollIntervalSeconds", (w, d, old) => optionalDuration(w, d, 0.01, 600, old), "blockStore", "Pause between polls of a pending snapshot: a duration (1s, 250ms) or seconds (default 1s)."),
      pvTemplates: z
        .strictObject(
          {
            inTree: pvTemplateSchema("blockStore.pvTemplates.inTree", "An in-tree volume source (for example awsElasticBlockStore, or local for the local plugin), with ${volumeId} where the volume ID goes."),
            csi: pvTemplateSchema("blockStore.pvTemplates.csi", "A CSI source with this plugin's driver, with ${volumeId} where the volume ID goes."),
          },
          { error: "blockStore.pvTemplates must be a map with inTree and/or csi" },
        )
        .nullish()
        .meta({ description: "PersistentVolumes this plugin owns, with ${volumeId} where the volume ID goes." }),
    },
    { error: "blockStore must be a map" },
  )
  .meta({ description: "Settings for block-store runs." });

/**
 * The schema of the whole configuration (`conformance.yaml`), in zod: the source of
 * `conformanceJsonSchema` and of every check of {@link checkConfig}.
 */
export const conformanceConfigSchema = z
  .strictObject(
    {
      objectStore: objectStoreSchema.optional(),
      blockStore: blockStoreSchema.optional(),
      ...renamed("largeObjectSize", "largeObjectMiB", (w, d, old) => optionalSize(w, d, 1024 * 1024, old), "", "Default size of the large streamed object: a size (64MiB) or a number of MiB (default 64MiB)."),
      ...renamed("startTimeout", "startTimeoutSeconds", (w, d, old) => optionalDuration(w, d, 1, 3600, old), "", "Time a plugin has to complete its handshake: a duration (30s) or seconds (default 30s)."),
    },
    { error: "the configuration must be a map with objectStore and/or blockStore" },
  )
  .meta({ title: "Stowage conformance kit configuration", description: "The configuration of `stowage conformance --config` and of the kit's library calls." });

/** The JSON Schema (draft 2020-12) of `conformance.yaml`, generated from the kit's zod schema (`conformanceConfigSchema`). */
export function conformanceJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(conformanceConfigSchema, { io: "input" });
}

/** The message of a zod issue, in the kit's words: the path, what is wrong, what is valid. */
function describeIssue(issue: z.core.$ZodIssue, shapeAt: (path: readonly PropertyKey[]) => readonly string[]): string {
  const where = issue.path.length === 0 ? "the configuration" : issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    return `${where} has unknown keys [${issue.keys.join(", ")}]; valid keys are [${shapeAt(issue.path).join(", ")}]`;
  }
  if (issue.path.length === 3 && issue.path[1] === "config") return `${where} must be a string, number or boolean`;
  return issue.message;
}

function keysAt(path: readonly PropertyKey[]): readonly string[] {
  let schema: z.ZodType = conformanceConfigSchema;
  for (const key of path) {
    let inner: unknown = schema;
    while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) inner = (inner as z.ZodOptional).unwrap();
    if (!(inner instanceof z.ZodObject)) return [];
    schema = (inner.shape as Record<string, z.ZodType>)[String(key)] ?? z.never();
  }
  while (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable) schema = (schema as z.ZodOptional).unwrap() as z.ZodType;
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, prefix: readonly PropertyKey[] = []): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue === undefined) throw new ConfigError("the configuration is invalid");
  throw new ConfigError(describeIssue({ ...issue, path: [...prefix, ...issue.path] }, keysAt));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Replaces `${env:NAME}` by the environment variable's value; a missing variable is an error. */
function expandEnv(where: string, text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_match, name: string) => {
    const value = env[name];
    if (value === undefined) throw new ConfigError(`${where} uses \${env:${name}}, but the environment variable ${name} is not set`);
    return value;
  });
}

function pluginConfig(where: string, value: unknown, env: NodeJS.ProcessEnv): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) throw new ConfigError(`${where} must be a map of configuration keys to values`);
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(value)) {
    if (typeof raw === "string") out[key] = expandEnv(`${where}.${key}`, raw, env);
    else if (typeof raw === "number" || typeof raw === "boolean") out[key] = String(raw);
    else throw new ConfigError(`${where}.${key} must be a string, number or boolean`);
  }
  return out;
}

function pvTemplate(where: string, value: unknown): PersistentVolumeTemplate | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch (error) {
      throw new ConfigError(`${where} is not valid JSON: ${(error as Error).message}`);
    }
    return pvTemplate(where, parsed);
  }
  if (!isRecord(value)) throw new ConfigError(`${where} must be a PersistentVolume object (YAML or a JSON string)`);
  if (!JSON.stringify(value).includes("${volumeId}")) throw new ConfigError(`${where} must contain the placeholder \${volumeId} where the volume ID goes`);
  return value;
}

/** Options of {@link resolveObjectStoreSettings} and {@link resolveBlockStoreSettings}. */
export interface ResolveOptions {
  /** Run ID (names the default missing bucket). */
  readonly runId: string;
  /** Environment for `${env:NAME}` (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/**
 * The value of a key or of its alias (the old name), already parsed; both set to different values
 * is an error naming both.
 */
function either(section: Readonly<Record<string, unknown>>, key: string, alias: string, where: string): number | undefined {
  const value = section[key] ?? undefined;
  const old = section[alias] ?? undefined;
  if (value !== undefined && old !== undefined && value !== old) {
    const at = where === "" ? "" : `${where}.`;
    throw new ConfigError(`${at}${key} and its alias ${at}${alias} are both set, to different values; keep only ${at}${key}`);
  }
  return (value ?? old) as number | undefined;
}

/** The time a plugin has to complete its handshake, in milliseconds (`startTimeout`, default 30 s). */
export function resolveStartTimeoutMs(config: ConformanceConfig): number {
  const top = parseWith(conformanceConfigSchema.pick({ startTimeout: true, startTimeoutSeconds: true }), { startTimeout: config.startTimeout, startTimeoutSeconds: config.startTimeoutSeconds });
  return either(top, "startTimeout", "startTimeoutSeconds", "") ?? 30_000;
}

/** Checks a configuration against the kit's zod schema (`conformanceConfigSchema`) and resolves every section once. */
export function checkConfig(config: unknown): ConformanceConfig {
  parseWith(conformanceConfigSchema, config);
  const checked = config as ConformanceConfig;
  // Resolve every section once so that wrong values are reported before anything is launched.
  resolveStartTimeoutMs(checked);
  if (checked.objectStore !== undefined) resolveObjectStoreSettings(checked, { runId: "check" });
  if (checked.blockStore !== undefined) resolveBlockStoreSettings(checked, { runId: "check" });
  return checked;
}

/** The kinds a configuration has settings for. */
export function configuredKinds(config: ConformanceConfig): PluginKind[] {
  const kinds: PluginKind[] = [];
  if (config.objectStore !== undefined) kinds.push("object-store");
  if (config.blockStore !== undefined) kinds.push("block-store");
  return kinds;
}

/** Resolves the `objectStore` section; throws {@link ConfigError} when it is missing or wrong. */
export function resolveObjectStoreSettings(config: ConformanceConfig, options: ResolveOptions): ObjectStoreSettings {
  const raw: unknown = config.objectStore;
  if (!isRecord(raw)) throw new ConfigError("the configuration has no objectStore section; add one (plugin, config, bucket) to test an object store");
  const section = parseWith(objectStoreSchema, raw, ["objectStore"]);
  const top = parseWith(conformanceConfigSchema.pick({ largeObjectSize: true, largeObjectMiB: true }), { largeObjectSize: config.largeObjectSize, largeObjectMiB: config.largeObjectMiB });
  const env = options.env ?? process.env;
  const largeObjectBytes = either(section, "largeObjectSize", "largeObjectMiB", "objectStore") ?? either(top, "largeObjectSize", "largeObjectMiB", "") ?? 64 * MiB;
  return {
    plugin: section.plugin ?? undefined,
    config: pluginConfig("objectStore.config", section.config, env),
    bucket: section.bucket,
    missingBucket: section.missingBucket ?? `stowage-conformance-missing-${options.runId.slice(-4)}`,
    largeObjectBytes,
    paginationKeys: section.paginationKeys ?? 1010,
    concurrency: section.concurrency ?? 8,
    signedUrlExpiryGraceMs: either(section, "signedUrlExpiryGrace", "signedUrlExpiryGraceSeconds", "objectStore") ?? 2000,
    cancelGraceMs: either(section, "cancelGrace", "cancelGraceSeconds", "objectStore") ?? 5000,
    lockBucket: section.lockBucket ?? undefined,
    plainBucket: section.plainBucket ?? undefined,
    lockRetentionMs: section.lockRetention ?? 3000,
  };
}

/** Resolves the `blockStore` section; throws {@link ConfigError} when it is missing or wrong. */
export function resolveBlockStoreSettings(config: ConformanceConfig, options: ResolveOptions): BlockStoreSettings {
  const raw: unknown = config.blockStore;
  if (!isRecord(raw)) throw new ConfigError("the configuration has no blockStore section; add one (plugin, config, volumeId) to test a block store");
  const section = parseWith(blockStoreSchema, raw, ["blockStore"]);
  const env = options.env ?? process.env;
  return {
    plugin: section.plugin ?? undefined,
    config: pluginConfig("blockStore.config", section.config, env),
    volumeId: section.volumeId,
    zone: section.zone ?? "",
    volumeType: section.volumeType ?? undefined,
    iops: section.iops ?? undefined,
    missingVolumeId: section.missingVolumeId ?? undefined,
    missingSnapshotId: section.missingSnapshotId ?? undefined,
    snapshotReadyTimeoutMs: either(section, "snapshotReadyTimeout", "snapshotReadyTimeoutSeconds", "blockStore") ?? 600_000,
    pollIntervalMs: either(section, "pollInterval", "pollIntervalSeconds", "blockStore") ?? 1000,
    pvTemplates: {
      inTree: pvTemplate("blockStore.pvTemplates.inTree", section.pvTemplates?.inTree),
      csi: pvTemplate("blockStore.pvTemplates.csi", section.pvTemplates?.csi),
    },
  };
}

/** Parses YAML text into a checked configuration. */
export function parseConfig(text: string, source = "the configuration"): ConformanceConfig {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (error) {
    if (error instanceof YAMLParseError) throw new ConfigError(`${source} is not valid YAML: ${error.message}`);
    throw error;
  }
  try {
    return checkConfig(value ?? {});
  } catch (error) {
    if (error instanceof ConfigError) throw new ConfigError(`${source}: ${error.message}`);
    throw error;
  }
}

/** Reads and checks a YAML (or JSON) configuration file. */
export async function loadConfigFile(path: string): Promise<ConformanceConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read the configuration file ${path}: ${(error as Error).message}`);
  }
  return parseConfig(text, path);
}
