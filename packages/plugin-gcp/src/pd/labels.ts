/**
 * Tags and Compute Engine labels. Labels allow only lower-case letters, digits, `_` and `-`, at most
 * 63 characters, and keys must start with a letter, while tags such as `velero.io/backup` do not fit.
 * Snapshots therefore keep the caller's tags exactly in their description (a JSON object, as Velero
 * writes it) and carry a transformed copy as labels, which listing filters on:
 *
 * - letters are lower-cased; every other character outside `[a-z0-9_-]` becomes `_`
 *   (`velero.io/backup` → `velero_io_backup`);
 * - a key that does not start with a letter gets the prefix `k`;
 * - a key or value longer than 63 characters is cut to 54 and ends with `-` and the first 8 hex
 *   digits of its SHA-256.
 *
 * @packageDocumentation
 */
import { createHash } from "node:crypto";

const MAX = 63;

function fit(text: string): string {
  const cleaned = text.toLowerCase().replace(/[^a-z0-9_-]/g, "_");
  if (cleaned.length <= MAX) return cleaned;
  return `${cleaned.slice(0, 54)}-${createHash("sha256").update(text).digest("hex").slice(0, 8)}`;
}

/** The label key for a tag key. */
export function labelKey(key: string): string {
  return fit(/^[a-z]/i.test(key) ? key : `k${key}`);
}

/** The label value for a tag value. */
export function labelValue(value: string): string {
  return fit(value);
}

/** Tags transformed to labels. */
export function tagsToLabels(tags: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(tags)) out[labelKey(k)] = labelValue(v);
  return out;
}

/** A `snapshots.list` filter selecting the labels of these tags (AND), or undefined for none. */
export function labelFilter(tags: Readonly<Record<string, string>>): string | undefined {
  const conditions = Object.entries(tagsToLabels(tags)).map(([k, v]) => `(labels.${k} = "${v}")`);
  return conditions.length === 0 ? undefined : conditions.join(" ");
}

/** Parses a description holding a JSON object of strings (Kubernetes and Velero write one); undefined otherwise. */
export function descriptionTags(description: string | null | undefined): Record<string, string> | undefined {
  if (!description?.trimStart().startsWith("{")) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(description);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) if (typeof v === "string") out[k] = v;
  return out;
}
