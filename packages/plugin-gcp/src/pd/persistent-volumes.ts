/**
 * Disk names in PersistentVolumes: in-tree `gcePersistentDisk.pdName` and CSI volumes of the
 * `pd.csi.storage.gke.io` driver (and Constellation's `gcp.csi.confidential.cloud`), whose handle is
 * `projects/<project>/zones/<zone>/disks/<name>` or `projects/<project>/regions/<region>/disks/<name>`.
 *
 * @packageDocumentation
 */
import { Code, Reason, StowageError } from "@stowage/sdk";

/** The CSI driver of Persistent Disks on GKE. */
export const PD_CSI_DRIVER = "pd.csi.storage.gke.io";

/** CSI drivers whose volume handles name Persistent Disks. */
export const PD_CSI_DRIVERS: readonly string[] = [PD_CSI_DRIVER, "gcp.csi.confidential.cloud"];

/** A Compute Engine disk name (RFC 1035, at most 63 characters). */
export const DISK_NAME_RE = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

const HANDLE_RE = /^projects\/([^/]+)\/(zones|regions)\/([^/]+)\/disks\/([^/]+)$/;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The parts of a CSI volume handle. */
export interface VolumeHandle {
  /** Project of the disk. */
  readonly project: string;
  /** `zones` or `regions`. */
  readonly scope: "zones" | "regions";
  /** Zone or region. */
  readonly location: string;
  /** Disk name. */
  readonly name: string;
}

/** Parses a `pd.csi.storage.gke.io` volume handle; a malformed one fails with `INVALID_ARGUMENT`/`INVALID_NAME`. */
export function parseVolumeHandle(handle: unknown): VolumeHandle {
  const m = typeof handle === "string" ? HANDLE_RE.exec(handle) : null;
  if (m === null) {
    throw new StowageError(Code.InvalidArgument, `CSI volume handle ${JSON.stringify(handle)} is not projects/<project>/(zones|regions)/<location>/disks/<name>`, {
      reason: Reason.InvalidName,
    });
  }
  return { project: m[1] ?? "", scope: m[2] === "regions" ? "regions" : "zones", location: m[3] ?? "", name: m[4] ?? "" };
}

/**
 * This plugin's volume ID (the disk name) in a PersistentVolume (parsed JSON), or "" when the PV is
 * not a Persistent Disk (another CSI driver, NFS, ...).
 */
export function getPdVolumeId(persistentVolume: unknown): string {
  if (!isObject(persistentVolume)) throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  const spec = persistentVolume.spec;
  if (!isObject(spec)) return "";
  const csi = spec.csi;
  if (isObject(csi)) {
    if (typeof csi.driver !== "string" || !PD_CSI_DRIVERS.includes(csi.driver)) return "";
    return parseVolumeHandle(csi.volumeHandle).name;
  }
  const pd = spec.gcePersistentDisk;
  if (isObject(pd)) {
    const name = typeof pd.pdName === "string" ? pd.pdName : "";
    if (name === "") throw new StowageError(Code.InvalidArgument, "spec.gcePersistentDisk.pdName of the PersistentVolume is empty", { reason: Reason.InvalidName });
    return name;
  }
  return "";
}

/**
 * A copy of the PersistentVolume pointing at another disk. A CSI handle keeps its zone or region;
 * its project becomes `volumeProject` (where restored disks are created) when that is given and
 * differs. A PV that is not a Persistent Disk fails with `INVALID_ARGUMENT`.
 */
export function setPdVolumeId(persistentVolume: unknown, volumeId: string, volumeProject?: string): unknown {
  if (!isObject(persistentVolume)) throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  if (!DISK_NAME_RE.test(volumeId)) {
    throw new StowageError(Code.InvalidArgument, `volume ID ${JSON.stringify(volumeId)} is not a Compute Engine disk name (RFC 1035, at most 63 characters)`, { reason: Reason.InvalidName });
  }
  const copy = structuredClone(persistentVolume);
  const spec = copy.spec;
  if (isObject(spec) && isObject(spec.csi)) {
    const driver = spec.csi.driver;
    if (typeof driver !== "string" || !PD_CSI_DRIVERS.includes(driver)) {
      throw new StowageError(Code.InvalidArgument, `the PersistentVolume's CSI driver ${JSON.stringify(driver)} is not ${PD_CSI_DRIVER}`);
    }
    const handle = parseVolumeHandle(spec.csi.volumeHandle);
    const project = volumeProject !== undefined && volumeProject !== "" ? volumeProject : handle.project;
    spec.csi.volumeHandle = `projects/${project}/${handle.scope}/${handle.location}/disks/${volumeId}`;
    return copy;
  }
  if (isObject(spec) && isObject(spec.gcePersistentDisk)) {
    spec.gcePersistentDisk.pdName = volumeId;
    return copy;
  }
  throw new StowageError(Code.InvalidArgument, `the PersistentVolume has neither spec.csi (${PD_CSI_DRIVER}) nor spec.gcePersistentDisk`);
}
