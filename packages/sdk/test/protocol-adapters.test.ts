/**
 * The protocol adapters behind the registry: `serve()` picks one by the magic cookie in its
 * environment, the host by `PluginCommand.protocol`; what a host hands out shows only the
 * public interfaces; and the module rules (no cycles, the core reaches adapters only through the
 * registry) fail the check when broken.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import { Code, Reason, StowageError } from "../src/errors.js";
import * as hostEntry from "../src/host.js";
import type { HostBlockStore, HostObjectStore, PageListing, PluginHost } from "../src/host.js";
import { PageListing as Listing } from "../src/host/page-listing.js";
import { APP_PROTOCOL_VERSION, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "../src/protocol/constants.js";
import { hostAdapter, protocolNames, serveAdapterFor } from "../src/protocols/registry.js";
import type { ListSnapshotsPage } from "../src/types.js";
import { memoryFixture, startFixtureHost } from "./support/host.js";
import { rejection } from "../src/testing.js";

const run = promisify(execFile);
const sdkDir = dirname(dirname(fileURLToPath(import.meta.url)));

describe("the adapter registry", () => {
  it("serve() speaks the protocol whose magic cookie the environment carries, Stowage's first", () => {
    expect(serveAdapterFor({ [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE })?.name).toBe("stowage");
    expect(serveAdapterFor({ VELERO_PLUGIN: "hello" })?.name).toBe("velero");
    expect(serveAdapterFor({ [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, VELERO_PLUGIN: "hello" })?.name).toBe("stowage");
    expect(serveAdapterFor({ VELERO_PLUGIN: "bye" })).toBeUndefined();
    expect(serveAdapterFor({ [MAGIC_COOKIE_KEY]: "wrong" })).toBeUndefined();
    expect(serveAdapterFor({})).toBeUndefined();
  });

  it("the host picks the adapter PluginCommand.protocol names, Stowage's by default, with the handshake each expects", () => {
    expect(protocolNames()).toEqual(["stowage", "velero"]);
    const stowage = hostAdapter(undefined);
    expect([stowage.name, stowage.appVersion, stowage.cookie.key]).toEqual(["stowage", APP_PROTOCOL_VERSION, MAGIC_COOKIE_KEY]);
    const velero = hostAdapter("velero");
    expect([velero.name, velero.appVersion, velero.cookie.key, velero.cookie.value]).toEqual(["velero", 2, "VELERO_PLUGIN", "hello"]);
    expect(velero.withheldEnv).toContain(MAGIC_COOKIE_KEY);
    // Each side of a protocol agrees on the handshake.
    for (const name of protocolNames()) {
      const host = hostAdapter(name);
      const served = serveAdapterFor({ [host.cookie.key]: host.cookie.value });
      expect([served?.name, served?.appVersion]).toEqual([name, host.appVersion]);
    }
  });

  it("an unknown protocol fails with INVALID_ARGUMENT naming the known ones, and the host's start names the executable", async () => {
    const error = (() => {
      try {
        hostAdapter("nfs");
      } catch (e) {
        return e as StowageError;
      }
      return undefined;
    })();
    expect(error?.code).toBe(Code.InvalidArgument);
    expect(error?.rawMessage).toBe('unknown plugin protocol "nfs"; use one of stowage, velero');
    const host = new hostEntry.PluginHost({ plugins: [{ command: process.execPath, args: [memoryFixture], protocol: "nfs" }], handshakeTimeoutMs: 60_000 });
    const failed = await rejection(host.start());
    expect(failed.code).toBe(Code.FailedPrecondition);
    expect(failed.rawMessage).toMatch(/^plugin \S*memory-plugin\.mjs: unknown plugin protocol "nfs"; use one of stowage, velero$/);
  });
});

describe("what the host hands out", () => {
  let host: PluginHost;
  beforeAll(async () => {
    host = await startFixtureHost("with-blocks");
  }, 120_000);
  afterAll(async () => {
    await host.close();
  });

  it("the host entry point exports functions, PluginHost and the direct-transfer executor only, no client class", () => {
    expect(Object.keys(hostEntry).sort()).toEqual([
      "DIRECT_TRANSFER_DEFAULTS",
      "DirectTransferExecutor",
      "PluginHost",
      "STREAMING_NODE_FLAGS",
      "StoreUnreachable",
      "discoverExecutables",
      "formatHandshake",
      "nodePluginCommand",
      "parseHandshake",
      "parseLogLine",
    ]);
  });

  it("clients are typed by their interfaces and show nothing but them", async () => {
    const objects = host.objectStore("fixture.stowage.io/memory");
    const blocks = host.blockStore("fixture.stowage.io/blocks");
    expectTypeOf(objects).toEqualTypeOf<HostObjectStore>();
    expectTypeOf(blocks).toEqualTypeOf<HostBlockStore>();
    // Public state is the descriptor and the protocol; everything else lives in private fields.
    expect(Object.keys(objects).sort()).toEqual(["descriptor", "protocol"]);
    expect(Object.keys(blocks).sort()).toEqual(["descriptor", "protocol"]);
    expect(objects.protocol).toBe("stowage");
    expect(objects.descriptor.name).toBe("fixture.stowage.io/memory");
    await objects.init({});
  });

  it("listSnapshots iterates pages like listObjects, and awaiting it still gives the first page", async () => {
    const blocks = host.blockStore("fixture.stowage.io/blocks");
    await blocks.init({});
    await blocks.createSnapshot({ volumeId: "vol-1", tags: { run: "listing" } });
    const pages: ListSnapshotsPage[] = [];
    for await (const page of blocks.listSnapshots({ tagFilter: { run: "listing" } })) pages.push(page);
    expect(pages.map((p) => p.snapshots.map((s) => s.tags.run))).toEqual([["listing"]]);
    expect((await blocks.listSnapshots({ tagFilter: { run: "listing" } })).snapshots).toHaveLength(1);
    const invalid = await rejection(blocks.listSnapshots({ maxPages: -1 }));
    expect(invalid.code).toBe(Code.InvalidArgument);
  });
});

describe("PageListing", () => {
  const pages: Record<string, ListSnapshotsPage> = {
    "": { snapshots: [], nextPageToken: "b" },
    b: { snapshots: [], nextPageToken: "c" },
    c: { snapshots: [], nextPageToken: "" },
  };
  const fetched: string[] = [];
  const fetch = async (token: string): Promise<ListSnapshotsPage> => {
    fetched.push(token);
    const page = pages[token];
    if (page === undefined) throw new StowageError(Code.InvalidArgument, "bad token", { reason: Reason.InvalidPageToken });
    return page;
  };
  const tokens = async (listing: PageListing<ListSnapshotsPage>): Promise<string[]> => {
    const seen: string[] = [];
    for await (const page of listing) seen.push(page.nextPageToken);
    return seen;
  };

  it("follows the tokens from the given one to the last page, fetching each page once", async () => {
    fetched.length = 0;
    expect(await tokens(new Listing(fetch))).toEqual(["b", "c", ""]);
    expect(fetched).toEqual(["", "b", "c"]);
    expect(await tokens(new Listing(fetch, "b"))).toEqual(["c", ""]);
  });

  it("stops after maxPages, and awaiting gives the first page as a plain promise would", async () => {
    expect(await tokens(new Listing(fetch, "", 2))).toEqual(["b", "c"]);
    expect((await new Listing(fetch, "b")).nextPageToken).toBe("c");
    expect(new Listing(fetch).then(() => undefined)).not.toBeInstanceOf(Listing);
  });

  it("fails instead of looping when a page hands back the token it was fetched with", async () => {
    const loop = new Listing(async () => ({ snapshots: [], nextPageToken: "same" }));
    await expect(tokens(loop)).rejects.toThrow(/returned the page token it was given/);
  });
});

describe("the module rules (pnpm run check-deps)", () => {
  it("no module of the core (host/, plugin/, wire/) names a foreign protocol: those live in src/protocols/", async () => {
    const named: string[] = [];
    for (const dir of ["host", "plugin", "wire"]) {
      for (const file of await readdir(join(sdkDir, "src", dir), { recursive: true })) {
        if (!file.endsWith(".ts")) continue;
        if (/velero/i.test(await readFile(join(sdkDir, "src", dir, file), "utf8"))) named.push(`${dir}/${file}`);
      }
    }
    expect(named).toEqual([]);
  });

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stowage-depcruise-"));
    const files: Record<string, string> = {
      "tsconfig.build.json": JSON.stringify({ compilerOptions: { module: "nodenext", moduleResolution: "nodenext", strict: true } }),
      "src/host/a.ts": 'import { b } from "./b.js";\nexport const a = (): number => b() + 1;\n',
      "src/host/b.ts": 'import { a } from "./a.js";\nexport const b = (): number => a() - 1;\n',
      "src/plugin/c.ts": 'import { d } from "../protocols/some/d.js";\nexport const c = d;\n',
      "src/protocols/some/d.ts": "export const d = 1;\n",
      "src/protocols/registry.ts": 'export { d } from "./some/d.js";\n',
      "src/wire/e.ts": 'import { d } from "../protocols/registry.js";\nexport const e = d;\n',
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("fails on an import cycle and on a core module importing an adapter past the registry, and only on those", async () => {
    const bin = join(sdkDir, "node_modules", ".bin", "depcruise");
    const failure = await run(bin, ["src", "--config", join(sdkDir, ".dependency-cruiser.mjs"), "--output-type", "err"], { cwd: dir }).then(
      () => undefined,
      (error: unknown) => error as { code: number; stdout: string },
    );
    expect(failure?.code).toBeGreaterThan(0);
    expect(failure?.stdout).toMatch(/no-circular: src\/host\/a\.ts/);
    expect(failure?.stdout).toMatch(/core-reaches-protocols-through-registry: src\/plugin\/c\.ts → src\/protocols\/some\/d\.ts/);
    expect(failure?.stdout).not.toMatch(/src\/wire\/e\.ts/);
    // The SDK itself passes.
    await expect(run(bin, ["src", "--config", ".dependency-cruiser.mjs", "--output-type", "err"], { cwd: sdkDir })).resolves.toBeDefined();
  }, 180_000);
});
