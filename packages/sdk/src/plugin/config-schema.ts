/**
 * One declaration per plugin configuration: {@link defineConfig} turns a map of key declarations
 * into the parsed and typed settings, the `INVALID_CONFIG` errors that name the key at fault, the
 * defaults, the `ConfigKeySpec` list the plugin reports, the Markdown table of its docs and a JSON
 * Schema. Values are validated with zod; the value builders ({@link text}, {@link flag},
 * {@link integer}, {@link size}, {@link duration}, {@link oneOf}, {@link url}) give every plugin the
 * same syntaxes and messages.
 *
 * @packageDocumentation
 */
import * as z from "zod";
import { StowageError } from "../errors.js";
import type { ConfigKeySpec, PluginConfig } from "../types.js";
import { validateConfig } from "./config.js";
import { formatDuration, formatSize, invalidConfig, parseDuration, parseSize, trimmed, type BareDurationUnit } from "./config-values.js";

/** The zod schema of one value: it reads the raw string (or `undefined` when the key is absent). */
export type ConfigValueSchema<T> = z.ZodType<T, string | undefined>;

/** How one key's value is read: a value builder's result. */
export interface ConfigValue<T> {
  /** Builds the value's schema; `key` is the canonical key name, for messages. */
  readonly schema: (key: string) => ConfigValueSchema<T>;
  /** The syntax, for the docs table (`string`, `boolean`, `size`, `duration`, …). */
  readonly syntax: string;
  /** The default, in the key's syntax, for the docs table and the JSON Schema, when there is one. */
  readonly defaultText?: string | undefined;
}

/** One configuration key. */
export interface ConfigKeyDeclaration<T> {
  /** How the value is read. */
  readonly value: ConfigValue<T>;
  /** What it does; reported in the plugin's `ConfigKeySpec` and shown in the docs. */
  readonly description: string;
  /** Longer text for the docs table, when it says more than {@link description}. */
  readonly docs?: string | undefined;
  /** The default as the docs show it, when the value builder's is not the whole story (`discovered`, `SDK chain`). */
  readonly default?: string | undefined;
  /** `init` fails when it is missing or empty. */
  readonly required?: boolean | undefined;
  /** The value is a secret: never logged (see `redactConfig`). */
  readonly secret?: boolean | undefined;
  /**
   * Other names accepted for this key (old names, such as a unit-suffixed `requestTimeoutSeconds`,
   * or the upstream plugins' names); the reported spec names only the canonical key, the docs table
   * and the JSON Schema list the aliases as such. A bad value given under an alias is reported
   * under the alias, the name the configuration used.
   */
  readonly aliases?: readonly string[] | undefined;
}

/** A map of key names to declarations, in the order the plugin reports them. */
export type ConfigDeclarations = Readonly<Record<string, ConfigKeyDeclaration<unknown>>>;

/** The parsed settings of a {@link ConfigSchema}: one typed value per key. */
export type ConfigValues<D extends ConfigDeclarations> = { readonly [K in keyof D]: D[K] extends ConfigKeyDeclaration<infer T> ? T : never };

/** What {@link defineConfig} returns. */
export interface ConfigSchema<D extends ConfigDeclarations> {
  /** The declarations (spread them into another plugin's {@link defineConfig} to share keys). */
  readonly declarations: D;
  /** The keys the plugin reports (`configKeys` of its definition), in declaration order. */
  readonly keys: readonly ConfigKeySpec[];
  /** The zod object of the whole configuration (input: the map of strings). */
  readonly zod: z.ZodType<ConfigValues<D>, Readonly<Record<string, string | undefined>>>;
  /**
   * Checks and parses `config`: aliases are renamed to their key, unknown and missing required keys
   * fail as `validateConfig` reports them (the valid keys it lists include the aliases, which are
   * accepted keys too), then every value is read. Errors are
   * `INVALID_ARGUMENT`/`INVALID_CONFIG` with the key in metadata `key`: the name the configuration
   * used, an alias included.
   */
  parse(config: PluginConfig): ConfigValues<D>;
  /** `config` with aliases renamed to their canonical key (an alias and its key set to different values fail). */
  canonical(config: PluginConfig): Record<string, string>;
  /** A JSON Schema (draft 2020-12) of the configuration map. */
  jsonSchema(): Record<string, unknown>;
  /** The Markdown table of the keys for the docs: key (and aliases), default, description. */
  docsTable(): string;
}

function fail(ctx: z.core.$RefinementCtx, message: string): never {
  ctx.addIssue({ code: "custom", message });
  return z.NEVER;
}

const optionalString = (): z.ZodOptional<z.ZodString> => z.string().optional();

/** Options of {@link text}. */
export interface TextOptions {
  /** The value must match this. */
  readonly pattern?: RegExp | undefined;
  /** The message when it does not (given the canonical key and the trimmed value). */
  readonly invalid?: ((key: string, value: string) => string) | undefined;
}

/** A string, trimmed; `undefined` when absent or empty. */
export function text(options: TextOptions = {}): ConfigValue<string | undefined> {
  return {
    syntax: "string",
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = trimmed(raw);
        if (value !== undefined && options.pattern !== undefined && !options.pattern.test(value)) {
          return fail(ctx, options.invalid?.(key, value) ?? `${key} ${JSON.stringify(value)} does not match ${String(options.pattern)}`);
        }
        return value;
      }),
  };
}

/** A boolean: `true`/`false` (any case) or `1`/`0`; the default when absent or empty. */
export function flag(defaultValue: boolean): ConfigValue<boolean>;
/** A boolean with no default: `undefined` when absent or empty. */
export function flag(defaultValue?: undefined): ConfigValue<boolean | undefined>;
export function flag(defaultValue?: boolean): ConfigValue<boolean | undefined> {
  return {
    syntax: "boolean",
    defaultText: defaultValue === undefined ? undefined : String(defaultValue),
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = (raw ?? "").trim().toLowerCase();
        if (value === "") return defaultValue;
        if (value === "true" || value === "1") return true;
        if (value === "false" || value === "0") return false;
        return fail(ctx, `config key ${key} must be true or false, got ${JSON.stringify(raw)}`);
      }),
  };
}

/** Options of {@link integer}. */
export interface IntegerOptions {
  /** The value when absent or empty. */
  readonly default: number;
  /** Smallest value. */
  readonly min?: number | undefined;
  /** Largest value. */
  readonly max?: number | undefined;
  /** The message of an out-of-range value. */
  readonly outOfRange?: ((key: string, value: number) => string) | undefined;
}

/** A non-negative whole number (digits only). */
export function integer(options: IntegerOptions): ConfigValue<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = options;
  return {
    syntax: "integer",
    defaultText: String(options.default),
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = (raw ?? "").trim();
        if (value === "") return options.default;
        if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) return fail(ctx, `config key ${key} must be a non-negative integer, got ${JSON.stringify(raw)}`);
        const n = Number(value);
        if (n < min || n > max) return fail(ctx, options.outOfRange?.(key, n) ?? `${key} must be ${String(min)} to ${String(max)}, got ${String(n)}`);
        return n;
      }),
  };
}

/** Options of {@link size}. */
export interface SizeOptions {
  /** The value in bytes when absent or empty. */
  readonly default: number;
  /** Smallest value in bytes. */
  readonly min?: number | undefined;
  /** Largest value in bytes. */
  readonly max?: number | undefined;
  /** The value must be a multiple of this. */
  readonly multipleOf?: number | undefined;
  /**
   * Bytes per unit of a bare number: the key's historical unit. Default 1 (a bare number is bytes);
   * `1024 ** 2` for a key that was counted in MiB (a bare number may then have a fraction).
   */
  readonly bareUnit?: number | undefined;
  /** The message of a value that is no size or out of range (given the trimmed text). */
  readonly invalid?: ((key: string, value: string) => string) | undefined;
}

const BARE_SIZE_UNITS: Readonly<Record<number, string>> = { 1024: "KiB", [1024 ** 2]: "MiB", [1024 ** 3]: "GiB" };

/** A byte size in the shared syntax (see `parseSize`), in bytes. */
export function size(options: SizeOptions): ConfigValue<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, multipleOf = 1, bareUnit = 1 } = options;
  const bareName = bareUnit === 1 ? "bytes" : (BARE_SIZE_UNITS[bareUnit] ?? `${String(bareUnit)} bytes`);
  return {
    syntax: bareUnit === 1 ? "size" : `size (bare number: ${bareName})`,
    defaultText: formatSize(options.default),
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = trimmed(raw);
        if (value === undefined) return options.default;
        const bytes = parseSize(value, bareUnit);
        if (bytes === undefined || bytes < min || bytes > max || bytes % multipleOf !== 0) {
          return fail(
            ctx,
            options.invalid?.(key, value) ??
              `${key} must be a size${min === 0 && max === Number.MAX_SAFE_INTEGER ? "" : ` from ${formatSize(min)} to ${formatSize(max)}`}${multipleOf > 1 ? `, a multiple of ${formatSize(multipleOf)}` : ""} (${bareName}, or with a KiB/MiB/GiB suffix), got ${JSON.stringify(value)}`,
          );
        }
        return bytes;
      }),
  };
}

/** Options of {@link duration}. */
export interface DurationOptions {
  /** The value in milliseconds when absent or empty. */
  readonly default: number;
  /** The unit of a bare number, the key's historical unit: `s` (keys once named `…Seconds`, `apiTimeout`) or `ms` (keys once named `…Ms`). */
  readonly bareUnit?: BareDurationUnit | undefined;
  /** Accept only whole bare numbers (keys that were integers). Default false. */
  readonly bareIntegerOnly?: boolean | undefined;
  /** Shortest duration in milliseconds. */
  readonly min?: number | undefined;
  /** Longest duration in milliseconds. */
  readonly max?: number | undefined;
  /** The message of a value that is no duration. */
  readonly invalid?: ((key: string, value: string) => string) | undefined;
  /** The message of a value out of range. */
  readonly outOfRange?: ((key: string, value: string, ms: number) => string) | undefined;
}

/**
 * A duration in milliseconds: a Go/Kubernetes duration (`30s`, `5m`, `1h30m`, `500ms`) or a bare
 * number in the key's historical unit (see `parseDuration`). Name such a key without a unit
 * (`requestTimeout`, not `requestTimeoutSeconds`); an old unit-suffixed name goes in `aliases`.
 */
export function duration(options: DurationOptions): ConfigValue<number> {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, bareUnit = "s" } = options;
  return {
    syntax: `duration (bare number: ${bareUnit === "s" ? "seconds" : "milliseconds"})`,
    defaultText: formatDuration(options.default),
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = trimmed(raw);
        if (value === undefined) return options.default;
        const ms = parseDuration(value, bareUnit, options.bareIntegerOnly ?? false);
        if (ms === undefined) {
          return fail(ctx, options.invalid?.(key, value) ?? `${key} ${JSON.stringify(value)} is not a duration; use e.g. 90s, 2m or 1h30m`);
        }
        if (ms < min || ms > max) {
          return fail(ctx, options.outOfRange?.(key, value, ms) ?? `${key} ${JSON.stringify(value)} must be from ${formatDuration(min)} to ${formatDuration(max)}`);
        }
        return ms;
      }),
  };
}

/** Options of {@link oneOf}. */
export interface OneOfOptions {
  /** Compare without letter case; the result is the listed spelling. */
  readonly ignoreCase?: boolean | undefined;
  /** The message of another value (given the trimmed text and the allowed values). */
  readonly invalid?: ((key: string, value: string, allowed: readonly string[]) => string) | undefined;
}

/** One of a fixed list of strings; `undefined` when absent or empty. */
export function oneOf<const V extends string>(values: readonly V[], options: OneOfOptions = {}): ConfigValue<V | undefined> {
  return {
    syntax: `one of ${values.map((v) => `\`${v}\``).join(", ")}`,
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = trimmed(raw);
        if (value === undefined) return undefined;
        const found = values.find((v) => (options.ignoreCase === true ? v.toLowerCase() === value.toLowerCase() : v === value));
        if (found === undefined) return fail(ctx, options.invalid?.(key, value, values) ?? `${key} ${JSON.stringify(value)} is not one of [${values.join(", ")}]`);
        return found;
      }),
  };
}

/** Options of {@link url}. */
export interface UrlOptions {
  /** Allowed schemes, without the colon. Default `http` and `https`. */
  readonly schemes?: readonly string[] | undefined;
  /** A value without a scheme (a bare host) gets `https://`. Default false. */
  readonly bareHost?: boolean | undefined;
  /** Refuse a query or fragment. Default false. */
  readonly noQuery?: boolean | undefined;
  /** An example for messages, e.g. `https://s3.example.com`. */
  readonly example: string;
  /** The message of a disallowed scheme. */
  readonly badScheme?: ((key: string, value: string) => string) | undefined;
  /** The message of a query or fragment. */
  readonly hasQuery?: ((key: string, value: string) => string) | undefined;
}

/** An absolute URL, returned without trailing slashes; `undefined` when absent or empty. */
export function url(options: UrlOptions): ConfigValue<string | undefined> {
  const schemes = options.schemes ?? ["http", "https"];
  return {
    syntax: `${schemes.join(" or ")} URL`,
    schema: (key) =>
      optionalString().transform((raw, ctx) => {
        const value = trimmed(raw);
        if (value === undefined) return undefined;
        const full = options.bareHost === true && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? `https://${value}` : value;
        let parsed: URL;
        try {
          parsed = new URL(full);
        } catch {
          return fail(ctx, `${key} ${JSON.stringify(value)} is not a URL${options.bareHost === true ? " or host name" : ""}; use e.g. ${options.example}`);
        }
        if (!schemes.includes(parsed.protocol.slice(0, -1))) {
          return fail(ctx, options.badScheme?.(key, value) ?? `${key} ${JSON.stringify(value)} must use the ${schemes.join(" or ")} scheme`);
        }
        if (options.noQuery === true && (parsed.search !== "" || parsed.hash !== "")) {
          return fail(ctx, options.hasQuery?.(key, value) ?? `${key} ${JSON.stringify(value)} must not have a query or fragment`);
        }
        return full.replace(/\/+$/, "");
      }),
  };
}

/** Options of {@link custom}. */
export interface CustomOptions<T> {
  /** The syntax, for the docs table. */
  readonly syntax: string;
  /** The default, in the key's syntax, for the docs. */
  readonly defaultText?: string | undefined;
  /**
   * Reads the trimmed value (`undefined` when absent or empty). Throw `invalidConfig(key, message)`
   * for a bad value: the error reaches the caller of `parse` as it is.
   */
  readonly parse: (value: string | undefined, key: string) => T;
}

/** A value with the plugin's own syntax (a mode, a list of tags), read by `options.parse`. */
export function custom<T>(options: CustomOptions<T>): ConfigValue<T> {
  return {
    syntax: options.syntax,
    defaultText: options.defaultText,
    schema: (key) => optionalString().transform((raw) => options.parse(trimmed(raw), key)),
  };
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

/**
 * Declares a plugin's configuration once. The order of `declarations` is the order of the reported
 * keys and of the docs table.
 *
 * @example
 * ```ts
 * const CONFIG = defineConfig({
 *   root: { value: text(), required: true, description: "Directory of the buckets." },
 *   partSize: { value: size({ default: 8 * 1024 ** 2, min: 5 * 1024 ** 2 }), description: "Part size." },
 *   requestTimeout: { value: duration({ default: 120_000 }), aliases: ["requestTimeoutSeconds"], description: "…" },
 * });
 * defineObjectStore({ …, configKeys: CONFIG.keys });
 * const settings = CONFIG.parse(config); // { root: string | undefined; partSize: number; requestTimeout: number }
 * ```
 */
export function defineConfig<const D extends ConfigDeclarations>(declarations: D): ConfigSchema<D> {
  const entries = Object.entries(declarations);
  const keys: ConfigKeySpec[] = entries.map(([name, d]) => ({
    name,
    description: d.description,
    ...(d.required === true ? { required: true } : {}),
    ...(d.secret === true ? { secret: true } : {}),
  }));
  const aliasOf = new Map<string, string>();
  for (const [name, d] of entries) {
    // Secrets are redacted by the names the plugin reports, which are the canonical ones only.
    if (d.secret === true && (d.aliases ?? []).length > 0) throw new Error(`config key ${name} is secret and cannot have aliases`);
    for (const alias of d.aliases ?? []) {
      if (alias in declarations || aliasOf.has(alias)) throw new Error(`config alias ${alias} of ${name} is already a key or an alias`);
      aliasOf.set(alias, name);
    }
  }
  // Every accepted name, for the valid_keys of an unknown key's error (contract 5.1.1): aliases too.
  const accepted: ConfigKeySpec[] = [...keys, ...[...aliasOf.keys()].map((name) => ({ name }))];
  const shape: Record<string, ConfigValueSchema<unknown>> = {};
  for (const [name, d] of entries) shape[name] = d.value.schema(name).meta({ description: d.docs ?? d.description });
  const object = z.object(shape) as unknown as ConfigSchema<D>["zod"];

  /** Whether two texts read as the same value (`90s` and `90` for a duration in seconds). */
  const sameValue = (d: ConfigKeyDeclaration<unknown>, a: string, b: string): boolean => {
    try {
      const schema = d.value.schema("");
      const [x, y] = [schema.safeParse(a), schema.safeParse(b)];
      return x.success && y.success && JSON.stringify(x.data) === JSON.stringify(y.data);
    } catch {
      return false;
    }
  };

  /** `config` with aliases renamed, and for each key set under an alias, the alias it came from. */
  const rename = (config: PluginConfig): { named: Record<string, string>; from: Map<string, string> } => {
    const named: Record<string, string> = {};
    const from = new Map<string, string>();
    for (const [k, v] of Object.entries(config)) if (!aliasOf.has(k)) named[k] = v;
    const value = (k: string): string => (config[k] ?? "").trim();
    for (const [name, d] of entries) {
      const aliases = (d.aliases ?? []).filter((a) => Object.hasOwn(config, a));
      if (aliases.length === 0) continue;
      const given = [...(Object.hasOwn(config, name) ? [name] : []), ...aliases];
      // The first name with a value: the canonical key, else the aliases in declaration order.
      const chosen = given.find((g) => value(g) !== "") ?? given[0] ?? name;
      const other = given.find((g) => value(g) !== "" && value(g) !== value(chosen) && !sameValue(d, value(g), value(chosen)));
      if (other !== undefined) {
        throw invalidConfig(
          name,
          chosen === name
            ? `${name} and its alias ${other} are both set, to different values; keep only ${name}`
            : `${name}'s aliases ${chosen} and ${other} are both set, to different values; keep only ${name}`,
        );
      }
      named[name] = config[chosen] ?? "";
      if (chosen !== name) from.set(name, chosen);
    }
    return { named, from };
  };

  return {
    declarations,
    keys,
    zod: object,
    canonical: (config) => rename(config).named,
    parse(config) {
      const { named, from } = rename(config);
      validateConfig(named, accepted);
      // A value set under an alias that fails is read again under the alias, so that the error
      // names the key the configuration used (custom values throw their own errors).
      const underAlias = (key: string): void => {
        const alias = from.get(key);
        const declaration = declarations[key];
        if (alias === undefined || declaration === undefined) return;
        const again = declaration.value.schema(alias).safeParse(named[key]);
        if (!again.success) throw invalidConfig(alias, again.error.issues[0]?.message ?? `config key ${alias} is invalid`);
      };
      let result: ReturnType<typeof object.safeParse>;
      try {
        result = object.safeParse(named);
      } catch (error) {
        if (error instanceof StowageError && error.metadata.key !== undefined) underAlias(error.metadata.key);
        throw error;
      }
      if (result.success) return result.data;
      const issue = result.error.issues[0];
      const key = String(issue?.path[0] ?? "");
      underAlias(key);
      throw invalidConfig(key, issue?.message ?? `config key ${key} is invalid`);
    },
    jsonSchema() {
      const schema = z.toJSONSchema(object, { io: "input", unrepresentable: "any" }) as Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
      for (const [name, d] of entries) {
        const property = schema.properties[name] ?? {};
        const defaultText = d.default ?? d.value.defaultText;
        schema.properties[name] = { ...property, ...(defaultText === undefined ? {} : { default: defaultText }), ...(d.secret === true ? { writeOnly: true } : {}) };
        for (const alias of d.aliases ?? []) schema.properties[alias] = { type: "string", description: `Alias of ${name}.`, deprecated: true };
      }
      const required = entries.filter(([, d]) => d.required === true && (d.aliases ?? []).length === 0).map(([name]) => name);
      delete schema.required;
      return { ...schema, ...(required.length > 0 ? { required } : {}), additionalProperties: false };
    },
    docsTable() {
      const rows = entries.map(([name, d]) => {
        const names = [`\`${name}\``, ...(d.aliases ?? []).map((a) => `\`${a}\` (alias)`)].join(", ");
        const defaultText = d.required === true ? "(required)" : (d.default ?? (d.value.defaultText === undefined ? "" : `\`${d.value.defaultText}\``));
        return `| ${names} | ${escapeCell(d.value.syntax)} | ${escapeCell(defaultText)} | ${escapeCell(d.docs ?? d.description)} |`;
      });
      return ["| key | syntax | default | description |", "| --- | --- | --- | --- |", ...rows].join("\n");
    },
  };
}

/**
 * Reads one key of a configuration map with a value builder, outside a {@link defineConfig}
 * schema (no unknown-key check); a bad value fails with `INVALID_CONFIG` naming the key.
 */
export function readConfigValue<T>(config: PluginConfig, key: string, value: ConfigValue<T>): T {
  const result = value.schema(key).safeParse(config[key]);
  if (!result.success) throw invalidConfig(key, result.error.issues[0]?.message ?? `config key ${key} is invalid`);
  return result.data;
}

/**
 * Reads a boolean config value: `true`/`false` (any case), `1`/`0`, or the default when absent
 * or empty. Anything else fails with `INVALID_CONFIG`. (The one-key form of {@link flag}.)
 */
export function configBoolean(config: PluginConfig, key: string, defaultValue: boolean): boolean {
  return readConfigValue(config, key, flag(defaultValue));
}

/**
 * Reads a non-negative integer config value, or the default when absent or empty. Anything else
 * fails with `INVALID_CONFIG`. (The one-key form of {@link integer}.)
 */
export function configInteger(config: PluginConfig, key: string, defaultValue: number): number {
  return readConfigValue(config, key, integer({ default: defaultValue }));
}
