import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import type { Manifest } from "./helm.js";

/**
 * The TypeScript interface of each rendered kind, from the same packages as the schemas. The JSON
 * schemas those packages compile accept fields they do not know (as the API server's schemas do for
 * pruning), so a misspelt field (`readOnlyRootFileSystem`) would pass them and be dropped silently by
 * the API server. TypeScript's excess-property check on an object literal catches it, at every depth.
 */
const interfaces: Record<string, { module: string; name: string }> = {
  "apps/v1 Deployment": { module: "kubernetes-models/apps/v1/Deployment", name: "IDeployment" },
  "v1 Service": { module: "kubernetes-models/v1/Service", name: "IService" },
  "v1 ConfigMap": { module: "kubernetes-models/v1/ConfigMap", name: "IConfigMap" },
  "v1 ServiceAccount": { module: "kubernetes-models/v1/ServiceAccount", name: "IServiceAccount" },
  "policy/v1 PodDisruptionBudget": { module: "kubernetes-models/policy/v1/PodDisruptionBudget", name: "IPodDisruptionBudget" },
  "networking.k8s.io/v1 NetworkPolicy": { module: "kubernetes-models/networking.k8s.io/v1/NetworkPolicy", name: "INetworkPolicy" },
  "cert-manager.io/v1 Certificate": { module: "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate", name: "ICertificate" },
};

/**
 * Type-checks each object as a literal of its kind's interface, in one in-memory program (nothing is
 * written to disk), and returns TypeScript's complaints: unknown fields, wrong types, missing
 * required fields.
 *
 * @param manifests - Rendered objects, of the kinds above.
 * @returns One line per diagnostic, naming the object; empty when every field is known.
 */
export function fieldNameErrors(manifests: readonly Manifest[]): string[] {
  // A virtual file beside this one, so that its imports resolve through this package's node_modules.
  const file = path.join(path.dirname(fileURLToPath(import.meta.url)), "__rendered_manifests__.ts");
  const lines: string[] = [];
  manifests.forEach((manifest, index) => {
    const key = `${manifest.apiVersion} ${manifest.kind}`;
    const type = interfaces[key];
    if (type === undefined) throw new Error(`no interface for ${key}: add it to test/field-names.ts`);
    lines.push(`import type { ${type.name} as T${index} } from ${JSON.stringify(type.module)};`);
    lines.push(`// ${key} ${manifest.metadata.name}`);
    lines.push(`export const m${index}: T${index} = ${JSON.stringify(manifest, null, 2)};`);
  });
  const source = lines.join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    exactOptionalPropertyTypes: false,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === file ? ts.createSourceFile(name, source, languageVersion, true) : getSourceFile(name, languageVersion, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const sourceFile = program.getSourceFile(file);
  return ts.getPreEmitDiagnostics(program, sourceFile).map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n");
    if (d.file === undefined || d.start === undefined) return message;
    const { line } = d.file.getLineAndCharacterOfPosition(d.start);
    const text = d.file.text.split("\n");
    // The nearest "// <kind> <name>" line above names the object.
    let owner = "";
    for (let at = line; at >= 0 && owner === ""; at--) if (text[at]?.startsWith("// ")) owner = text[at]!.slice(3);
    return `${owner}: ${message} (at: ${text[line]?.trim() ?? ""})`;
  });
}
