/**
 * `stowage package`'s parts that need no Node binary copied: the shebang's flags, which libraries
 * count as glibc's, finding patchelf, and the usage errors of a package that cannot be packaged.
 * The executables themselves are built and run by packaging/test/single-executable.slow.test.ts.
 */
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, StowageError } from "@stowage/sdk";
import { rejection } from "@stowage/sdk/testing";
import { describe, expect, it } from "vitest";
import { shebangNodeFlags } from "../src/package/bundle.js";
import { findPatchelf, isGlibcLibrary } from "../src/package/runtime-libs.js";
import { runCli, tempDir } from "./support/cli.js";

describe("stowage package", () => {
  it("takes the Node flags of the entry's shebang line, and only those", () => {
    expect(shebangNodeFlags("#!/usr/bin/env -S node --max-semi-space-size=1\nimport x from 'y';\n")).toEqual(["--max-semi-space-size=1"]);
    expect(shebangNodeFlags("#!/usr/local/bin/node --enable-source-maps --max-old-space-size=256\n")).toEqual(["--enable-source-maps", "--max-old-space-size=256"]);
    expect(shebangNodeFlags("#!/usr/bin/env node\n")).toEqual([]);
    expect(shebangNodeFlags("#!/bin/sh --flag\n")).toEqual([]);
    expect(shebangNodeFlags("import x from 'y'; // --not-a-flag\n")).toEqual([]);
  });

  it("ships every library but glibc's own", () => {
    for (const soname of ["libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"]) expect(isGlibcLibrary(soname), soname).toBe(true);
    for (const soname of ["libstdc++.so.6", "libgcc_s.so.1", "libcrypto.so.3", "libcurl.so.4", "libc++.so.1"]) expect(isGlibcLibrary(soname), soname).toBe(false);
  });

  it("finds patchelf through STOWAGE_PATCHELF or PATH, and says how to install it when there is none", async () => {
    const dir = await tempDir();
    const fake = join(dir, "patchelf");
    await writeFile(fake, "#!/bin/sh\necho patchelf 0.14.3\n");
    await chmod(fake, 0o755);
    expect(await findPatchelf({ PATH: `/nonexistent:${dir}` })).toBe(fake);
    expect(await findPatchelf({ STOWAGE_PATCHELF: fake, PATH: "" })).toBe(fake);
    const error = await rejection(findPatchelf({ PATH: "/nonexistent" }));
    expect(error).toBeInstanceOf(StowageError);
    expect((error).code).toBe(Code.FailedPrecondition);
    expect((error).message).toContain("apt-get install patchelf");
    expect(await rejection(findPatchelf({ STOWAGE_PATCHELF: join(dir, "missing"), PATH: dir }))).toBeInstanceOf(StowageError);
  });

  it("refuses, as a usage error naming the fix, a directory without a package, a package without a bin or with several, an unbuilt entry, and an output directory holding other files", async () => {
    const cwd = await tempDir();
    const pkg = async (name: string, manifest: object): Promise<string> => {
      const dir = join(cwd, name);
      await mkdir(dir);
      await writeFile(join(dir, "package.json"), JSON.stringify(manifest));
      return dir;
    };
    const cases: [string[], string][] = [
      [["package", join(cwd, "nothing-here")], "does not exist: give the directory of a package"],
      [["package", await pkg("no-bin", { name: "no-bin" })], "declares no bin to package"],
      [["package", await pkg("two-bins", { name: "two", bin: { a: "a.js", b: "b.js" } })], "declares several bins (a, b); choose one with --bin"],
      [["package", join(cwd, "two-bins"), "--bin", "c"], "declares no bin named c (it has: a, b)"],
      [["package", await pkg("unbuilt", { name: "@scope/unbuilt", bin: "./dist/main.js" })], "does not exist: build the package first"],
    ];
    // An output directory that holds anything a build did not write is never replaced.
    const built = await pkg("built", { name: "built", bin: "main.js" });
    await writeFile(join(built, "main.js"), "console.log('hi');\n");
    cases.push([["package", built, "--out", built], "holds files a build did not write (main.js, package.json); the output directory is replaced as a whole"]);
    for (const [args, message] of cases) {
      const result = await runCli(args, { cwd });
      expect(result.code, args.join(" ")).toBe(2);
      expect(result.stderr, args.join(" ")).toContain(message);
    }
    expect(await readFile(join(built, "main.js"), "utf8")).toBe("console.log('hi');\n");
  });
});
