/**
 * The kit against a real Velero plugin: the unmodified Go `velero-plugin-for-aws` (v1.14.2, built by
 * `bash scripts/install-velero-plugins`), loaded by the host with `protocol: "velero"`, storing
 * objects in MinIO. Every case's outcome must be the one published, with its reason, in the table of
 * docs/velero.md ("The conformance kit against velero-plugin-for-aws"), and the table must list
 * exactly the kit's object-store cases, so neither can change without the other. Run with
 * STOWAGE_UPDATE_DOCS=1 to rewrite the table's outcome column from a run (reasons of unchanged rows
 * are kept; a changed row gets the kit's message, to be edited into an explanation).
 */
import { access, constants, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath } from "node:url";
import { startMinio, startMoto, type MinioServer, type MotoServer } from "@stowage/test-servers";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, Reason, silentLogger } from "@stowage/sdk";
import { PluginHost } from "@stowage/sdk/host";
import { casesFor, runConformance, type CaseResult, type ConformanceOutcome } from "../src/index.js";

const AWS_PLUGIN = fileURLToPath(new URL("../../../.tools/bin/velero-plugin-for-aws", import.meta.url));
const DOC = fileURLToPath(new URL("../../../docs/velero.md", import.meta.url));
/** The markers around a published table: `name` is `velero-aws-kit` (objects) or `velero-aws-ebs-kit` (volumes). */
function markers(name: string): { start: string; end: string } {
  return { start: `<!-- ${name}:start (checked by packages/conformance/test/velero-aws.external.test.ts; STOWAGE_UPDATE_DOCS=1 rewrites the outcomes) -->`, end: `<!-- ${name}:end -->` };
}
const BUCKET = "velero-conformance";

/** One row of the published table. */
interface Row {
  readonly id: string;
  readonly level: string;
  readonly outcome: string;
  readonly why: string;
}

function parseTable(doc: string, name: string): { rows: Row[]; summary: string } {
  const { start: START, end: END } = markers(name);
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/velero.md lacks the markers ${START} … ${END}`);
  const body = doc.slice(start + START.length, end).trim().split("\n");
  const rows: Row[] = [];
  let summary = "";
  for (const line of body) {
    const m = /^\| `([A-Z0-9-]+)` \| (MUST|SHOULD) \| (pass|fail|skip) \| (.*) \|$/.exec(line);
    if (m !== null) rows.push({ id: m[1] ?? "", level: m[2] ?? "", outcome: m[3] ?? "", why: m[4] ?? "" });
    else if (/^\d+ cases:/.test(line)) summary = line;
  }
  return { rows, summary };
}

function summaryOf(results: readonly { outcome: string }[]): string {
  const count = (o: string): number => results.filter((r) => r.outcome === o).length;
  return `${String(results.length)} cases: ${String(count("pass"))} pass, ${String(count("fail"))} fail, ${String(count("skip"))} skip.`;
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function renderTable(rows: readonly Row[]): string {
  return [summaryOf(rows), "", "| Case | Level | Outcome | Why |", "|---|---|---|---|", ...rows.map((r) => `| \`${r.id}\` | ${r.level} | ${r.outcome} | ${cell(r.why)} |`)].join("\n");
}

/**
 * Compares a run with the table between the `name` markers of docs/velero.md (or rewrites the
 * outcomes with STOWAGE_UPDATE_DOCS=1).
 */
async function checkPublished(outcome: ConformanceOutcome, name: string): Promise<void> {
  const doc = await readFile(DOC, "utf8");
  const { rows, summary } = parseTable(doc, name);
  const byId = new Map(outcome.results.map((r): [string, CaseResult] => [r.id, r]));
  const actual: Row[] = outcome.results.map((r) => {
    const published = rows.find((row) => row.id === r.id);
    const why = published?.outcome === r.status ? published.why : (r.message ?? "");
    return { id: r.id, level: r.level, outcome: r.status, why };
  });
  if (process.env.STOWAGE_UPDATE_DOCS === "1") {
    const { start: START, end: END } = markers(name);
    const start = doc.indexOf(START);
    const end = doc.indexOf(END);
    await writeFile(DOC, `${doc.slice(0, start + START.length)}\n${renderTable(actual)}\n${doc.slice(end)}`);
    return;
  }
  const mismatches = actual.flatMap((a) => {
    const published = rows.find((row) => row.id === a.id);
    if (published === undefined) return [`${a.id}: not in the table (${a.outcome}: ${byId.get(a.id)?.message ?? ""})`];
    if (published.outcome !== a.outcome || published.level !== a.level) return [`${a.id}: published ${published.level} ${published.outcome}, the run gave ${a.level} ${a.outcome}: ${byId.get(a.id)?.message ?? ""}`];
    return [];
  });
  for (const row of rows) if (!byId.has(row.id)) mismatches.push(`${row.id}: in the table but not a case of the kit`);
  expect(mismatches, "docs/velero.md is stale: fix the table (or rerun with STOWAGE_UPDATE_DOCS=1 and explain the changed rows)").toEqual([]);
  expect(rows.map((r) => r.id)).toEqual(outcome.results.map((r) => r.id));
  expect(rows.every((r) => r.why.trim() !== ""), "every row of the table explains its outcome").toBe(true);
  expect(summary).toBe(summaryOf(actual));
}

describe("the kit against velero-plugin-for-aws through the host, with MinIO", () => {
  let minio: MinioServer;
  let admin: MinioClient;
  let dir: string;
  let credentials: string;
  let outcome: ConformanceOutcome;

  beforeAll(async () => {
    try {
      await access(AWS_PLUGIN, constants.X_OK);
    } catch {
      throw new Error(`${AWS_PLUGIN} is missing: run \`bash scripts/install-velero-plugins\` (go install github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@v1.14.2)`);
    }
    minio = await startMinio({ region: "minio" });
    const url = new URL(minio.endpoint);
    admin = new MinioClient({ endPoint: url.hostname, port: Number(url.port), useSSL: false, accessKey: minio.accessKey, secretKey: minio.secretKey, region: "minio" });
    await admin.makeBucket(BUCKET, "minio");
    dir = await mkdtemp(join(tmpdir(), "velero-conformance-"));
    credentials = join(dir, "credentials");
    await writeFile(credentials, `[default]\naws_access_key_id=${minio.accessKey}\naws_secret_access_key=${minio.secretKey}\n`);
    outcome = await runConformance({
      plugin: { command: AWS_PLUGIN, protocol: "velero", env: { AWS_SHARED_CREDENTIALS_FILE: credentials } },
      kind: "object-store",
      config: {
        objectStore: {
          plugin: "velero.io/aws",
          config: { region: "minio", s3ForcePathStyle: "true", s3Url: minio.endpoint, bucket: BUCKET },
          bucket: BUCKET,
          largeObjectMiB: 8,
          signedUrlExpiryGraceSeconds: 1,
          cancelGraceSeconds: 5,
        },
      },
    });
  }, 600_000);

  afterAll(async () => {
    await minio?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("runs every object-store case and leaves nothing behind", () => {
    expect(outcome.errors).toEqual([]);
    expect(outcome.results.map((r) => r.id).sort()).toEqual(casesFor("object-store").map((c) => c.id).sort());
    // Keys MinIO refuses as names (OS-KEYS-PATH-SEGMENTS, OS-KEY-TOO-LONG) fail their PutObject, and
    // their deletion fails the same way, with Velero's UNKNOWN text: refused, they are no leaks.
    expect(outcome.results.flatMap((r) => r.leaks.map((leak) => `${r.id}: ${leak}`))).toEqual([]);
    expect(outcome.leaks).toEqual([]);
  });

  it("gives, case by case, the outcome published in docs/velero.md", async () => {
    await checkPublished(outcome, "velero-aws-kit");
  });

  it("abandons rejected and cancelled uploads so that the Go plugin stores nothing, even a second later", async () => {
    const host = new PluginHost({ plugins: [{ command: AWS_PLUGIN, protocol: "velero", env: { AWS_SHARED_CREDENTIALS_FILE: credentials } }], logger: silentLogger });
    try {
      await host.start();
      const store = host.objectStore("velero.io/aws");
      await store.init({ region: "minio", s3ForcePathStyle: "true", s3Url: minio.endpoint, bucket: BUCKET });
      const wrong = createHash("sha256").update("something else").digest();
      const keys: string[] = [];
      // Small bodies (under the Go uploader's 5 MiB multipart threshold) with a wrong SHA-256 or size.
      for (let i = 0; i < 4; i++) {
        const key = `abandon/mismatch-${String(i)}`;
        keys.push(key);
        const error = await store.putObject({ bucket: BUCKET, key, body: Readable.from([Buffer.from(`body ${String(i)}`)]), ...(i % 2 === 0 ? { sha256: wrong } : { size: 100 }) }).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: Code.DataLoss, reason: Reason.IntegrityMismatch });
      }
      // A body the caller cancels after 2 MiB.
      const controller = new AbortController();
      const key = "abandon/cancelled";
      keys.push(key);
      let sent = 0;
      const stalled = (async function* () {
        for (let i = 0; i < 8; i++) {
          sent += 256 * 1024;
          yield Buffer.alloc(256 * 1024, i);
        }
        await new Promise((resolve) => setTimeout(resolve, 30_000).unref());
      })();
      const put = store.putObject({ bucket: BUCKET, key, body: stalled }, { signal: controller.signal }).catch((e: unknown) => e);
      while (sent < 2 * 1024 * 1024) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      controller.abort();
      expect(await put).toMatchObject({ code: Code.Canceled });
      // The defect this guards against showed up to a second later.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const stored: string[] = [];
      for (const k of keys) if (await admin.statObject(BUCKET, k).then(() => true, () => false)) stored.push(k);
      expect(stored).toEqual([]);
    } finally {
      await host.close();
    }
  }, 60_000);

  it("fails, among the cases Velero's protocol could pass, only the size cases and the documented backend and bucket cases", () => {
    // The size cases fail because Velero reports no sizes (contract 7.5): the kit says so.
    for (const id of ["OS-HEAD-SIZE", "OS-GET-SIZE", "OS-LIST-SIZE"]) {
      const r = outcome.results.find((x) => x.id === id);
      expect(r?.status, id).toBe("fail");
      expect(r?.message, id).toMatch(/-1 \(unknown\)/);
    }
    // Every case that reads data back passes: the data itself round-trips.
    for (const id of ["OS-PUT-EMPTY", "OS-PUT-SIZES", "OS-PUT-LARGE", "OS-OVERWRITE", "OS-HEAD", "PROTO-CANCEL-GET", "PROTO-CRASH-DURING-CALL", "OS-KEYS-NON-ASCII"]) {
      expect(outcome.results.find((x) => x.id === id)?.status, id).toBe("pass");
    }
  });
});

/** Creates an EBS volume in moto with a raw EC2 query call (moto does not check signatures). */
async function createMotoVolume(moto: MotoServer, zone: string): Promise<string> {
  const body = new URLSearchParams({ Action: "CreateVolume", Version: "2016-11-15", Size: "1", AvailabilityZone: zone, VolumeType: "gp3" });
  const res = await fetch(moto.endpoint, {
    method: "POST",
    body,
    headers: { authorization: `AWS4-HMAC-SHA256 Credential=${moto.accessKeyId}/20250101/${moto.region}/ec2/aws4_request, SignedHeaders=host, Signature=0` },
  });
  const id = /<volumeId>(.*?)<\/volumeId>/.exec(await res.text())?.[1];
  if (res.status !== 200 || id === undefined) throw new Error(`moto CreateVolume failed with HTTP ${String(res.status)}`);
  return id;
}

describe("the kit against velero-plugin-for-aws's VolumeSnapshotter through the host, with moto (EC2)", () => {
  let moto: MotoServer;
  let dir: string;
  let outcome: ConformanceOutcome;

  beforeAll(async () => {
    await access(AWS_PLUGIN, constants.X_OK);
    moto = await startMoto();
    dir = await mkdtemp(join(tmpdir(), "velero-conformance-ebs-"));
    const credentials = join(dir, "credentials");
    await writeFile(credentials, `[default]\naws_access_key_id=${moto.accessKeyId}\naws_secret_access_key=${moto.secretAccessKey}\n`);
    const zone = `${moto.region}a`;
    const volumeId = await createMotoVolume(moto, zone);
    outcome = await runConformance({
      plugin: { command: AWS_PLUGIN, protocol: "velero", env: { AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_ENDPOINT_URL_EC2: moto.endpoint } },
      kind: "block-store",
      config: {
        blockStore: {
          plugin: "velero.io/aws",
          config: { region: moto.region },
          volumeId,
          zone,
          volumeType: "gp3",
          missingVolumeId: "vol-0123456789abcdef0",
          missingSnapshotId: "snap-0123456789abcdef0",
          pvTemplates: {
            // Velero hands plugins whole PersistentVolumes; the Go plugin decodes them with apiVersion and kind.
            inTree: { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-in-tree" }, spec: { awsElasticBlockStore: { volumeID: `aws://${zone}/\${volumeId}`, fsType: "ext4" } } },
            csi: { apiVersion: "v1", kind: "PersistentVolume", metadata: { name: "pv-csi" }, spec: { csi: { driver: "ebs.csi.aws.com", volumeHandle: "${volumeId}", fsType: "ext4" } } },
          },
          snapshotReadyTimeoutSeconds: 5,
          pollIntervalSeconds: 0.2,
        },
      },
    });
  }, 600_000);

  afterAll(async () => {
    await moto?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("runs every block-store case", () => {
    expect(outcome.errors).toEqual([]);
    expect(outcome.results.map((r) => r.id).sort()).toEqual(casesFor("block-store").map((c) => c.id).sort());
  });

  it("gives, case by case, the outcome published in docs/velero.md", async () => {
    await checkPublished(outcome, "velero-aws-ebs-kit");
  });
});
