/**
 * `--metrics-port`: `stowage object url --hold` serves the host's metrics for Prometheus while it
 * holds the URL; one real scrape after a put (its own command) and a GET through the signed URL
 * shows the host's calls, and the endpoint ends with the command. A bad port is a usage error.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, startCli, tempDir } from "./support/cli.js";

/**
 * Waits until what the child wrote on `stream` matches `pattern`; the stream keeps flowing (and
 * open) afterwards, so the child never writes into a closed pipe.
 */
async function waitFor(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<RegExpExecArray> {
  let text = "";
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer | string): void => {
      text += String(chunk);
      const match = pattern.exec(text);
      if (match === null) return;
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.on("data", () => undefined);
      resolve(match);
    };
    const onEnd = (): void => {
      reject(new Error(`the stream ended before ${String(pattern)}; it said: ${text}`));
    };
    stream.on("data", onData);
    stream.once("end", onEnd);
  });
}

describe("stowage --metrics-port", () => {
  it("serves the host's metrics while `object url --hold` runs, and stops with it", async () => {
    const cwd = await tempDir();
    const root = join(cwd, "root");
    await mkdir(root);
    const config = ["--config", `root=${root}`];
    const put = await runCli(["object", "put", "backups", "db/dump.bin", "-", ...config], { cwd, input: "some bytes of a dump" });
    expect(put.code, put.stderr).toBe(0);

    const holder = startCli(["--metrics-port", "0", "object", "url", "backups", "db/dump.bin", "--ttl", "60", "--hold", ...config], { cwd });
    const exited = new Promise<number | null>((resolve) => holder.once("close", resolve));
    let metricsUrl: string | undefined;
    try {
      const stderr = waitFor(holder.stderr, /metrics: (http:\/\/127\.0\.0\.1:\d+\/metrics)\n/);
      const [signedLine] = await waitFor(holder.stdout, /^http\S+\n/);
      metricsUrl = (await stderr)[1];
      expect(metricsUrl).toMatch(/^http:/);
      const object = await fetch(signedLine.trim(), { headers: { connection: "close" } });
      expect(await object.text()).toBe("some bytes of a dump");

      const response = await fetch(metricsUrl ?? "", { headers: { connection: "close" } });
      expect(response.status).toBe(200);
      const text = await response.text();
      // The exporter's names: dots become underscores, counters get `_total`, units go to `# UNIT`.
      expect(text).toContain("# TYPE rpc_client_call_duration histogram");
      expect(text).toMatch(/^rpc_client_call_duration_count\{[^}]*rpc_method="stowage\.v1\.ObjectStoreService\/CreateSignedURL"[^}]*rpc_response_status_code="OK"[^}]*\} 1$/m);
      expect(text).toMatch(/^rpc_client_call_duration_bucket\{[^}]*rpc_method="stowage\.v1\.ObjectStoreService\/Init"[^}]*le="\+Inf"[^}]*\} 1$/m);
      expect(text).toMatch(/^stowage_operation_duration_count\{[^}]*stowage_operation="signed-url"[^}]*\} 1$/m);
      expect(text).toMatch(/^stowage_plugin_process_starts_total\{[^}]*stowage_executable="[^"]+"[^}]*\} [1-9]/m);
      expect(text).toMatch(/^stowage_location_available\{stowage_plugin="stowage\.io\/local",stowage_instance="default"[^}]*\} 1$/m);
      // No label carries the key or the bucket.
      expect(text).not.toMatch(/dump\.bin|"backups"/);
    } finally {
      holder.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    await expect(fetch(metricsUrl ?? "http://127.0.0.1:1/")).rejects.toThrow();
  });

  it("refuses a port that is not one", async () => {
    const cwd = await tempDir();
    const result = await runCli(["--metrics-port", "70000", "plugins"], { cwd });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--metrics-port must be between 0 and 65535/);
  });
});
