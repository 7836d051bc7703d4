import { Code, Reason, StowageError } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { getPdVolumeId, parseVolumeHandle, setPdVolumeId } from "./persistent-volumes.js";

const csi = (handle: unknown, driver = "pd.csi.storage.gke.io"): Record<string, unknown> => ({
  apiVersion: "v1",
  kind: "PersistentVolume",
  metadata: { name: "pv-1", labels: { "topology.kubernetes.io/zone": "us-central1-a" } },
  spec: { capacity: { storage: "10Gi" }, csi: { driver, volumeHandle: handle, fsType: "ext4" } },
});

function caught(fn: () => unknown): StowageError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(StowageError);
    return error as StowageError;
  }
  throw new Error("expected an error");
}

describe("getPdVolumeId", () => {
  it("returns the disk name of zonal and regional CSI handles", () => {
    expect(getPdVolumeId(csi("projects/p1/zones/us-central1-a/disks/pvc-abc"))).toBe("pvc-abc");
    expect(getPdVolumeId(csi("projects/p1/regions/us-central1/disks/pvc-reg"))).toBe("pvc-reg");
    expect(getPdVolumeId(csi("projects/p1/zones/us-central1-a/disks/conf", "gcp.csi.confidential.cloud"))).toBe("conf");
  });

  it("fails with INVALID_NAME on a malformed handle of the PD driver", () => {
    const e = caught(() => getPdVolumeId(csi("pvc-abc")));
    expect([e.code, e.reason]).toEqual([Code.InvalidArgument, Reason.InvalidName]);
    expect(caught(() => getPdVolumeId(csi("projects/p1/zones/us-central1-a/snapshots/x"))).reason).toBe(Reason.InvalidName);
  });

  it("returns the in-tree pdName, and fails on an empty one", () => {
    expect(getPdVolumeId({ spec: { gcePersistentDisk: { pdName: "legacy-disk", fsType: "ext4" } } })).toBe("legacy-disk");
    expect(caught(() => getPdVolumeId({ spec: { gcePersistentDisk: { pdName: "" } } })).reason).toBe(Reason.InvalidName);
  });

  it("returns \"\" for other drivers and sources, and rejects non-objects", () => {
    expect(getPdVolumeId(csi("vol-1", "ebs.csi.aws.com"))).toBe("");
    expect(getPdVolumeId({ spec: { nfs: { server: "x", path: "/" } } })).toBe("");
    expect(getPdVolumeId({ metadata: {} })).toBe("");
    expect(caught(() => getPdVolumeId([1])).code).toBe(Code.InvalidArgument);
  });
});

describe("setPdVolumeId", () => {
  it("replaces the disk name in a CSI handle, keeping the location and every other field", () => {
    const pv = csi("projects/p1/regions/us-central1/disks/old");
    const out = setPdVolumeId(pv, "restore-1", "p1") as ReturnType<typeof csi>;
    expect(out).toEqual(csi("projects/p1/regions/us-central1/disks/restore-1"));
    expect(pv).toEqual(csi("projects/p1/regions/us-central1/disks/old"));
    expect(getPdVolumeId(out)).toBe("restore-1");
  });

  it("moves the handle to volumeProject when the restore happens in another project", () => {
    const out = setPdVolumeId(csi("projects/source-proj/zones/us-central1-a/disks/old"), "restore-2", "target-proj");
    expect(out).toEqual(csi("projects/target-proj/zones/us-central1-a/disks/restore-2"));
    expect(setPdVolumeId(csi("projects/source-proj/zones/us-central1-a/disks/old"), "restore-2")).toEqual(csi("projects/source-proj/zones/us-central1-a/disks/restore-2"));
  });

  it("sets the in-tree pdName", () => {
    const pv = { spec: { gcePersistentDisk: { pdName: "old", fsType: "ext4", partition: 1 } }, extra: { a: 1 } };
    expect(setPdVolumeId(pv, "new-disk")).toEqual({ spec: { gcePersistentDisk: { pdName: "new-disk", fsType: "ext4", partition: 1 } }, extra: { a: 1 } });
  });

  it("refuses foreign PVs, bad handles and invalid disk names", () => {
    expect(caught(() => setPdVolumeId(csi("vol-1", "ebs.csi.aws.com"), "d")).code).toBe(Code.InvalidArgument);
    expect(caught(() => setPdVolumeId({ spec: { nfs: {} } }, "d")).code).toBe(Code.InvalidArgument);
    expect(caught(() => setPdVolumeId(csi("bad"), "d")).reason).toBe(Reason.InvalidName);
    expect(caught(() => setPdVolumeId(csi("projects/p/zones/z/disks/x"), "Not_A_Disk")).reason).toBe(Reason.InvalidName);
    expect(caught(() => setPdVolumeId(csi("projects/p/zones/z/disks/x"), "")).code).toBe(Code.InvalidArgument);
  });
});

describe("parseVolumeHandle", () => {
  it("splits a handle into project, scope, location and name", () => {
    expect(parseVolumeHandle("projects/my-proj/zones/europe-west4-b/disks/d1")).toEqual({ project: "my-proj", scope: "zones", location: "europe-west4-b", name: "d1" });
  });
});
