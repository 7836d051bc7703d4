import { Code, Reason } from "@stowage/sdk";
import { describe, expect, it } from "vitest";
import { getAzureDiskVolumeId, setAzureDiskVolumeId } from "./persistent-volumes.js";
import { thrownBy } from "@stowage/sdk/testing";

const home = { subscriptionId: "sub-1", resourceGroup: "MC_cluster" };
const armId = (rg: string, name: string, sub = "sub-1") => `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Compute/disks/${name}`;
const inTree = (diskName: string, diskURI: string) => ({
  metadata: { name: "pv", labels: { "topology.kubernetes.io/zone": "westeurope-1" } },
  spec: { azureDisk: { diskName, diskURI, kind: "Managed", cachingMode: "ReadOnly", fsType: "ext4" } },
});
const csi = (driver: string, volumeHandle: string) => ({ spec: { csi: { driver, volumeHandle, fsType: "ext4" } } });

describe("Azure disk PersistentVolumes", () => {
  it("reads in-tree and CSI IDs: names in the credentials file's group, ARM IDs elsewhere", () => {
    expect(getAzureDiskVolumeId(inTree("pvc-1", armId("MC_cluster", "pvc-1")), home)).toBe("pvc-1");
    expect(getAzureDiskVolumeId(inTree("pvc-1", armId("mc_CLUSTER", "pvc-1")), home)).toBe("pvc-1");
    expect(getAzureDiskVolumeId(inTree("pvc-2", armId("other", "pvc-2")), home)).toBe(armId("other", "pvc-2"));
    expect(getAzureDiskVolumeId(csi("disk.csi.azure.com", armId("MC_cluster", "pvc-3")), home)).toBe("pvc-3");
    expect(getAzureDiskVolumeId(csi("disk.csi.azure.com", armId("MC_cluster", "pvc-4", "sub-2")), home)).toBe(armId("MC_cluster", "pvc-4", "sub-2"));
    expect(getAzureDiskVolumeId(inTree("pvc-5", ""), home)).toBe("pvc-5");
  });

  it("ignores PVs of other drivers and kinds", () => {
    expect(getAzureDiskVolumeId(csi("file.csi.azure.com", "rg#acct#share"), home)).toBe("");
    expect(getAzureDiskVolumeId({ spec: { azureFile: { shareName: "x" } } }, home)).toBe("");
    expect(getAzureDiskVolumeId({}, home)).toBe("");
    expect(thrownBy(() => getAzureDiskVolumeId("not an object", home)).code).toBe(Code.InvalidArgument);
  });

  it("rejects PVs of this plugin without a usable ID with INVALID_NAME", () => {
    expect(thrownBy(() => getAzureDiskVolumeId(csi("disk.csi.azure.com", "vol-123"), home)).reason).toBe(Reason.InvalidName);
    expect(thrownBy(() => getAzureDiskVolumeId(inTree("", ""), home)).reason).toBe(Reason.InvalidName);
    const vhd = thrownBy(() => getAzureDiskVolumeId(inTree("d", "https://acct.blob.core.windows.net/vhds/d.vhd"), home));
    expect(vhd.reason).toBe(Reason.InvalidName);
    expect(vhd.message).toContain("unmanaged");
  });

  it("writes in-tree diskName and diskURI and CSI handles, keeping everything else", () => {
    const original = inTree("old", armId("MC_cluster", "old"));
    const updated = setAzureDiskVolumeId(original, "restore-1", home);
    expect(updated).toEqual({ ...original, spec: { azureDisk: { ...original.spec.azureDisk, diskName: "restore-1", diskURI: armId("MC_cluster", "restore-1") } } });
    expect(original.spec.azureDisk.diskName).toBe("old");
    expect(getAzureDiskVolumeId(updated, home)).toBe("restore-1");
    const elsewhere = armId("other", "restore-2");
    const csiUpdated = setAzureDiskVolumeId(csi("disk.csi.azure.com", armId("MC_cluster", "old")), elsewhere, home);
    expect(csiUpdated).toEqual(csi("disk.csi.azure.com", elsewhere));
    expect(getAzureDiskVolumeId(csiUpdated, home)).toBe(elsewhere);
  });

  it("refuses foreign PVs, empty and malformed IDs", () => {
    expect(thrownBy(() => setAzureDiskVolumeId(csi("file.csi.azure.com", "x"), "d", home)).code).toBe(Code.InvalidArgument);
    expect(thrownBy(() => setAzureDiskVolumeId({ spec: { nfs: {} } }, "d", home)).code).toBe(Code.InvalidArgument);
    expect(thrownBy(() => setAzureDiskVolumeId(inTree("a", ""), "", home)).code).toBe(Code.InvalidArgument);
    expect(thrownBy(() => setAzureDiskVolumeId(inTree("a", ""), "bad/name", home)).reason).toBe(Reason.InvalidName);
  });
});
