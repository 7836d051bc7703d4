/**
 * The conformance kit against the built executable, through the real host: the Managed Disks
 * BlockStore against the Microsoft.Compute test double (HTTPS with a throw-away CA, Entra ID
 * client-secret auth through the double's token endpoint). Run the build first (`dist/main.js`).
 */
import { registerConformanceSuites } from "@stowage/conformance/vitest";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe } from "vitest";
import { createDisk, doubleConfig, startArmComputeDouble, writeCredentialsFile, type ArmComputeDouble } from "../test/support/arm-compute-double.js";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
let double: ArmComputeDouble | undefined;
let dir: string | undefined;

describe("conformance", () => {
  afterAll(async () => {
    await double?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  registerConformanceSuites({
    plugin: { command: process.execPath, args: [MAIN] },
    kind: "block-store",
    config: async () => {
      // Incremental snapshots are pending for a few polls, so progress is exercised too.
      double = await startArmComputeDouble({ initialCompletionPercent: 10, completionStep: 30 });
      dir = await mkdtemp(join(tmpdir(), "stowage-disks-conformance-"));
      const credentialsFile = await writeCredentialsFile(double, dir);
      await createDisk(double, "conformance-source", { zone: "1", sku: "Premium_LRS", tags: { app: "conformance" } });
      const diskUri = `/subscriptions/${double.subscriptionId}/resourceGroups/stowage-disks/providers/Microsoft.Compute/disks/\${volumeId}`;
      return {
        blockStore: {
          plugin: "stowage.io/azure",
          config: doubleConfig(double, credentialsFile, { incremental: "true", apiTimeout: "30s" }),
          volumeId: "conformance-source",
          zone: "westeurope-1",
          volumeType: "PremiumV2_LRS",
          iops: 4000,
          missingVolumeId: "conformance-missing",
          missingSnapshotId: double.snapshotId("stowage-snapshots", "conformance-missing"),
          pvTemplates: {
            inTree: { spec: { azureDisk: { kind: "Managed", diskName: "${volumeId}", diskURI: diskUri, cachingMode: "ReadOnly", fsType: "ext4" } } },
            csi: { spec: { csi: { driver: "disk.csi.azure.com", volumeHandle: diskUri, fsType: "ext4" } } },
          },
          pollIntervalSeconds: 0.1,
          snapshotReadyTimeoutSeconds: 30,
        },
      };
    },
  });
});
