// The order of checkpoint names: UTF-8 byte order, as SQLite's BINARY
// collation sorts them, and the upper bound of a name prefix in that order.
/**
 * Compares two strings by Unicode code point, which is the order of their
 * UTF-8 bytes and so the order of SQLite's BINARY collation. JavaScript's `<`
 * compares UTF-16 code units instead and puts characters above U+FFFF before
 * U+E000..U+FFFF.
 *
 * @category Stores
 */
export function compareNames(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

// Moves surrogates (D800..DFFF) above E000..FFFF so that code units sort as code points.
function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/**
 * The smallest string greater than every string that starts with `prefix`, or
 * `undefined` when there is none (the prefix is all U+10FFFF). Names that
 * start with `prefix` are exactly those in `[prefix, upper)`.
 */
export function prefixUpperBound(prefix: string): string | undefined {
  const points = Array.from(prefix, (char) => char.codePointAt(0) ?? 0);
  for (let i = points.length - 1; i >= 0; i--) {
    const point = points[i] ?? 0;
    if (point < 0x10ffff) {
      const next = point === 0xd7ff ? 0xe000 : point + 1;
      return String.fromCodePoint(...points.slice(0, i), next);
    }
  }
  return undefined;
}
