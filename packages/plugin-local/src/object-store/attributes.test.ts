import { Code, StowageError } from "@stowage/sdk";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { attachmentDisposition, checkContentType, checkMetadata, isMediaType, servedContentType } from "./attributes.js";
import { LocalObjectStore } from "./local-object-store.js";

describe("content types", () => {
  it("are media types as RFC 9110 writes them", () => {
    for (const valid of ["application/gzip", "text/plain; charset=utf-8", "text/plain;charset=UTF-8", 'multipart/form-data; boundary="a b;c"', "application/vnd.api+json", "a/b;", "x/y ; q=1 ; r=2"]) {
      expect(isMediaType(valid), valid).toBe(true);
    }
    for (const invalid of ["text/html\r\nX-Injected: 1", "text/plain\n", "text", "/plain", "text/", "text/plain; charset", "text/pl ain", "tëxt/plain", "text/plain; a=\"unterminated", `a/${"b".repeat(1100)}`]) {
      expect(isMediaType(invalid), JSON.stringify(invalid)).toBe(false);
    }
  });

  it("are refused with INVALID_ARGUMENT naming the field, and may be empty", () => {
    expect(() => checkContentType(undefined)).not.toThrow();
    expect(() => checkContentType("")).not.toThrow();
    try {
      checkContentType("text/html\r\nSet-Cookie: a=b");
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.InvalidArgument);
      expect((error as StowageError).metadata.field).toBe("content_type");
      expect((error as StowageError).message).toContain("content type");
    }
  });

  it("are served as stored unless active or invalid", () => {
    expect(servedContentType("application/gzip")).toBe("application/gzip");
    expect(servedContentType("text/plain; charset=utf-8")).toBe("text/plain; charset=utf-8");
    for (const active of ["text/html", "TEXT/HTML; charset=utf-8", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/javascript", "application/pdf", "multipart/x-mixed-replace; boundary=x", "application/atom+xml"]) {
      expect(servedContentType(active), active).toBe("application/octet-stream");
    }
    // Stored by an earlier version that did not check: never sent as a header.
    expect(servedContentType("text/plain\r\nX: y")).toBe("application/octet-stream");
    expect(servedContentType("")).toBe("application/octet-stream");
  });

  it("come with an attachment disposition named after the key's last segment", () => {
    expect(attachmentDisposition("backups/b1/b1.tar.gz")).toBe("attachment; filename*=UTF-8''b1.tar.gz");
    expect(attachmentDisposition("a/é (1)*'.txt")).toBe("attachment; filename*=UTF-8''%C3%A9%20%281%29%2A%27.txt");
    expect(attachmentDisposition("dir/")).toBe("attachment");
  });
});

describe("metadata", () => {
  it("accepts header names as keys and text without control characters as values", () => {
    expect(() => checkMetadata({ "backup-name": "b1", owner_id: "42", "X-Amz-Ok": "ünïcödé and\ttabs", empty: "" })).not.toThrow();
  });

  it("refuses other keys and values with INVALID_ARGUMENT naming the field", () => {
    for (const metadata of [{ "with space": "x" }, { "": "x" }, { "new\nline": "x" }, { "é": "x" }, { k: "line\nbreak" }, { k: "carriage\rreturn" }, { k: "nul\0" }, { k: "del\u007f" }, { k: "c1\u0085" }]) {
      try {
        checkMetadata(metadata);
        expect.unreachable(JSON.stringify(metadata));
      } catch (error) {
        expect(error).toBeInstanceOf(StowageError);
        expect({ code: (error as StowageError).code, field: (error as StowageError).metadata.field }).toEqual({ code: Code.InvalidArgument, field: "metadata" });
      }
    }
  });
});

describe("putObject", () => {
  let root: string;
  let store: LocalObjectStore;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "stowage-local-attributes-"));
    await mkdir(join(root, "b"));
    store = new LocalObjectStore();
    await store.init({ root, fsync: "false" });
  });
  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it("refuses a content type with CR/LF and header-unsafe metadata before storing anything", async () => {
    const attempts = [
      { contentType: "text/html\r\nX-Injected: 1" },
      { contentType: "text/plain", metadata: { "bad key": "v" } },
      { contentType: "text/plain", metadata: { k: "v\r\nX-Injected: 1" } },
    ];
    for (const attempt of attempts) {
      const error = await store.putObject({ bucket: "b", key: "k", body: Readable.from([Buffer.from("x")]), ...attempt }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StowageError);
      expect((error as StowageError).code).toBe(Code.InvalidArgument);
      expect(["content_type", "metadata"]).toContain((error as StowageError).metadata.field);
    }
    expect(await store.headObject({ bucket: "b", key: "k" })).toBeUndefined();
    expect(await readdir(join(root, "b"))).toEqual([]);
  });
});
