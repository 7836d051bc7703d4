import { Code, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { getEbsVolumeId, setEbsVolumeId } from "./persistent-volumes.js";

const inTree = (volumeID: string, labels: Record<string, string> = {}) => ({
  metadata: { name: "pv", labels },
  spec: { awsElasticBlockStore: { volumeID, fsType: "ext4" } },
});
const csi = (driver: string, volumeHandle: string) => ({ spec: { csi: { driver, volumeHandle } } });

describe("PersistentVolume volume IDs", () => {
  it("reads in-tree IDs in both forms", () => {
    expect(getEbsVolumeId(inTree("vol-0abc"))).toBe("vol-0abc");
    expect(getEbsVolumeId(inTree("aws://us-east-1a/vol-0abc"))).toBe("vol-0abc");
  });

  it("reads ebs.csi.aws.com handles and ignores foreign PVs", () => {
    expect(getEbsVolumeId(csi("ebs.csi.aws.com", "vol-0def"))).toBe("vol-0def");
    expect(getEbsVolumeId(csi("efs.csi.aws.com", "fs-1"))).toBe("");
    expect(getEbsVolumeId({ spec: { nfs: { server: "x", path: "/" } } })).toBe("");
    expect(getEbsVolumeId({})).toBe("");
  });

  it("rejects an empty in-tree ID", () => {
    expect(() => getEbsVolumeId(inTree(""))).toThrow(StowageError);
  });

  it("writes in-tree IDs with the zone when the PV has a zone label", () => {
    const zoned = setEbsVolumeId(inTree("vol-old", { "failure-domain.beta.kubernetes.io/zone": "us-east-1c" }), "vol-new");
    expect(zoned).toMatchObject({ spec: { awsElasticBlockStore: { volumeID: "aws://us-east-1c/vol-new", fsType: "ext4" } } });
    const kept = setEbsVolumeId(inTree("aws://us-east-1d/vol-old"), "vol-new");
    expect(kept).toMatchObject({ spec: { awsElasticBlockStore: { volumeID: "aws://us-east-1d/vol-new" } } });
    const bare = setEbsVolumeId(inTree("vol-old"), "vol-new");
    expect(bare).toMatchObject({ spec: { awsElasticBlockStore: { volumeID: "vol-new" } } });
  });

  it("writes CSI handles, leaves the input untouched, and rejects foreign PVs", () => {
    const original = csi("ebs.csi.aws.com", "vol-old");
    expect(setEbsVolumeId(original, "vol-new")).toEqual(csi("ebs.csi.aws.com", "vol-new"));
    expect(original.spec.csi.volumeHandle).toBe("vol-old");
    try {
      setEbsVolumeId(csi("efs.csi.aws.com", "fs-1"), "vol-new");
      expect.unreachable();
    } catch (error) {
      expect((error as StowageError).code).toBe(Code.InvalidArgument);
    }
  });
});
