import { Code, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { LOCAL_CSI_DRIVER, getPersistentVolumeId, setPersistentVolumeId } from "./persistent-volumes.js";

const csiPv = {
  apiVersion: "v1",
  kind: "PersistentVolume",
  metadata: { name: "pv-1", labels: { a: "b" } },
  spec: { capacity: { storage: "1Gi" }, csi: { driver: LOCAL_CSI_DRIVER, volumeHandle: "vol-1234", fsType: "ext4" } },
};
const localPv = { kind: "PersistentVolume", spec: { local: { path: "/var/lib/stowage/blocks/volumes/vol-abcd.img" }, nodeAffinity: {} } };

function thrown(fn: () => unknown): StowageError {
  try {
    fn();
  } catch (error) {
    if (error instanceof StowageError) return error;
    throw error;
  }
  throw new Error("expected an error");
}

describe("getPersistentVolumeId", () => {
  it("reads CSI volume handles of the local driver", () => {
    expect(getPersistentVolumeId(csiPv)).toBe("vol-1234");
  });

  it("reads local paths ending in volumes/<id>.img", () => {
    expect(getPersistentVolumeId(localPv)).toBe("vol-abcd");
    expect(getPersistentVolumeId({ spec: { local: { path: "volumes/v1.img" } } })).toBe("v1");
  });

  it("returns an empty ID for PVs of other plugins", () => {
    const foreign = [
      {},
      { spec: null },
      { spec: {} },
      { spec: { csi: { driver: "ebs.csi.aws.com", volumeHandle: "vol-0abc" } } },
      { spec: { awsElasticBlockStore: { volumeID: "vol-0abc" } } },
      { spec: { local: { path: "/mnt/disks/ssd1" } } },
      { spec: { local: { path: "/data/vol-1.img" } } },
      { spec: { local: { path: "/data/volumes/sub/vol-1.img" } } },
    ];
    for (const pv of foreign) expect(getPersistentVolumeId(pv), JSON.stringify(pv)).toBe("");
  });

  it("refuses input that is not an object", () => {
    for (const bad of [null, "pv", 42, [csiPv], undefined]) expect(thrown(() => getPersistentVolumeId(bad)).code).toBe(Code.InvalidArgument);
  });

  it("refuses a local-driver PV without a volume handle", () => {
    expect(thrown(() => getPersistentVolumeId({ spec: { csi: { driver: LOCAL_CSI_DRIVER } } })).code).toBe(Code.InvalidArgument);
  });
});

describe("setPersistentVolumeId", () => {
  it("replaces the CSI handle in a deep copy", () => {
    const updated = setPersistentVolumeId(csiPv, "vol-new");
    expect(updated).toEqual({ ...csiPv, spec: { ...csiPv.spec, csi: { ...csiPv.spec.csi, volumeHandle: "vol-new" } } });
    expect(csiPv.spec.csi.volumeHandle).toBe("vol-1234");
    expect((updated as typeof csiPv).metadata).not.toBe(csiPv.metadata);
    expect(getPersistentVolumeId(updated)).toBe("vol-new");
  });

  it("replaces the file name of a local path", () => {
    const updated = setPersistentVolumeId(localPv, "vol-new") as typeof localPv;
    expect(updated.spec.local.path).toBe("/var/lib/stowage/blocks/volumes/vol-new.img");
    expect(localPv.spec.local.path).toBe("/var/lib/stowage/blocks/volumes/vol-abcd.img");
  });

  it("refuses PVs it does not own and malformed IDs", () => {
    expect(thrown(() => setPersistentVolumeId({ spec: { csi: { driver: "other", volumeHandle: "x" } } }, "vol-1")).code).toBe(Code.InvalidArgument);
    expect(thrown(() => setPersistentVolumeId({}, "vol-1")).code).toBe(Code.InvalidArgument);
    expect(thrown(() => setPersistentVolumeId(localPv, "../etc/passwd")).code).toBe(Code.InvalidArgument);
    expect(thrown(() => setPersistentVolumeId("pv", "vol-1")).code).toBe(Code.InvalidArgument);
  });
});
