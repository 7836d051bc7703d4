/**
 * The conformance kit against the built executable, through the real host: the Persistent Disk
 * BlockStore against the Compute Engine test double (there is no Compute Engine emulator). The
 * plugin authenticates with a service-account key the double generated, as in production.
 * Run `pnpm run build` first.
 */
import { registerConformanceSuites } from "@stowage/conformance/vitest";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe } from "vitest";
import { ComputeDouble } from "../test/support/compute-double.js";

const MAIN = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const PROJECT = "conformance-proj";
const ZONE = "us-central1-a";
let double: ComputeDouble | undefined;
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
      double = await ComputeDouble.start();
      dir = await mkdtemp(join(tmpdir(), "stowage-gcp-conformance-"));
      const credentialsFile = join(dir, "service-account.json");
      await writeFile(credentialsFile, JSON.stringify(double.serviceAccountKey(PROJECT)));
      // The source volume, created through the double's REST API.
      await double.insertDisk(PROJECT, { zone: ZONE }, {
        name: "conformance-source",
        sizeGb: "10",
        type: `projects/${PROJECT}/zones/${ZONE}/diskTypes/pd-balanced`,
        labels: { app: "conformance" },
      });
      return {
        blockStore: {
          plugin: "stowage.io/gcp",
          config: { credentialsFile, computeEndpoint: double.endpoint, snapshotLocation: "us-central1" },
          volumeId: "conformance-source",
          zone: ZONE,
          volumeType: "pd-balanced",
          missingVolumeId: "conformance-missing-disk",
          missingSnapshotId: "conformance-missing-snapshot",
          pvTemplates: {
            inTree: { spec: { gcePersistentDisk: { pdName: "${volumeId}", fsType: "ext4" } } },
            csi: { spec: { csi: { driver: "pd.csi.storage.gke.io", volumeHandle: `projects/${PROJECT}/zones/${ZONE}/disks/\${volumeId}`, fsType: "ext4" } } },
          },
          pollIntervalSeconds: 0.05,
          snapshotReadyTimeoutSeconds: 30,
        },
      };
    },
  });
});
