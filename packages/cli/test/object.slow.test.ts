/**
 * `stowage object …` end to end: every step runs the `stowage` command, a Node process that launches
 * the embedded plugin-local, so the file runs dozens of processes (the slow tier).
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, runJson, startCli, tempDir } from "./support/cli.js";

interface ListDoc {
  bucket: string;
  prefix: string;
  delimiter: string;
  commonPrefixes: string[];
  objects: { key: string; size: number; etag: string; contentType: string; metadata: Record<string, string> }[];
}

/** A temp working directory with a local-plugin root inside. */
async function setup(): Promise<{ cwd: string; root: string; config: string[] }> {
  const cwd = await tempDir();
  const root = join(cwd, "root");
  await mkdir(root);
  return { cwd, root, config: ["--config", `root=${root}`] };
}

/** Reads the child's stdout until the first line is complete. */
async function firstLine(stream: NodeJS.ReadableStream): Promise<string> {
  let text = "";
  for await (const chunk of stream) {
    text += String(chunk);
    const nl = text.indexOf("\n");
    if (nl >= 0) return text.slice(0, nl);
  }
  throw new Error(`stdout ended without a line: ${JSON.stringify(text)}`);
}

describe("stowage object", () => {
  it("round-trips put, ls, get, url and rm against a local root", async () => {
    const { cwd, root, config } = await setup();
    const data = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(join(cwd, "in.bin"), data);

    const put = (await runJson(
      ["object", "put", "backups", "db/2024/dump.bin", "in.bin", "--json", "--content-type", "application/x-dump", "--meta", "owner=ops", "--meta", "tier=gold", ...config],
      { cwd },
    )) as { size: number; sha256: string; etag: string };
    expect(put.size).toBe(data.length);
    expect(put.sha256).toMatch(/^[0-9a-f]{64}$/);

    // From stdin, with the bucket created on the first put.
    const fromStdin = await runCli(["object", "put", "backups", "db/notes.txt", ...config], { cwd, input: "hello from stdin\n" });
    expect(fromStdin.code).toBe(0);
    expect(fromStdin.out).toContain("uploaded stdin to backups/db/notes.txt");

    // ls rolls up at "/" by default; --recursive lists every key with its attributes.
    const top = (await runJson(["object", "ls", "backups", "db/", "--json", ...config], { cwd })) as ListDoc;
    expect(top.commonPrefixes).toEqual(["db/2024/"]);
    expect(top.objects.map((o) => o.key)).toEqual(["db/notes.txt"]);
    const all = (await runJson(["object", "ls", "backups", "--recursive", "--page-size", "1", "--json", ...config], { cwd })) as ListDoc;
    expect(all.commonPrefixes).toEqual([]);
    expect(all.objects.map((o) => [o.key, o.size])).toEqual([
      ["db/2024/dump.bin", data.length],
      ["db/notes.txt", "hello from stdin\n".length],
    ]);
    expect(all.objects[0]!.contentType).toBe("application/x-dump");
    expect(all.objects[0]!.metadata).toEqual({ owner: "ops", tier: "gold" });
    const text = await runCli(["object", "ls", "backups", "db/", ...config], { cwd });
    expect(text.out).toMatch(/PRE\s+db\/2024\//);
    expect(text.out).toMatch(/\s17\s+db\/notes\.txt/);

    // get to a file, to stdout, and a range.
    const get = (await runJson(["object", "get", "backups", "db/2024/dump.bin", "out.bin", "--json", ...config], { cwd })) as { bytes: number; sha256: string };
    expect(get.bytes).toBe(data.length);
    expect(get.sha256).toBe(put.sha256);
    expect((await readFile(join(cwd, "out.bin"))).equals(data)).toBe(true);
    expect((await readdir(cwd)).filter((f) => f.endsWith(".partial"))).toEqual([]);
    const toStdout = await runCli(["object", "get", "backups", "db/notes.txt", ...config], { cwd });
    expect(toStdout.out).toBe("hello from stdin\n");
    const range = await runCli(["object", "get", "backups", "db/2024/dump.bin", "-", "--range", "1000-1999", ...config], { cwd });
    expect(range.code).toBe(0);
    expect(range.stdout.equals(data.subarray(1000, 2000))).toBe(true);

    // A signed GET URL works while --hold keeps the plugin running; SIGTERM ends it cleanly.
    const holder = startCli(["object", "url", "backups", "db/2024/dump.bin", "--ttl", "60", "--hold", ...config], { cwd });
    const exited = new Promise<number | null>((resolve) => holder.once("close", resolve));
    try {
      const url = await firstLine(holder.stdout);
      expect(new URL(url).protocol).toBe("http:");
      const response = await fetch(url, { headers: { connection: "close" } });
      expect(response.status).toBe(200);
      expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
      const tampered = new URL(url);
      tampered.searchParams.set("key", "db/notes.txt");
      expect((await fetch(tampered, { headers: { connection: "close" } })).status).toBe(403);
    } finally {
      holder.kill("SIGTERM");
    }
    expect(await exited).toBe(0);

    // Without --hold the URL is printed with a note that it dies with the command.
    const url = await runCli(["object", "url", "backups", "db/notes.txt", "--method", "PUT", "--ttl", "5", ...config], { cwd });
    expect(url.code).toBe(0);
    expect(url.out).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\S+\n$/);
    expect(url.stderr).toContain("--hold");

    // rm, then the object is gone.
    const rm = await runCli(["object", "rm", "backups", "db/2024/dump.bin", ...config], { cwd });
    expect(rm.code).toBe(0);
    expect(rm.out).toBe("deleted backups/db/2024/dump.bin\n");
    const missing = await runCli(["object", "get", "backups", "db/2024/dump.bin", "again.bin", ...config], { cwd });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('stowage: object "db/2024/dump.bin" not found in bucket "backups"\n');
    expect((await readdir(cwd)).sort()).toEqual(["in.bin", "out.bin", "root"]);
    expect((await readdir(join(root, "backups"))).length).toBeGreaterThan(0);
  }, 60_000);

  it("protects objects: put with a retention and a hold, stat and ls show them, rm is refused, retain extends, hold releases", async () => {
    const { cwd, config } = await setup();
    const locked = [...config, "--config", "objectLock=true"];
    const put = (await runJson(["object", "put", "vault", "b1.tar.gz", "--json", "--retain-until", "1d", "--retention-mode", "compliance", ...locked], {
      cwd,
      input: "backup bytes",
    })) as { protection: { retention: { mode: string; retainUntil: string }; legalHold: boolean } };
    expect(put.protection.retention.mode).toBe("compliance");
    const until = put.protection.retention.retainUntil;

    const stat = await runCli(["object", "stat", "vault", "b1.tar.gz", ...locked], { cwd });
    expect(stat.code).toBe(0);
    expect(stat.out).toContain(`protection    compliance until ${until}`);
    const ls = await runCli(["object", "ls", "vault", "--protection", ...locked], { cwd });
    expect(ls.out).toMatch(new RegExp(`compliance until ${until.replace(/\./g, "\\.")}\\s+b1\\.tar\\.gz`));

    // Delete and overwrite are refused with the date; compliance cannot be bypassed.
    const rm = await runCli(["object", "rm", "vault", "b1.tar.gz", "--bypass-governance", ...locked], { cwd });
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain(`it is protected by compliance retention until ${until}`);
    const overwrite = await runCli(["object", "put", "vault", "b1.tar.gz", ...locked], { cwd, input: "ransom" });
    expect(overwrite.code).toBe(1);
    const kept = await runCli(["object", "get", "vault", "b1.tar.gz", ...locked], { cwd });
    expect(kept.out).toBe("backup bytes");

    // Extend; a shorter retention is refused.
    const extended = (await runJson(["object", "retain", "vault", "b1.tar.gz", "--until", "2d", "--mode", "compliance", "--json", ...locked], { cwd })) as {
      protection: { retention: { retainUntil: string } };
    };
    expect(Date.parse(extended.protection.retention.retainUntil)).toBeGreaterThan(Date.parse(until));
    const shorter = await runCli(["object", "retain", "vault", "b1.tar.gz", "--until", "1h", "--mode", "compliance", ...locked], { cwd });
    expect(shorter.code).toBe(1);
    expect(shorter.stderr).toContain("cannot shorten the retention of");

    // A legal hold alone: refused while on, deleted once released.
    await runJson(["object", "put", "vault", "held", "--legal-hold", "--json", ...locked], { cwd, input: "x" });
    expect((await runCli(["object", "rm", "vault", "held", ...locked], { cwd })).code).toBe(1);
    const released = await runCli(["object", "hold", "vault", "held", "off", ...locked], { cwd });
    expect(released.out).toBe("vault/held: -\n");
    expect((await runCli(["object", "rm", "vault", "held", ...locked], { cwd })).code).toBe(0);

    const bucket = (await runJson(["object", "protection", "vault", "--json", ...locked], { cwd })) as { lockable: boolean; enforcedBy: string };
    expect(bucket.lockable).toBe(true);
    expect(bucket.enforcedBy).toMatch(/plugin/);
    // Without objectLock the bucket cannot hold protected objects.
    const plain = await runCli(["object", "put", "open", "k", "--legal-hold", ...config], { cwd, input: "x" });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/cannot hold protected objects/);
    const usage = await runCli(["object", "put", "vault", "k", "--retain-until", "yesterday", ...locked], { cwd, input: "x" });
    expect(usage.code).toBe(2);
  }, 60_000);

  it("defaults the local root to ./.stowage-data, or $STOWAGE_ROOT", async () => {
    const cwd = await tempDir();
    const put = await runCli(["object", "put", "b", "k"], { cwd, input: "x" });
    expect(put.code).toBe(0);
    expect((await readdir(join(cwd, ".stowage-data"))).length).toBeGreaterThan(0);
    const other = await tempDir();
    const ls = await runCli(["object", "ls", "b", "--json"], { cwd, env: { STOWAGE_ROOT: other } });
    expect(ls.code).toBe(1);
    expect(ls.stderr).toContain('bucket "b" does not exist');
  }, 30_000);

  it("explains usage and configuration errors with exit status 2", async () => {
    const { cwd, config } = await setup();
    const provider = await runCli(["object", "ls", "b", "--provider", "example.com/nope", ...config], { cwd });
    expect(provider.code).toBe(2);
    expect(provider.stderr).toBe('stowage: no object-store plugin named "example.com/nope"; available: [stowage.io/local]\n');
    const badConfig = await runCli(["object", "ls", "b", "--config", "colour=blue", ...config], { cwd });
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(/^stowage: .*colour.*\n$/);
    const badPair = await runCli(["object", "ls", "b", "--config", "root"], { cwd });
    expect(badPair.code).toBe(2);
    expect(badPair.stderr).toBe('stowage: --config expects key=value, got "root"\n');
    const range = await runCli(["object", "get", "b", "k", "--range", "9-3", ...config], { cwd });
    expect(range.code).toBe(2);
    const noFile = await runCli(["object", "put", "b", "k", "does-not-exist", ...config], { cwd });
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toBe("stowage: cannot read does-not-exist: no such file\n");
    const unknown = await runCli(["object", "copy"], { cwd });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^stowage: unknown command 'copy'/);
  }, 30_000);
});
