/**
 * The kit's configuration: the YAML file the CLI reads (`--config conf.yaml`) and the object
 * library callers pass, which have the same shape. Checked strictly: an unknown key is an error
 * that lists the valid ones, as the contract asks of plugins.
 *
 * @packageDocumentation
 */
import { readFile } from "node:fs/promises";
import type { PluginKind } from "@stowage/sdk";
import { parse as parseYaml, YAMLParseError } from "yaml";

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
  /** Size of the large streamed object in MiB (default: the top-level `largeObjectMiB`, else 64). */
  readonly largeObjectMiB?: number | undefined;
  /** Number of keys in the pagination case, at least 1001 (default 1010). */
  readonly paginationKeys?: number | undefined;
  /** Number of parallel puts in the concurrency cases (default 8). */
  readonly concurrency?: number | undefined;
  /** Extra wait after a signed URL's `expires_at` before it must be refused, in seconds (default 2; the contract allows up to 60). */
  readonly signedUrlExpiryGraceSeconds?: number | undefined;
  /** Time a plugin has to release what a cancelled call held, in seconds (default 5, clause 2.4.2). */
  readonly cancelGraceSeconds?: number | undefined;
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
  /** How long a snapshot may take to become ready, in seconds (default 600). */
  readonly snapshotReadyTimeoutSeconds?: number | undefined;
  /** Pause between polls of a pending snapshot, in seconds (default 1). */
  readonly pollIntervalSeconds?: number | undefined;
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
  /** Default size of the large streamed object, in MiB (default 64). */
  readonly largeObjectMiB?: number | undefined;
  /** Time a plugin has to complete its handshake, in seconds (default 30). */
  readonly startTimeoutSeconds?: number | undefined;
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

const TOP_KEYS = ["objectStore", "blockStore", "largeObjectMiB", "startTimeoutSeconds"];
const OBJECT_KEYS = [
  "plugin",
  "config",
  "bucket",
  "missingBucket",
  "largeObjectMiB",
  "paginationKeys",
  "concurrency",
  "signedUrlExpiryGraceSeconds",
  "cancelGraceSeconds",
];
const BLOCK_KEYS = [
  "plugin",
  "config",
  "volumeId",
  "zone",
  "volumeType",
  "iops",
  "missingVolumeId",
  "missingSnapshotId",
  "snapshotReadyTimeoutSeconds",
  "pollIntervalSeconds",
  "pvTemplates",
];
const PV_KEYS = ["inTree", "csi"];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkKeys(where: string, value: Record<string, unknown>, valid: readonly string[]): void {
  const unknown = Object.keys(value).filter((k) => !valid.includes(k));
  if (unknown.length > 0) {
    throw new ConfigError(`${where} has unknown keys [${unknown.join(", ")}]; valid keys are [${valid.join(", ")}]`);
  }
}

function optionalString(where: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") throw new ConfigError(`${where} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

function requiredString(where: string, value: unknown): string {
  const text = optionalString(where, value);
  if (text === undefined || text === "") throw new ConfigError(`${where} is required`);
  return text;
}

function optionalNumber(where: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER, integer = false): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    throw new ConfigError(`${where} must be ${integer ? "a whole number" : "a number"} from ${String(min)} to ${String(max)}, got ${JSON.stringify(value)}`);
  }
  return value;
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

/** Checks the top level of a configuration (unknown keys, types). */
export function checkConfig(config: unknown): ConformanceConfig {
  if (!isRecord(config)) throw new ConfigError("the configuration must be a map with objectStore and/or blockStore");
  checkKeys("the configuration", config, TOP_KEYS);
  optionalNumber("largeObjectMiB", config.largeObjectMiB, 0, 1024 * 1024);
  optionalNumber("startTimeoutSeconds", config.startTimeoutSeconds, 1, 3600);
  if (config.objectStore !== undefined && !isRecord(config.objectStore)) throw new ConfigError("objectStore must be a map");
  if (config.blockStore !== undefined && !isRecord(config.blockStore)) throw new ConfigError("blockStore must be a map");
  if (isRecord(config.objectStore)) checkKeys("objectStore", config.objectStore, OBJECT_KEYS);
  if (isRecord(config.blockStore)) {
    checkKeys("blockStore", config.blockStore, BLOCK_KEYS);
    if (isRecord(config.blockStore.pvTemplates)) checkKeys("blockStore.pvTemplates", config.blockStore.pvTemplates, PV_KEYS);
  }
  const checked = config as ConformanceConfig;
  // Resolve every section once so that wrong values are reported before anything is launched.
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
  const section: unknown = config.objectStore;
  if (!isRecord(section)) throw new ConfigError("the configuration has no objectStore section; add one (plugin, config, bucket) to test an object store");
  const env = options.env ?? process.env;
  const largeMiB = optionalNumber("objectStore.largeObjectMiB", section.largeObjectMiB, 0, 1024 * 1024) ?? config.largeObjectMiB ?? 64;
  return {
    plugin: optionalString("objectStore.plugin", section.plugin),
    config: pluginConfig("objectStore.config", section.config, env),
    bucket: requiredString("objectStore.bucket", section.bucket),
    missingBucket: optionalString("objectStore.missingBucket", section.missingBucket) ?? `stowage-conformance-missing-${options.runId.slice(-4)}`,
    largeObjectBytes: Math.round(largeMiB * 1024 * 1024),
    paginationKeys: optionalNumber("objectStore.paginationKeys", section.paginationKeys, 1001, 100_000, true) ?? 1010,
    concurrency: optionalNumber("objectStore.concurrency", section.concurrency, 2, 256, true) ?? 8,
    signedUrlExpiryGraceMs: Math.round((optionalNumber("objectStore.signedUrlExpiryGraceSeconds", section.signedUrlExpiryGraceSeconds, 0, 600) ?? 2) * 1000),
    cancelGraceMs: Math.round((optionalNumber("objectStore.cancelGraceSeconds", section.cancelGraceSeconds, 0.1, 600) ?? 5) * 1000),
  };
}

/** Resolves the `blockStore` section; throws {@link ConfigError} when it is missing or wrong. */
export function resolveBlockStoreSettings(config: ConformanceConfig, options: ResolveOptions): BlockStoreSettings {
  const section: unknown = config.blockStore;
  if (!isRecord(section)) throw new ConfigError("the configuration has no blockStore section; add one (plugin, config, volumeId) to test a block store");
  const env = options.env ?? process.env;
  const templates: unknown = section.pvTemplates;
  if (templates !== undefined && templates !== null && !isRecord(templates)) throw new ConfigError("blockStore.pvTemplates must be a map with inTree and/or csi");
  return {
    plugin: optionalString("blockStore.plugin", section.plugin),
    config: pluginConfig("blockStore.config", section.config, env),
    volumeId: requiredString("blockStore.volumeId", section.volumeId),
    zone: optionalString("blockStore.zone", section.zone) ?? "",
    volumeType: optionalString("blockStore.volumeType", section.volumeType),
    iops: optionalNumber("blockStore.iops", section.iops, 0, Number.MAX_SAFE_INTEGER, true),
    missingVolumeId: optionalString("blockStore.missingVolumeId", section.missingVolumeId),
    missingSnapshotId: optionalString("blockStore.missingSnapshotId", section.missingSnapshotId),
    snapshotReadyTimeoutMs: Math.round((optionalNumber("blockStore.snapshotReadyTimeoutSeconds", section.snapshotReadyTimeoutSeconds, 0.1, 86_400) ?? 600) * 1000),
    pollIntervalMs: Math.round((optionalNumber("blockStore.pollIntervalSeconds", section.pollIntervalSeconds, 0.01, 600) ?? 1) * 1000),
    pvTemplates: {
      inTree: pvTemplate("blockStore.pvTemplates.inTree", isRecord(templates) ? templates.inTree : undefined),
      csi: pvTemplate("blockStore.pvTemplates.csi", isRecord(templates) ? templates.csi : undefined),
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
