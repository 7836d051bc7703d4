/**
 * The rule for plugin names (contract 3.2), shared by `serve()`, the host and the tools.
 *
 * @packageDocumentation
 */

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[^/\s]+$/;

/**
 * Checks a plugin name: exactly one `/`, a DNS-1123 subdomain before it (at most 253 characters),
 * a non-empty name after it. Returns an explanation when invalid, `undefined` when valid.
 */
export function checkPluginName(name: string): string | undefined {
  const slash = name.indexOf("/");
  if (slash < 0) return `plugin name ${JSON.stringify(name)} must look like <domain>/<name>, for example example.com/s3`;
  if (slash > 253 || !NAME_RE.test(name)) {
    return `plugin name ${JSON.stringify(name)} is invalid: the part before "/" must be a lower-case DNS subdomain and the part after it non-empty without "/"`;
  }
  return undefined;
}

/** Whether `name` is a valid plugin name (see {@link checkPluginName}). */
export function isPluginName(name: string): boolean {
  return checkPluginName(name) === undefined;
}
