// Copies the contract's .proto files into packages/sdk/proto/ (git-ignored), which the package
// publishes as `@stowage/sdk/proto/*` for plugin authors in other languages and for Node's stock
// gRPC tools (@grpc/proto-loader). Run by the repository's build and by the package's `prepack`.
//
// The folder holds one include root:
//   stowage/v1/*.proto            the contract (the repository's proto/)
//   plugin/*.proto                go-plugin's controller, stdio and broker services (third_party/proto/plugin)
//   grpc/health/v1/health.proto   the standard health service go-plugin expects
//   google/rpc/*.proto            google.rpc.Status and ErrorInfo, the rich error model of contract 4.3
// Velero's protos (third_party/proto/generated) are not part of the Stowage contract and stay out.
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const target = fileURLToPath(new URL("../proto/", import.meta.url));
const sources = [
  ["proto/stowage", "stowage"],
  ["third_party/proto/plugin", "plugin"],
  ["third_party/proto/grpc", "grpc"],
  ["third_party/proto/google", "google"],
];

rmSync(target, { recursive: true, force: true });
mkdirSync(target, { recursive: true });
for (const [from, to] of sources) {
  cpSync(`${root}${from}`, `${target}${to}`, { recursive: true });
}
