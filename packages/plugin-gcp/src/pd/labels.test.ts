import { describe, expect, it } from "vitest";
import { descriptionTags, labelFilter, labelKey, labelValue, tagsToLabels } from "./labels.js";

describe("tags as Compute Engine labels", () => {
  it("lower-cases and replaces characters labels do not allow", () => {
    expect(tagsToLabels({ "velero.io/backup": "Nightly.1", "velero.io/pv": "pvc-0a1b" })).toEqual({ velero_io_backup: "nightly_1", velero_io_pv: "pvc-0a1b" });
    expect(labelKey("team")).toBe("team");
    expect(labelValue("")).toBe("");
  });

  it("prefixes keys that do not start with a letter", () => {
    expect(labelKey("1st")).toBe("k1st");
    expect(labelKey("_x")).toBe("k_x");
  });

  it("cuts long keys and values to 63 characters with a hash, keeping distinct inputs distinct", () => {
    const a = labelValue(`${"a".repeat(70)}1`);
    const b = labelValue(`${"a".repeat(70)}2`);
    expect(a).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a.startsWith("a".repeat(54))).toBe(true);
    expect(labelKey(`K${"y".repeat(80)}`)).toMatch(/^ky{53}-[0-9a-f]{8}$/);
  });

  it("builds a list filter from tags, or none", () => {
    expect(labelFilter({ "stowage.io/run": "R1", app: "x" })).toBe('(labels.stowage_io_run = "r1") (labels.app = "x")');
    expect(labelFilter({})).toBeUndefined();
  });
});

describe("descriptionTags", () => {
  it("reads a JSON object's string entries and ignores other descriptions", () => {
    expect(descriptionTags('{"kubernetes.io/created-for/pvc/name":"data","n":1}')).toEqual({ "kubernetes.io/created-for/pvc/name": "data" });
    expect(descriptionTags("a disk")).toBeUndefined();
    expect(descriptionTags("{broken")).toBeUndefined();
    expect(descriptionTags("[1]")).toBeUndefined();
    expect(descriptionTags(undefined)).toBeUndefined();
  });
});
