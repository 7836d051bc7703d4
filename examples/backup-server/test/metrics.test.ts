/**
 * The backup server's Prometheus endpoint against the real local plugin from a plugin directory:
 * a backup, a restore, a restore of a missing backup (NOT_FOUND) and a plugin process killed with
 * SIGKILL (the next call relaunches it), then one real scrape of `/metrics`, checking the series
 * the exporter produces and that no label carries an object key or a backup name.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, silentLogger } from "@stowage/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupServer } from "../src/backup-server.js";
import { loadLocations } from "../src/locations.js";

const LOCAL_PLUGIN = fileURLToPath(new URL("../../../packages/plugin-local/dist/main.js", import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stowage-backup-metrics-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One sample of the exposition format: name, labels, value. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses Prometheus text exposition (the subset the exporter writes: no escapes in our label values). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (match === null) throw new Error(`unreadable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ""] = pair[2] ?? "";
    samples.push({ name: match[1] ?? "", labels, value: Number(match[3]) });
  }
  return samples;
}

/** The plugin processes (local plugin) that are this process's children, from /proc. */
async function pluginChildren(): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== process.pid) continue;
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      if (cmdline.includes(LOCAL_PLUGIN)) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

function sum(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((total, s) => total + s.value, 0);
}

describe("the backup server's Prometheus endpoint", () => {
  it("exposes operations, bytes, errors, plugin crashes and relaunches, and location availability", async () => {
    const plugins = join(dir, "plugins");
    await mkdir(plugins);
    await writeFile(join(plugins, "stowage-plugin-local"), `#!/bin/sh\nexec "${process.execPath}" "${LOCAL_PLUGIN}" "$@"\n`);
    await chmod(join(plugins, "stowage-plugin-local"), 0o755);
    const storage = join(dir, "storage");
    await mkdir(storage);
    await writeFile(
      join(dir, "locations.yaml"),
      `- name: primary\n  provider: stowage.io/local\n  bucket: backups\n  prefix: cluster-a\n  config: { root: ${JSON.stringify(storage)}, createBuckets: true }\n` +
        `- name: secondary\n  provider: stowage.io/local\n  bucket: absent\n  config: { root: ${JSON.stringify(storage)} }\n`,
    );
    const source = join(dir, "data");
    await mkdir(source);
    await writeFile(join(source, "secret-name-of-a-file.txt"), "x".repeat(100_000));

    const server = await BackupServer.start({ pluginDir: plugins, locations: await loadLocations(join(dir, "locations.yaml")), logger: silentLogger, metricsPort: 0 });
    try {
      const url = server.metricsUrl ?? "";
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const record = await server.backup("primary", "nightly-b1", source);
      await server.restore("primary", "nightly-b1", join(dir, "restored"));
      await expect(server.restore("primary", "missing-b2", join(dir, "nowhere"))).rejects.toMatchObject({ code: Code.NotFound });
      // The second location's bucket does not exist: its availability drops to 0.
      await expect(server.list("secondary")).rejects.toMatchObject({ reason: "BUCKET_NOT_FOUND" });

      // Kill the plugin processes (one per location) with SIGKILL; the next call relaunches one.
      const pids = await pluginChildren();
      expect(pids.length).toBeGreaterThanOrEqual(2);
      for (const pid of pids) process.kill(pid, "SIGKILL");
      for (let i = 0; (await pluginChildren()).some((pid) => pids.includes(pid)); i += 1) {
        if (i > 200) throw new Error("the killed plugin processes never went away");
        await sleep(20);
      }
      expect((await server.list("primary")).map((r) => r.name)).toEqual(["nightly-b1"]);

      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
      const text = await response.text();
      const samples = parseExposition(text);

      // The exporter (0.223) turns dots into underscores, adds `_total` to counters and writes the
      // unit in a `# UNIT` line, but appends no unit suffix: rpc.client.call.duration (s) is
      // `rpc_client_call_duration`, stowage.operation.bytes (By) is `stowage_operation_bytes_total`.
      expect(text).toContain("# UNIT rpc_client_call_duration s\n# TYPE rpc_client_call_duration histogram\n");
      expect(text).toContain("# UNIT stowage_operation_bytes_total By\n# TYPE stowage_operation_bytes_total counter\n");
      expect(samples.some((s) => s.name.startsWith("rpc_client_call_duration_seconds"))).toBe(false);
      const put = { rpc_method: "stowage.v1.ObjectStoreService/PutObject", rpc_response_status_code: "OK" };
      const get = { rpc_method: "stowage.v1.ObjectStoreService/GetObject", rpc_response_status_code: "OK" };
      const missing = { rpc_method: "stowage.v1.ObjectStoreService/GetObject", rpc_response_status_code: "NOT_FOUND" };
      for (const labels of [put, get, missing]) {
        expect(sum(samples, "rpc_client_call_duration_count", labels), JSON.stringify(labels)).toBeGreaterThanOrEqual(1);
        expect(sum(samples, "rpc_client_call_duration_bucket", { ...labels, le: "+Inf" })).toBe(sum(samples, "rpc_client_call_duration_count", labels));
        expect(samples.some((s) => s.name === "rpc_client_call_duration_sum" && s.labels.rpc_method === labels.rpc_method)).toBe(true);
      }
      expect(sum(samples, "rpc_client_call_duration_count", put)).toBe(2); // the archive and its record

      // stowage.operation.bytes (unit By): bytes stored and read; the archive's size is among them.
      const putBytes = sum(samples, "stowage_operation_bytes_total", { stowage_operation: "put", stowage_plugin: "stowage.io/local" });
      const getBytes = sum(samples, "stowage_operation_bytes_total", { stowage_operation: "get", stowage_plugin: "stowage.io/local" });
      expect(putBytes).toBeGreaterThan(record.size);
      expect(getBytes).toBeGreaterThan(record.size);

      // stowage.operation.errors with the NOT_FOUND code and its reason.
      const notFound = samples.filter((s) => s.name === "stowage_operation_errors_total" && s.labels.rpc_response_status_code === "NOT_FOUND" && s.labels.stowage_operation === "get");
      expect(notFound).toHaveLength(1);
      expect(notFound[0]?.labels).toMatchObject({ stowage_error_reason: "OBJECT_NOT_FOUND", error_type: "OBJECT_NOT_FOUND" });
      expect(sum(samples, "stowage_operation_errors_total", { stowage_error_reason: "BUCKET_NOT_FOUND" })).toBe(1);

      // Plugin processes: started at least once per location, crashed by the kill, relaunched by the next call.
      const executableOf = samples.find((s) => s.name === "stowage_plugin_process_starts_total")?.labels.stowage_executable ?? "";
      expect(executableOf).toMatch(/(^|\/)stowage-plugin-local$/);
      const executable = { stowage_executable: executableOf };
      expect(sum(samples, "stowage_plugin_process_starts_total", executable)).toBeGreaterThanOrEqual(3);
      expect(sum(samples, "stowage_plugin_process_crashes_total", executable)).toBe(pids.length);
      expect(sum(samples, "stowage_plugin_process_relaunches_total", executable)).toBeGreaterThanOrEqual(1);

      // stowage.location.available per location (plugin + instance).
      const available = samples.filter((s) => s.name === "stowage_location_available");
      expect(Object.fromEntries(available.map((s) => [s.labels.stowage_instance, s.value]))).toEqual({ primary: 1, secondary: 0 });
      expect(available.every((s) => s.labels.stowage_plugin === "stowage.io/local")).toBe(true);

      // No label carries an object key, a backup name, a file name or a bucket.
      for (const sample of samples) {
        for (const value of Object.values(sample.labels)) expect(value).not.toMatch(/nightly-b1|missing-b2|secret-name|cluster-a|backups\/|\.tar\.gz|absent/);
      }
      const second = await fetch(new URL("/other", url));
      expect(second.status).toBe(404);
      await second.body?.cancel();
    } finally {
      await server.close();
    }
    // The endpoint is gone with the server.
    await expect(fetch(server.metricsUrl ?? "")).rejects.toThrow();
  });
});
