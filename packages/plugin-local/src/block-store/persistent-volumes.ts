/**
 * Reading and rewriting the volume ID in Kubernetes PersistentVolume objects (parsed JSON).
 *
 * The local BlockStore owns two kinds of PV source:
 *
 * - CSI: `spec.csi.driver` is {@link LOCAL_CSI_DRIVER}; the volume ID is `spec.csi.volumeHandle`.
 * - In-tree local volumes: `spec.local.path` ends in `volumes/<id>.img`, the data file of a
 *   volume under some local BlockStore root; the volume ID is `<id>`.
 *
 * Every other PV (other CSI drivers, cloud disks, no source) belongs to another plugin.
 *
 * @packageDocumentation
 */
import { Code, StowageError } from "@stowage/sdk";
import { ID_PATTERN, checkId } from "../shared/ids.js";

/** The CSI driver name of volumes this plugin owns. */
export const LOCAL_CSI_DRIVER = "local.stowage.io";

/** A local path `…/volumes/<id>.img`. */
const LOCAL_PATH_PATTERN = /^(.*\/)?volumes\/([^/]+)\.img$/;

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Which source of a PV this plugin owns, if any. */
type OwnedSource =
  | { readonly kind: "csi"; readonly csi: JsonObject; readonly volumeId: string }
  | { readonly kind: "local"; readonly local: JsonObject; readonly directory: string; readonly volumeId: string };

function ownedSource(persistentVolume: unknown): OwnedSource | undefined {
  if (!isObject(persistentVolume)) {
    throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  }
  const spec = persistentVolume.spec;
  if (!isObject(spec)) return undefined;
  const csi = spec.csi;
  if (isObject(csi) && csi.driver === LOCAL_CSI_DRIVER) {
    const handle = csi.volumeHandle;
    if (typeof handle !== "string" || handle === "") {
      throw new StowageError(Code.InvalidArgument, `the PersistentVolume uses driver ${LOCAL_CSI_DRIVER} but has no spec.csi.volumeHandle`);
    }
    return { kind: "csi", csi, volumeId: handle };
  }
  const local = spec.local;
  if (isObject(local) && typeof local.path === "string") {
    const match = LOCAL_PATH_PATTERN.exec(local.path);
    const id = match?.[2];
    if (id !== undefined && ID_PATTERN.test(id)) return { kind: "local", local, directory: `${match?.[1] ?? ""}volumes/`, volumeId: id };
  }
  return undefined;
}

/** The volume ID of a PV this plugin owns, or `""` for any other PV; a non-object fails with `INVALID_ARGUMENT`. */
export function getPersistentVolumeId(persistentVolume: unknown): string {
  return ownedSource(persistentVolume)?.volumeId ?? "";
}

/**
 * A deep copy of the PV with its volume ID replaced in the source this plugin owns (the CSI
 * volume handle, or the file name of the local path). Fails with `INVALID_ARGUMENT` when the PV
 * is not this plugin's or the ID is malformed.
 */
export function setPersistentVolumeId(persistentVolume: unknown, volumeId: string): unknown {
  checkId("volume", volumeId);
  if (ownedSource(persistentVolume) === undefined) {
    throw new StowageError(
      Code.InvalidArgument,
      `the PersistentVolume has no source this plugin owns (CSI driver ${LOCAL_CSI_DRIVER}, or a local path ending in volumes/<id>.img)`,
    );
  }
  const copy: unknown = structuredClone(persistentVolume);
  const source = ownedSource(copy);
  if (source?.kind === "csi") source.csi.volumeHandle = volumeId;
  else if (source?.kind === "local") source.local.path = `${source.directory}${volumeId}.img`;
  return copy;
}
