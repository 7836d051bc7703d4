/**
 * The allow list of network mode (`--allow FILE`): which caller identities may use which plugins.
 *
 * ```json
 * {"allow":[{"identity":"cn:backup-server","plugins":["stowage.io/aws"]},
 *           {"identity":"uri:spiffe://cluster.local/ns/backup/sa/server","plugins":["*"]}]}
 * ```
 *
 * A rule matches a caller when its `identity` equals any of the caller's names
 * (`caller-identity.ts`); `"*"` stands for every plugin. Without an allow list every caller whose
 * certificate verifies may use every plugin.
 */
import { readFileSync } from "node:fs";
import * as z from "zod";
import { Code, Reason, StowageError } from "../errors.js";
import { checkPluginName } from "../plugin-name.js";
import type { CallerIdentity } from "./caller-identity.js";

const RuleSchema = z.strictObject({
  identity: z.string().regex(/^(cn|dns|uri):./, 'must be "cn:<common name>", "dns:<DNS SAN>" or "uri:<URI SAN>"'),
  plugins: z
    .array(z.string().refine((name) => name === "*" || checkPluginName(name) === undefined, { message: 'must be a plugin name such as "stowage.io/aws", or "*"' }))
    .min(1, "must name at least one plugin, or \"*\""),
});

/** The JSON shape of an allow-list file. */
export const AllowListSchema = z.strictObject({ allow: z.array(RuleSchema) });

/** A parsed allow list. */
export type AllowList = z.infer<typeof AllowListSchema>;

/** The shape of the file, for error messages. */
const SHAPE = '{"allow":[{"identity":"cn:…" | "dns:…" | "uri:…","plugins":["<plugin name>" or "*", …]}, …]}';

/** One line per zod issue: `allow[0].identity: must be …`. */
function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map((p, i) => (typeof p === "number" ? `[${String(p)}]` : i === 0 ? String(p) : `.${String(p)}`)).join("");
      return `${path === "" ? "the file" : path}: ${issue.message}`;
    })
    .join("; ");
}

/**
 * Reads and checks an allow-list file.
 *
 * @throws Error saying what is wrong (unreadable, not JSON, not the expected shape) and what the shape is.
 */
export function loadAllowList(file: string): AllowList {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new Error(`cannot read the allow list ${file} (--allow): ${(error as Error).message}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`the allow list ${file} (--allow) is not JSON: ${(error as Error).message}; write it as ${SHAPE}`, { cause: error });
  }
  const parsed = AllowListSchema.safeParse(json);
  if (!parsed.success) throw new Error(`the allow list ${file} (--allow) is not valid: ${describeIssues(parsed.error)}; write it as ${SHAPE}`);
  return parsed.data;
}

/** Who may use which plugin: an allow list, or everyone when there is none. */
export class AccessPolicy {
  readonly #rules: AllowList["allow"] | undefined;

  /** @param list - The allow list; `undefined` lets every verified caller use every plugin. */
  constructor(list: AllowList | undefined) {
    this.#rules = list?.allow;
  }

  /** Whether the policy restricts anything (an allow list was given). */
  get restricted(): boolean {
    return this.#rules !== undefined;
  }

  /** The plugin names (or `*`) the allow list mentions, for a check against the served plugins. */
  mentioned(): Set<string> {
    return new Set((this.#rules ?? []).flatMap((rule) => rule.plugins));
  }

  /** Whether `caller` may use `plugin`. */
  allows(caller: CallerIdentity, plugin: string): boolean {
    if (this.#rules === undefined) return true;
    return this.#rules.some((rule) => caller.names.includes(rule.identity) && (rule.plugins.includes("*") || rule.plugins.includes(plugin)));
  }

  /** The error of a call `caller` may not make: PERMISSION_DENIED naming the identity, the plugin and the allow list. */
  denied(caller: CallerIdentity, plugin: string): StowageError {
    const names = caller.names.length === 0 ? "a client certificate with no CN, DNS or URI name" : caller.names.join(", ");
    return new StowageError(
      Code.PermissionDenied,
      `the caller identified as ${names} may not use plugin ${plugin}: no rule of this server's allow list (--allow) gives it that plugin; ask its operator to add {"identity":"${caller.display}","plugins":["${plugin}"]}`,
      { reason: Reason.AccessDenied, metadata: { plugin, identity: caller.display } },
    );
  }
}
