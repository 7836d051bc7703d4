/**
 * Azure Resource Manager IDs of managed disks and snapshots.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";

/** A parsed disk or snapshot ID. */
export interface ComputeResourceId {
  /** Subscription. */
  readonly subscriptionId: string;
  /** Resource group. */
  readonly resourceGroup: string;
  /** Disk or snapshot name. */
  readonly name: string;
}

/** Azure's rule for disk and snapshot names: 1–80 of letters, digits, `_`, `.`, `-`; starting with a letter, digit or `_`, ending with a letter, digit or `_`. */
export const RESOURCE_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$/;
const RESOURCE_GROUP = /^[-\w.()]{1,89}[-\w()]$|^[-\w()]$/u;

/** Builds the full ARM ID of a disk (`collection` "disks") or snapshot ("snapshots"). */
export function formatResourceId(collection: "disks" | "snapshots", id: ComputeResourceId): string {
  return `/subscriptions/${id.subscriptionId}/resourceGroups/${id.resourceGroup}/providers/Microsoft.Compute/${collection}/${id.name}`;
}

/**
 * Parses a full ARM ID (`/subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.Compute/<collection>/<name>`,
 * compared case-insensitively), or returns `undefined` when `text` is not one.
 */
export function parseResourceId(collection: "disks" | "snapshots", text: string): ComputeResourceId | undefined {
  const match = new RegExp(`^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\\.Compute/${collection}/([^/]+)$`, "i").exec(text.trim());
  if (match === null) return undefined;
  const [, subscriptionId = "", resourceGroup = "", name = ""] = match;
  if (!RESOURCE_NAME.test(name) || !RESOURCE_GROUP.test(resourceGroup)) return undefined;
  return { subscriptionId, resourceGroup, name };
}

/**
 * Resolves a volume or snapshot ID given to the plugin: a full ARM ID, or a bare name (Velero's
 * form for disks) looked up in the default subscription and resource group. Anything else fails
 * with `INVALID_ARGUMENT`/`INVALID_NAME`.
 */
export function resolveResourceId(collection: "disks" | "snapshots", text: string, defaults: { subscriptionId: string; resourceGroup: string }): ComputeResourceId {
  const kind = collection === "disks" ? "volume" : "snapshot";
  const parsed = parseResourceId(collection, text);
  if (parsed !== undefined) return parsed;
  if (RESOURCE_NAME.test(text)) return { subscriptionId: defaults.subscriptionId, resourceGroup: defaults.resourceGroup, name: text };
  const example = `/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Compute/${collection}/<name>`;
  throw new StowageError(Code.InvalidArgument, `${kind} ID ${JSON.stringify(text)} is neither a managed ${collection === "disks" ? "disk" : "snapshot"} ARM ID (${example}) nor a valid ${collection === "disks" ? "disk" : "snapshot"} name`, {
    reason: Reason.InvalidName,
    metadata: { [collection === "disks" ? "volume_id" : "snapshot_id"]: text },
  });
}
