// Numbers and counts in words: thousands separators, significant digits, ordinals, plurals, and
// runs of input lines. Pure: no DOM.

const GROUPER = new Intl.NumberFormat('en-US');

/**
 * An integer with thousands separators: 65536 → "65,536".
 * @param {number} n
 * @returns {string}
 */
export function formatInt(n) {
  return GROUPER.format(n);
}

/**
 * A real number in at most `digits` significant digits, without exponent for everyday sizes.
 * @param {number} x
 * @param {number} [digits=3]
 * @returns {string}
 */
export function formatNumber(x, digits = 3) {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e9 || a < 1e-3) return x.toExponential(digits - 1).replace('e+', 'e').replace(/-/g, '−'); // the exponent's sign too
  if (a >= 1000) return GROUPER.format(Math.round(x)).replace('-', '−');
  return String(Number(x.toPrecision(digits))).replace('-', '−');
}

/**
 * A count with its noun: counted(1, 'position') → "1 position", counted(102400, 'position') →
 * "102,400 positions".
 * @param {number} n
 * @param {string} noun singular
 * @param {string} [many] plural, if not noun + "s"
 * @returns {string}
 */
export function counted(n, noun, many = `${noun}s`) {
  return `${formatInt(n)} ${n === 1 ? noun : many}`;
}

/**
 * An English ordinal: 1 → "1st", 2 → "2nd", 3 → "3rd", 11 → "11th", 22 → "22nd".
 * @param {number} n
 * @returns {string}
 */
export function ordinal(n) {
  const tens = Math.floor(n / 10) % 10;
  const suffix = tens === 1 ? 'th' : ({ 1: 'st', 2: 'nd', 3: 'rd' })[n % 10] || 'th';
  return `${n}${suffix}`;
}

/**
 * A large count in words: 2_300_000_000 → "2.3 billion"; below a thousand, the number itself.
 * @param {number} n
 * @returns {string}
 */
export function numberInWords(n) {
  const scales = [[1e15, 'quadrillion'], [1e12, 'trillion'], [1e9, 'billion'], [1e6, 'million'], [1e3, 'thousand']];
  for (const [size, word] of scales) {
    if (n >= size) {
      const v = n / size;
      return `${v >= 100 ? Math.round(v) : Number(v.toPrecision(2))} ${word}`;
    }
  }
  return formatInt(n);
}

/**
 * Input lines no output reads, in words a learner can take in: a long regular run becomes
 * "1, 3, 5, …, 319 (every 2nd row, 160 in all)" instead of 160 numbers.
 * @param {[number, number][]} runs [start, stop) runs, as in the API's `unused`
 * @param {string} noun "row" or "column"
 * @returns {string}
 */
export function describeLines(runs, noun) {
  const fmt = ([a, b]) => (b - a === 1 ? `${a}` : `${a}–${b - 1}`);
  const total = runs.reduce((acc, [a, b]) => acc + b - a, 0);
  const plural = total === 1 ? noun : `${noun}s`;
  if (runs.length <= 6) return `${plural} ${runs.map(fmt).join(', ')}`;
  const width = runs[0][1] - runs[0][0];
  const step = runs[1][0] - runs[0][0];
  const regular = runs.every(([a, b], i) => b - a === width && (i === 0 || a - runs[i - 1][0] === step));
  if (regular) {
    const last = runs[runs.length - 1];
    const nth = ordinal(step);
    const what = width === 1 ? `every ${nth} ${noun}` : `${width} ${noun}s out of every ${step}`;
    return `${plural} ${runs.slice(0, 3).map(fmt).join(', ')}, …, ${fmt(last)} (${what}, ${formatInt(total)} in all)`;
  }
  return `${plural} ${runs.slice(0, 4).map(fmt).join(', ')}, …, ${runs.slice(-2).map(fmt).join(', ')} (${formatInt(total)} in all)`;
}
