/**
 * Volume IDs in PersistentVolumes: in-tree `awsElasticBlockStore` (`vol-…` or `aws://<zone>/vol-…`)
 * and CSI volumes of the `ebs.csi.aws.com` driver.
 *
 * @packageDocumentation
 */
import { Code, StowageError } from "@stowage/sdk";

/** The CSI driver of EBS volumes. */
export const EBS_CSI_DRIVER = "ebs.csi.aws.com";

/** The deprecated and current zone labels, in the order they are consulted. */
const ZONE_LABELS = ["topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"];

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The `vol-…` part of a volume handle or in-tree volume ID, or "". */
function extractVolumeId(value: string): string {
  return /vol-[0-9A-Za-z]+/.exec(value)?.[0] ?? "";
}

/**
 * This plugin's volume ID in a PersistentVolume (parsed JSON), or "" when the PV is not an EBS
 * volume (another CSI driver, NFS, ...).
 */
export function getEbsVolumeId(persistentVolume: unknown): string {
  if (!isObject(persistentVolume)) throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  const spec = persistentVolume.spec;
  if (!isObject(spec)) return "";
  const csi = spec.csi;
  if (isObject(csi)) {
    if (csi.driver !== EBS_CSI_DRIVER) return "";
    return typeof csi.volumeHandle === "string" ? extractVolumeId(csi.volumeHandle) : "";
  }
  const ebs = spec.awsElasticBlockStore;
  if (isObject(ebs)) {
    const volumeId = typeof ebs.volumeID === "string" ? ebs.volumeID : "";
    if (volumeId === "") throw new StowageError(Code.InvalidArgument, "spec.awsElasticBlockStore.volumeID of the PersistentVolume is empty");
    return extractVolumeId(volumeId);
  }
  return "";
}

/**
 * A copy of the PersistentVolume with its EBS volume ID replaced. In-tree volumes get
 * `aws://<zone>/<id>` when the PV has a zone label or its current ID has that form, else the bare ID. A PV that is not an EBS
 * volume fails with `INVALID_ARGUMENT`.
 */
export function setEbsVolumeId(persistentVolume: unknown, volumeId: string): unknown {
  if (!isObject(persistentVolume)) throw new StowageError(Code.InvalidArgument, "the PersistentVolume must be a JSON object");
  if (!/^vol-[0-9A-Za-z]+$/.test(volumeId)) throw new StowageError(Code.InvalidArgument, `volume ID ${JSON.stringify(volumeId)} is not an EBS volume ID (vol-…)`);
  const copy = structuredClone(persistentVolume);
  const spec = copy.spec;
  if (isObject(spec) && isObject(spec.csi)) {
    if (spec.csi.driver !== EBS_CSI_DRIVER) {
      throw new StowageError(Code.InvalidArgument, `the PersistentVolume's CSI driver ${JSON.stringify(spec.csi.driver)} is not ${EBS_CSI_DRIVER}`);
    }
    spec.csi.volumeHandle = volumeId;
    return copy;
  }
  if (isObject(spec) && isObject(spec.awsElasticBlockStore)) {
    const metadata = isObject(copy.metadata) ? copy.metadata : {};
    const labels = isObject(metadata.labels) ? metadata.labels : {};
    const current = typeof spec.awsElasticBlockStore.volumeID === "string" ? spec.awsElasticBlockStore.volumeID : "";
    const zone =
      ZONE_LABELS.map((l) => labels[l]).find((z): z is string => typeof z === "string" && z !== "") ?? /^aws:\/\/([^/]+)\//.exec(current)?.[1];
    spec.awsElasticBlockStore.volumeID = zone === undefined ? volumeId : `aws://${zone}/${volumeId}`;
    return copy;
  }
  throw new StowageError(Code.InvalidArgument, `the PersistentVolume has neither spec.csi (${EBS_CSI_DRIVER}) nor spec.awsElasticBlockStore`);
}
