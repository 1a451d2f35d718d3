// Pure helpers: the geometry of one conv layer, number formatting, small array maths.
// No DOM here. Conventions are PyTorch's (cross-correlation, symmetric zero padding):
//   out = floor((n + 2p - d(k - 1) - 1) / s) + 1   along each axis.

/**
 * Parse "3" or "3,5" into a [h, w] pair of integers.
 * @param {string|number} text
 * @returns {[number, number]|null} null when it is not one or two integers
 */
export function parsePair(text) {
  const parts = String(text).split(',').map((t) => t.trim()).filter((t) => t !== '');
  if (parts.length < 1 || parts.length > 2 || !parts.every((t) => /^-?\d+$/.test(t))) return null;
  const nums = parts.map(Number);
  return nums.length === 1 ? [nums[0], nums[0]] : [nums[0], nums[1]];
}

/**
 * Output size along one axis.
 * @param {number} n input size
 * @param {number} k kernel size
 * @param {number} s stride (>= 1)
 * @param {number} p padding on each side
 * @param {number} d dilation (>= 1)
 * @returns {number} floor((n + 2p - d(k - 1) - 1) / s) + 1, or 0 when the kernel does not fit
 */
export function computeOutputSize(n, k, s, p, d) {
  const span = n + 2 * p - d * (k - 1) - 1;
  if (span < 0) return 0;
  return Math.floor(span / s) + 1;
}

/**
 * Padding that keeps the size at stride 1 ("same"), as the API resolves it.
 * @param {[number, number]} kernel
 * @param {[number, number]} dilation
 * @returns {[number, number]}
 */
export function samePadding(kernel, dilation) {
  return [0, 1].map((a) => Math.floor((dilation[a] * (kernel[a] - 1)) / 2));
}

/**
 * @typedef {object} Geometry
 * @property {[number, number]} kernel (kh, kw)
 * @property {[number, number]} stride (sh, sw)
 * @property {[number, number]} padding (ph, pw)
 * @property {[number, number]} dilation (dh, dw)
 */

/**
 * Receptive field of output unit (row, col): the window box in input coordinates (it may start
 * in the padding, at negative coordinates) and the input coordinate of every tap.
 * @param {Geometry} g
 * @param {number} row output row
 * @param {number} col output column
 * @param {number} h input height
 * @param {number} w input width
 * @returns {{top: number, left: number, height: number, width: number,
 *   tapRows: number[], tapCols: number[], taps: {u: number, v: number, row: number, col: number, padding: boolean}[]}}
 */
export function receptiveField(g, row, col, h, w) {
  const tapRows = [];
  const tapCols = [];
  for (let u = 0; u < g.kernel[0]; u++) tapRows.push(g.stride[0] * row - g.padding[0] + g.dilation[0] * u);
  for (let v = 0; v < g.kernel[1]; v++) tapCols.push(g.stride[1] * col - g.padding[1] + g.dilation[1] * v);
  const taps = [];
  tapRows.forEach((r, u) => tapCols.forEach((c, v) => {
    taps.push({ u, v, row: r, col: c, padding: r < 0 || r >= h || c < 0 || c >= w });
  }));
  return {
    top: tapRows[0],
    left: tapCols[0],
    height: g.dilation[0] * (g.kernel[0] - 1) + 1,
    width: g.dilation[1] * (g.kernel[1] - 1) + 1,
    tapRows,
    tapCols,
    taps,
  };
}

/**
 * Input lines (rows or columns) that no output reads, as [start, stop) runs.
 * @param {number} n input size
 * @param {number} k kernel size
 * @param {number} s stride
 * @param {number} p padding
 * @param {number} d dilation
 * @returns {[number, number][]}
 */
export function unusedLines(n, k, s, p, d) {
  const read = new Array(n).fill(false);
  const out = computeOutputSize(n, k, s, p, d);
  for (let m = 0; m < out; m++) {
    for (let u = 0; u < k; u++) {
      const i = s * m + d * u - p;
      if (i >= 0 && i < n) read[i] = true;
    }
  }
  const runs = [];
  let start = -1;
  read.concat([true]).forEach((r, i) => {
    if (!r && start < 0) start = i;
    else if (r && start >= 0) { runs.push([start, i]); start = -1; }
  });
  return runs;
}

/**
 * Per-tap usage counts for one axis pair: how many output positions read a real pixel
 * through tap (u, v), and how many read padding.
 * @param {Geometry} g
 * @param {number} h input height
 * @param {number} w input width
 * @returns {{real: number[][], padding: number[][], total: number}}
 */
export function tapUsage(g, h, w) {
  const ho = computeOutputSize(h, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0]);
  const wo = computeOutputSize(w, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1]);
  const hitsRow = [];
  for (let u = 0; u < g.kernel[0]; u++) {
    let c = 0;
    for (let m = 0; m < ho; m++) {
      const i = g.stride[0] * m + g.dilation[0] * u - g.padding[0];
      if (i >= 0 && i < h) c++;
    }
    hitsRow.push(c);
  }
  const hitsCol = [];
  for (let v = 0; v < g.kernel[1]; v++) {
    let c = 0;
    for (let n = 0; n < wo; n++) {
      const i = g.stride[1] * n + g.dilation[1] * v - g.padding[1];
      if (i >= 0 && i < w) c++;
    }
    hitsCol.push(c);
  }
  const total = ho * wo;
  const real = hitsRow.map((a) => hitsCol.map((b) => a * b));
  return { real, padding: real.map((r) => r.map((x) => total - x)), total };
}

/**
 * Cross-correlate one 2-D plane with one kernel (zero padding), for small crops only.
 * @param {number[][]} x input plane, H×W
 * @param {number[][]} k kernel, kh×kw
 * @param {Geometry} g
 * @returns {number[][]} H_out×W_out
 */
export function conv2dPlane(x, k, g) {
  const h = x.length;
  const w = h ? x[0].length : 0;
  const ho = computeOutputSize(h, g.kernel[0], g.stride[0], g.padding[0], g.dilation[0]);
  const wo = computeOutputSize(w, g.kernel[1], g.stride[1], g.padding[1], g.dilation[1]);
  const y = [];
  for (let m = 0; m < ho; m++) {
    const row = [];
    for (let n = 0; n < wo; n++) {
      let acc = 0;
      for (let u = 0; u < g.kernel[0]; u++) {
        const r = g.stride[0] * m + g.dilation[0] * u - g.padding[0];
        if (r < 0 || r >= h) continue;
        for (let v = 0; v < g.kernel[1]; v++) {
          const c = g.stride[1] * n + g.dilation[1] * v - g.padding[1];
          if (c >= 0 && c < w) acc += x[r][c] * k[u][v];
        }
      }
      row.push(acc);
    }
    y.push(row);
  }
  return y;
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
 * Apply an activation σ to one value.
 * @param {number} z
 * @param {string} name none | relu | sigmoid | tanh
 * @returns {number}
 */
export function activate(z, name) {
  if (name === 'relu') return Math.max(0, z);
  if (name === 'sigmoid') return 1 / (1 + Math.exp(-z));
  if (name === 'tanh') return Math.tanh(z);
  return z;
}

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
  if (a >= 1e9 || a < 1e-3) return x.toExponential(digits - 1).replace('e+', 'e').replace('-', '−');
  if (a >= 1000) return GROUPER.format(Math.round(x)).replace('-', '−');
  return String(Number(x.toPrecision(digits))).replace('-', '−');
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
 * Evenly spaced ticks between lo and hi, including both ends.
 * @param {number} lo
 * @param {number} hi
 * @param {number} [count=3]
 * @returns {number[]}
 */
export function ticks(lo, hi, count = 3) {
  if (count < 2 || hi === lo) return [lo, hi];
  return Array.from({ length: count }, (_, i) => lo + ((hi - lo) * i) / (count - 1));
}

/**
 * Largest integer scale so that `size` pixels fit in `room` pixels (at least 1).
 * @param {number} size
 * @param {number} room
 * @param {number} [max=32]
 * @returns {number}
 */
export function integerScale(size, room, max = 32) {
  return Math.max(1, Math.min(max, Math.floor(room / Math.max(1, size))));
}

/**
 * Input lines no output reads, in words a learner can take in: a long regular run becomes
 * "1, 3, 5, …, 319 (every 2nd row, 160 in all)" instead of 160 numbers.
 * @param {[number, number][]} runs [start, stop) runs, as in `unused`
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
