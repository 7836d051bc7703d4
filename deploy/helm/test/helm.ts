import { execFile } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

/** The chart under test. */
export const chartDir = fileURLToPath(new URL("../stowage-plugin-service", import.meta.url));

/** The release name and namespace every render uses. */
export const release = { name: "plugins", namespace: "stowage" } as const;

/**
 * The helm that `scripts/install-helm` builds: `<repo>/.tools/bin/helm`, or `$STOWAGE_TOOLS_DIR/bin/helm`.
 *
 * @returns Its absolute path, once checked to be executable.
 */
export async function helmBinary(): Promise<string> {
  const fromEnv = process.env.STOWAGE_TOOLS_DIR;
  const tools =
    fromEnv !== undefined && fromEnv !== "" ? path.resolve(fromEnv) : fileURLToPath(new URL("../../../.tools", import.meta.url));
  const helm = path.join(tools, "bin", "helm");
  try {
    await access(helm, constants.X_OK);
  } catch {
    throw new Error(`helm is not installed: ${helm} is missing. Install it with: bash scripts/install-helm`);
  }
  return helm;
}

/** What a helm command printed, and how it ended. */
export interface HelmResult {
  /** The exit code (0 on success). */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** A helm runner isolated from the user's helm configuration, for one test file. */
export interface Helm {
  /**
   * Runs helm with the given arguments and never throws on a non-zero exit.
   *
   * @param args - Helm's arguments.
   */
  run(args: readonly string[]): Promise<HelmResult>;
  /**
   * `helm template` of the chart with the given values (written to a file and passed with `-f`).
   *
   * @param values - Values overriding the chart's defaults.
   */
  template(values?: object): Promise<HelmResult>;
  /**
   * `helm lint --strict` of the chart with the given values.
   *
   * @param values - Values overriding the chart's defaults.
   */
  lint(values?: object): Promise<HelmResult>;
  /** Removes the temporary folder. */
  close(): Promise<void>;
}

/**
 * Makes a {@link Helm} whose configuration, cache and data folders are in a fresh temporary folder.
 *
 * @returns The runner.
 */
export async function openHelm(): Promise<Helm> {
  const helm = await helmBinary();
  const home = await mkdtemp(path.join(os.tmpdir(), "stowage-helm-"));
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: home,
    HELM_CONFIG_HOME: path.join(home, "config"),
    HELM_CACHE_HOME: path.join(home, "cache"),
    HELM_DATA_HOME: path.join(home, "data"),
    KUBECONFIG: path.join(home, "no-kubeconfig"),
  };
  let counter = 0;
  const run = (args: readonly string[]): Promise<HelmResult> =>
    new Promise((resolve) => {
      execFile(helm, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1;
        resolve({ code, stdout, stderr });
      });
    });
  const valuesArgs = async (values: object | undefined): Promise<string[]> => {
    if (values === undefined) return [];
    const file = path.join(home, `values-${counter++}.json`);
    await writeFile(file, JSON.stringify(values));
    return ["-f", file];
  };
  return {
    run,
    async template(values) {
      return run(["template", release.name, chartDir, "--namespace", release.namespace, ...(await valuesArgs(values))]);
    },
    async lint(values) {
      return run(["lint", "--strict", chartDir, "--namespace", release.namespace, ...(await valuesArgs(values))]);
    },
    async close() {
      await rm(home, { recursive: true, force: true });
    },
  };
}

/** One rendered Kubernetes object, as parsed from helm's output. */
export interface Manifest {
  /** The object's API group and version. */
  apiVersion: string;
  /** The object's kind. */
  kind: string;
  /** Its metadata (name, namespace, labels). */
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  /** Everything else, unchecked here. */
  [field: string]: unknown;
}

/**
 * Splits helm's output into its objects, dropping empty documents.
 *
 * @param text - Multi-document YAML.
 * @returns The objects in order.
 */
export function parseManifests(text: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`helm printed invalid YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    manifests.push(value as Manifest);
  }
  return manifests;
}
