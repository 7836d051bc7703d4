import { Code, Reason, StowageError } from "../errors.js";
import type { ConfigKeySpec, PluginConfig } from "../types.js";

/**
 * Checks a configuration map against the keys a plugin accepts. Unknown keys and missing required
 * keys fail with `INVALID_ARGUMENT`/`INVALID_CONFIG`; the message and the `valid_keys` metadata
 * list every valid key so the operator can fix the config in one go.
 *
 * @example
 * ```ts
 * validateConfig({ root: "/data", rot: "x" }, [{ name: "root", required: true }]);
 * // throws: [invalid_argument] config has invalid keys [rot]; valid keys are [root]
 * ```
 */
export function validateConfig(config: PluginConfig, keys: readonly ConfigKeySpec[]): void {
  const valid = keys.map((k) => k.name).sort();
  const unknown = Object.keys(config)
    .filter((k) => !valid.includes(k))
    .sort();
  const missing = keys.filter((k) => k.required === true && (config[k.name] ?? "") === "").map((k) => k.name);
  if (unknown.length === 0 && missing.length === 0) return;
  const problems: string[] = [];
  if (unknown.length > 0) problems.push(`config has invalid keys [${unknown.join(", ")}]`);
  if (missing.length > 0) problems.push(`config lacks required keys [${missing.join(", ")}]`);
  throw new StowageError(Code.InvalidArgument, `${problems.join("; ")}; valid keys are [${valid.join(", ")}]`, {
    reason: Reason.InvalidConfig,
    metadata: { valid_keys: valid.join(","), invalid_keys: unknown.join(","), missing_keys: missing.join(",") },
  });
}

/**
 * Returns a copy of `config` in which the values of secret keys are replaced by `[REDACTED]`,
 * fit for logs and error messages.
 */
export function redactConfig(config: PluginConfig, keys: readonly ConfigKeySpec[]): Record<string, string> {
  const secret = new Set(keys.filter((k) => k.secret === true).map((k) => k.name));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) out[k] = secret.has(k) ? "[REDACTED]" : v;
  return out;
}
