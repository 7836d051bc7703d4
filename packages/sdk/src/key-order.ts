/**
 * Ordering of keys by the bytes of their UTF-8 encoding, the order the contract prescribes for
 * listings (clause 5.5.5).
 *
 * @packageDocumentation
 */

/**
 * Compares two well-formed strings in the lexicographic order of their UTF-8 bytes, which is the
 * order of their code points and the order of listings (contract 5.5.5). JavaScript's `<` compares
 * UTF-16 code units instead and disagrees for characters above U+FFFF (surrogate pairs,
 * `\uD800`–`\uDFFF`) against characters `\uE000`–`\uFFFF`. This function fixes that up at the
 * first differing unit, without encoding either string.
 *
 * @example
 * ```ts
 * keys.sort(compareUtf8);
 * ```
 *
 * @returns A negative number, zero or a positive number, like `Buffer.compare`.
 */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codeUnitRank(x) - codeUnitRank(y);
  }
  return a.length - b.length;
}

/**
 * Maps a UTF-16 code unit so that comparing mapped units agrees with comparing code points:
 * surrogates (which only occur in code points above U+FFFF) move above `\uFFFF`, and
 * `\uE000`–`\uFFFF` move down into the gap they leave.
 */
function codeUnitRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}
