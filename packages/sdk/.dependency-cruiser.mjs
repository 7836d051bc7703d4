// Module rules of the SDK, checked by `pnpm run check-deps` (part of `pnpm run lint`).
// See docs/architecture.md for the layers they protect.
/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "No import cycles in the SDK: every module can be read (and tested) on top of the ones it imports.",
      from: {},
      to: { circular: true },
    },
    {
      name: "core-reaches-protocols-through-registry",
      severity: "error",
      comment:
        "The core (host/, plugin/, wire/) does not know which protocols exist: it reaches the protocol adapters only through src/protocols/registry.ts.",
      from: { path: "^src/(host|plugin|wire)/" },
      to: { path: "^src/protocols/", pathNot: "^src/protocols/registry\\.ts$" },
    },
    {
      name: "protocols-are-independent",
      severity: "error",
      comment: "One protocol adapter does not import another's modules.",
      from: { path: "^src/protocols/([^/]+)/" },
      to: { path: "^src/protocols/([^/]+)/", pathNot: "^src/protocols/$1/" },
    },
    {
      name: "adapters-do-not-import-the-registry",
      severity: "error",
      comment: "Adapters are leaves under the registry; importing it back would make a cycle through the core.",
      from: { path: "^src/protocols/[^/]+/" },
      to: { path: "^src/protocols/registry\\.ts$" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports count too: a cycle of types is still a cycle to read.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.build.json" },
    exclude: { path: "^src/gen/" },
  },
};
