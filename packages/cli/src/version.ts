/**
 * The CLI's version.
 *
 * @packageDocumentation
 */

/** The CLI's version, shown by `stowage --version` and used for scaffolded dependencies. */
export const VERSION = "0.1.0";
