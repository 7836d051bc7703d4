/**
 * Cancellation helpers.
 *
 * @packageDocumentation
 */

/** The AWS SDK `send` options for an optional signal. */
export function abortable(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}
