/**
 * Volume IDs in PersistentVolumes: in-tree `azureDisk` sources (`diskName`, `diskURI`) and CSI
 * volumes of the `disk.csi.azure.com` driver (`volumeHandle`, the disk's full ARM ID).
 *
 * The plugin's volume ID of a disk is its name when the disk lives in the credentials file's
 * subscription and resource group (`AZURE_SUBSCRIPTION_ID`, `AZURE_RESOURCE_GROUP`; Velero's
 * form), and its full ARM ID otherwise.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";
import { formatResourceId, parseResourceId, resolveResourceId, type ComputeResourceId } from "./ids.js";

/** The CSI driver of Azure managed disks. */
export const AZURE_DISK_CSI_DRIVER = "disk.csi.azure.com";

/** Where the cluster's disks are: the credentials file's subscription and resource group. */
export interface DiskLocation {
  /** Subscription. */
  readonly subscriptionId: string;
  /** Resource group. */
  readonly resourceGroup: string;
}

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The plugin's volume ID of a disk: its name in the home resource group, else its ARM ID. */
export function volumeIdOf(disk: ComputeResourceId, home: DiskLocation): string {
  return same(disk.subscriptionId, home.subscriptionId) && same(disk.resourceGroup, home.resourceGroup) ? disk.name : formatResourceId("disks", disk);
}

function invalidName(message: string): StowageError {
  return new StowageError(Code.InvalidArgument, message, { reason: Reason.InvalidName });
}

/**
 * This plugin's volume ID in a PersistentVolume (parsed JSON), or "" when the PV is not an Azure
 * managed disk (another CSI driver, NFS, ...). A PV of this plugin without a usable ID fails with
 * `INVALID_ARGUMENT`/`INVALID_NAME`.
 */
export function getAzureDiskVolumeId(persistentVolume: unknown, home: DiskLocation): string {
  if (!isObject(persistentVolume)) throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  const spec = persistentVolume.spec;
  if (!isObject(spec)) return "";
  const csi = spec.csi;
  if (isObject(csi)) {
    if (csi.driver !== AZURE_DISK_CSI_DRIVER) return "";
    const handle = typeof csi.volumeHandle === "string" ? csi.volumeHandle : "";
    const disk = parseResourceId("disks", handle);
    if (disk === undefined) {
      throw invalidName(`spec.csi.volumeHandle ${JSON.stringify(handle)} of the ${AZURE_DISK_CSI_DRIVER} PersistentVolume is not a managed disk ARM ID`);
    }
    return volumeIdOf(disk, home);
  }
  const azureDisk = spec.azureDisk;
  if (isObject(azureDisk)) {
    const uri = typeof azureDisk.diskURI === "string" ? azureDisk.diskURI.trim() : "";
    const name = typeof azureDisk.diskName === "string" ? azureDisk.diskName.trim() : "";
    const disk = parseResourceId("disks", uri);
    if (disk !== undefined) return volumeIdOf(disk, home);
    if (/^https?:\/\//i.test(uri)) {
      throw invalidName(`spec.azureDisk.diskURI ${JSON.stringify(uri)} is an unmanaged VHD blob; only managed disks can be snapshotted`);
    }
    if (uri === "" && name !== "") return resolveResourceId("disks", name, home).name;
    throw invalidName(`spec.azureDisk of the PersistentVolume has no managed disk ID (diskURI ${JSON.stringify(uri)}, diskName ${JSON.stringify(name)})`);
  }
  return "";
}

/**
 * A copy of the PersistentVolume pointing at another disk: `spec.csi.volumeHandle` (full ARM ID)
 * for `disk.csi.azure.com` volumes; `spec.azureDisk.diskName` and `diskURI` for in-tree volumes.
 * A PV that is not an Azure managed disk, or an invalid ID, fails with `INVALID_ARGUMENT`.
 */
export function setAzureDiskVolumeId(persistentVolume: unknown, volumeId: string, home: DiskLocation): unknown {
  if (!isObject(persistentVolume)) throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  if (volumeId === "") throw new StowageError(Code.InvalidArgument, "the volume ID must not be empty");
  const disk = resolveResourceId("disks", volumeId, home);
  const copy = structuredClone(persistentVolume);
  const spec = copy.spec;
  if (isObject(spec) && isObject(spec.csi)) {
    if (spec.csi.driver !== AZURE_DISK_CSI_DRIVER) {
      throw new StowageError(Code.InvalidArgument, `the PersistentVolume's CSI driver ${JSON.stringify(spec.csi.driver)} is not ${AZURE_DISK_CSI_DRIVER}`);
    }
    spec.csi.volumeHandle = formatResourceId("disks", disk);
    return copy;
  }
  if (isObject(spec) && isObject(spec.azureDisk)) {
    spec.azureDisk.diskName = disk.name;
    spec.azureDisk.diskURI = formatResourceId("disks", disk);
    return copy;
  }
  throw new StowageError(Code.InvalidArgument, `the PersistentVolume has neither spec.csi (${AZURE_DISK_CSI_DRIVER}) nor spec.azureDisk`);
}
