/**
 * Tags on Azure snapshots and disks. Azure refuses `<`, `>`, `%`, `&`, `\`, `?` and `/` in tag
 * names, while Velero's and Kubernetes' keys use `/` (`velero.io/backup`). Like Velero, the plugin
 * writes such keys with each forbidden character replaced by `-` (`velero.io-backup`); unlike
 * Velero, it also records the original names in reserved tags (`stowage.io-tag-names`, continued in
 * `stowage.io-tag-names.1`, ...), so that reading a snapshot gives back the caller's keys and a
 * tag filter with the original keys finds it. Snapshots written by Velero (rewritten keys, no
 * record) match a filter through the rewritten form.
 *
 * @packageDocumentation
 */
import { Code, StowageError } from "@stowage/sdk";

/** Name of the first reserved tag recording rewritten tag names. */
export const TAG_NAMES_TAG = "stowage.io-tag-names";
const FORBIDDEN = /[<>%&\\?/]/g;
const MAX_VALUE = 256;
const MAX_NAME = 512;

/** The Azure-safe form of a tag name: each of `<>%&\?/` replaced by `-`. */
export function azureTagName(name: string): string {
  return name.replace(FORBIDDEN, "-");
}

function isReserved(name: string): boolean {
  return name === TAG_NAMES_TAG || name.startsWith(`${TAG_NAMES_TAG}.`);
}

/**
 * Turns tags into what Azure stores: names rewritten, the originals recorded. Two names that
 * collide after rewriting, names over 512 characters, values over 256 and more than 50 tags in
 * all fail with `INVALID_ARGUMENT`.
 */
export function encodeTags(tags: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  const origin: Record<string, string> = {};
  const rewritten: string[] = [];
  for (const [name, value] of Object.entries(tags)) {
    if (isReserved(name)) continue;
    const safe = azureTagName(name);
    if (safe.length > MAX_NAME) throw new StowageError(Code.InvalidArgument, `tag name ${JSON.stringify(name)} is longer than Azure's ${String(MAX_NAME)} characters`);
    if (value.length > MAX_VALUE) throw new StowageError(Code.InvalidArgument, `the value of tag ${JSON.stringify(name)} is longer than Azure's ${String(MAX_VALUE)} characters`);
    const other = origin[safe];
    if (other !== undefined && other !== name) {
      throw new StowageError(Code.InvalidArgument, `tags ${JSON.stringify(other)} and ${JSON.stringify(name)} both become ${JSON.stringify(safe)} on Azure, which forbids <>%&\\?/ in tag names; rename one`);
    }
    origin[safe] = name;
    out[safe] = value;
    if (safe !== name) rewritten.push(name);
  }
  if (rewritten.length > 0) {
    const record = JSON.stringify(rewritten.sort());
    for (let i = 0, part = 0; i < record.length; i += MAX_VALUE, part++) {
      out[part === 0 ? TAG_NAMES_TAG : `${TAG_NAMES_TAG}.${String(part)}`] = record.slice(i, i + MAX_VALUE);
    }
  }
  if (Object.keys(out).length > 50) {
    throw new StowageError(Code.InvalidArgument, `${String(Object.keys(out).length)} tags (with the volume's, the configured and the reserved ${TAG_NAMES_TAG}) exceed Azure's limit of 50`);
  }
  return out;
}

/** Turns stored Azure tags back into the caller's: recorded names restored, reserved tags removed. */
export function decodeTags(stored: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const tags = stored ?? {};
  let record = tags[TAG_NAMES_TAG] ?? "";
  for (let part = 1; tags[`${TAG_NAMES_TAG}.${String(part)}`] !== undefined; part++) record += tags[`${TAG_NAMES_TAG}.${String(part)}`] ?? "";
  let names: unknown;
  try {
    names = record === "" ? [] : JSON.parse(record);
  } catch {
    names = [];
  }
  const restore = new Map<string, string>();
  if (Array.isArray(names)) for (const n of names) if (typeof n === "string") restore.set(azureTagName(n), n);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(tags)) {
    if (isReserved(name)) continue;
    out[restore.get(name) ?? name] = value;
  }
  return out;
}

/**
 * Whether stored tags match a filter: each filter entry must be present with that exact value,
 * under its original name or its Azure-safe form.
 */
export function matchesTagFilter(stored: Readonly<Record<string, string>> | undefined, filter: Readonly<Record<string, string>>): boolean {
  const decoded = decodeTags(stored);
  const raw = stored ?? {};
  return Object.entries(filter).every(([name, value]) => decoded[name] === value || raw[azureTagName(name)] === value);
}
