// Pure maths of one conv layer: output sizes, receptive fields and their inverse, the lines no
// output reads, a small conv2d for the views that show values, and the row-major index
// arithmetic of the dense matrix M. No DOM here. Conventions are PyTorch's (cross-correlation,
// symmetric zero padding):
//   out = floor((n + 2p - d(k - 1) - 1) / s) + 1   along each axis.
// tests/browser/test_convmath.py checks every function here against engine/.

/**
 * @typedef {object} Geometry
 * @property {[number, number]} kernel (kh, kw)
 * @property {[number, number]} stride (sh, sw)
 * @property {[number, number]} padding (ph, pw)
 * @property {[number, number]} dilation (dh, dw)
 */

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
 * The Geometry of the API's `layer` object (kernel_size, stride, padding, dilation as pairs).
 * @param {{kernel_size: [number, number], stride: [number, number], padding: [number, number], dilation: [number, number]}} spec
 * @returns {Geometry}
 */
export function geometryOf(spec) {
  return { kernel: spec.kernel_size, stride: spec.stride, padding: spec.padding, dilation: spec.dilation };
}

/**
 * Span of a dilated kernel along one axis: d(k − 1) + 1 input lines.
 * @param {number} k kernel size
 * @param {number} d dilation (>= 1)
 * @returns {number}
 */
export function effectiveKernelSize(k, d) {
  return d * (k - 1) + 1;
}

/**
 * The window's height and width in input pixels, [dh(kh − 1) + 1, dw(kw − 1) + 1].
 * @param {Geometry} g
 * @returns {[number, number]}
 */
export function effectiveKernel(g) {
  return [effectiveKernelSize(g.kernel[0], g.dilation[0]), effectiveKernelSize(g.kernel[1], g.dilation[1])];
}

/**
 * Output size along one axis, with p zeros before the input and pEnd after it.
 * @param {number} n input size
 * @param {number} k kernel size
 * @param {number} s stride (>= 1)
 * @param {number} p padding before (and, by default, after)
 * @param {number} d dilation (>= 1)
 * @param {number} [pEnd=p] padding after
 * @returns {number} floor((n + p + pEnd - d(k - 1) - 1) / s) + 1, or 0 when the kernel does not fit
 */
export function computeOutputSize(n, k, s, p, d, pEnd = p) {
  const span = n + p + pEnd - effectiveKernelSize(k, d);
  if (span < 0) return 0;
  return Math.floor(span / s) + 1;
}

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
  const [height, width] = effectiveKernel(g);
  return { top: tapRows[0], left: tapCols[0], height, width, tapRows, tapCols, taps };
}

/**
 * The inverse receptive field: the output unit whose window is centred nearest input pixel
 * (row, col), clamped to the output. The window of unit m along an axis is centred at
 * s·m − p + (d(k − 1)) / 2, so m = round((row + p − (d(k − 1)) / 2) / s).
 * @param {Geometry} g
 * @param {number} row input row (negative or past the end inside the padding)
 * @param {number} col input column
 * @param {[number, number]} outHW (H_out, W_out)
 * @returns {[number, number]} (m, n)
 */
export function nearestUnit(g, row, col, outHW) {
  const eff = effectiveKernel(g);
  return [row, col].map((pos, a) => {
    const m = Math.round((pos + g.padding[a] - (eff[a] - 1) / 2) / g.stride[a]);
    return Math.min(Math.max(m, 0), outHW[a] - 1);
  });
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
 * A conv layer on a small input (the Sliding tab's corner), as engine.conv2d computes it:
 *   y[j][m][n] = b[j] + Σ_c Σ_u Σ_v weight[j][c][u][v] · x_pad[g·C/groups + c][s·m + d·u][s·n + d·v]
 * with g = ⌊j / (J/groups)⌋ and x_pad zero-padded by `padding` before and `paddingEnd` after.
 * @param {number[][][]} x input, C×H×W
 * @param {number[][][][]} weight J×(C/groups)×kh×kw
 * @param {{bias?: number[]|null, stride?: [number, number], padding?: [number, number],
 *   dilation?: [number, number], groups?: number, paddingEnd?: [number, number]}} [opts]
 *   paddingEnd defaults to padding (PyTorch's symmetric padding)
 * @returns {number[][][]} J×H_out×W_out
 */
export function conv2d(x, weight, opts = {}) {
  const { bias = null, stride = [1, 1], padding = [0, 0], dilation = [1, 1], groups = 1 } = opts;
  const paddingEnd = opts.paddingEnd || padding;
  const h = x[0].length;
  const w = h ? x[0][0].length : 0;
  const kh = weight[0][0].length;
  const kw = kh ? weight[0][0][0].length : 0;
  const ho = computeOutputSize(h, kh, stride[0], padding[0], dilation[0], paddingEnd[0]);
  const wo = computeOutputSize(w, kw, stride[1], padding[1], dilation[1], paddingEnd[1]);
  const perGroup = x.length / groups;
  const kernelsPerGroup = weight.length / groups;
  return weight.map((kernel, j) => {
    const first = Math.floor(j / kernelsPerGroup) * perGroup;
    return Array.from({ length: ho }, (_, m) => Array.from({ length: wo }, (_, n) => {
      let acc = bias ? bias[j] : 0;
      kernel.forEach((plane, c) => {
        const xc = x[first + c];
        for (let u = 0; u < kh; u++) {
          const r = stride[0] * m + dilation[0] * u - padding[0];
          if (r < 0 || r >= h) continue;
          for (let v = 0; v < kw; v++) {
            const q = stride[1] * n + dilation[1] * v - padding[1];
            if (q >= 0 && q < w) acc += xc[r][q] * plane[u][v];
          }
        }
      });
      return acc;
    }));
  });
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

/**
 * Apply σ to every value of a nested array (a map, or J maps).
 * @template T
 * @param {T} y nested arrays of numbers
 * @param {string} name none | relu | sigmoid | tanh
 * @returns {T}
 */
export function activateAll(y, name) {
  return Array.isArray(y) ? y.map((a) => activateAll(a, name)) : activate(y, name);
}

/**
 * The layer's input planes from RGBA bytes: C = 1 is luma (0.299 R + 0.587 G + 0.114 B), as the
 * API reads a gray image, C = 3 is R, G, B; values in [0, 1].
 * @param {Uint8ClampedArray} rgba width·height·4 bytes, row-major
 * @param {number} width
 * @param {number} height
 * @param {number} channels 1 or 3
 * @returns {number[][][]} C×height×width
 */
export function planesFromRgba(rgba, width, height, channels) {
  const plane = (value) => Array.from({ length: height }, (_, r) => Array.from({ length: width }, (_, q) => value((r * width + q) * 4)));
  if (channels === 1) return [plane((i) => (rgba[i] * 0.299 + rgba[i + 1] * 0.587 + rgba[i + 2] * 0.114) / 255)];
  return [0, 1, 2].map((c) => plane((i) => rgba[i + c] / 255));
}

/**
 * One plane to show for C planes: the plane itself for C = 1, the luma of R, G, B for C = 3.
 * @param {number[][][]} planes C×H×W
 * @returns {number[][]} H×W
 */
export function lumaPlane(planes) {
  if (planes.length === 1) return planes[0];
  return planes[0].map((row, r) => row.map((_, q) => planes[0][r][q] * 0.299 + planes[1][r][q] * 0.587 + planes[2][r][q] * 0.114));
}

/**
 * The flat row-major offset of a multi-index, as np.ravel_multi_index. In the dense matrix M,
 * row = ravelIndex([j, m, n], output_shape), col = ravelIndex([c, r, q], input_shape), and a
 * tied weight is ravelIndex([j, c, u, v], weight_shape).
 * @param {number[]} index
 * @param {number[]} shape
 * @returns {number}
 */
export function ravelIndex(index, shape) {
  return index.reduce((flat, i, a) => flat * shape[a] + i, 0);
}

/**
 * The multi-index of a flat row-major offset, as np.unravel_index: the inverse of ravelIndex.
 * @param {number} flat
 * @param {number[]} shape
 * @returns {number[]}
 */
export function unravelIndex(flat, shape) {
  const index = new Array(shape.length);
  let rest = flat;
  for (let a = shape.length - 1; a >= 0; a--) {
    index[a] = rest % shape[a];
    rest = Math.floor(rest / shape[a]);
  }
  return index;
}

/**
 * Partial sums: out[i] = values[0] + … + values[i], in float64.
 * @param {ArrayLike<number>} values
 * @returns {Float64Array}
 */
export function runningSum(values) {
  const out = new Float64Array(values.length);
  let acc = 0;
  for (let i = 0; i < values.length; i++) { acc += values[i]; out[i] = acc; }
  return out;
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
 * The scale that fits a w×h picture whole into roomW×roomH: the largest whole factor when it
 * can be enlarged (crisp pixels), the exact fraction when it must shrink (drawn smooth).
 * @param {number} w
 * @param {number} h
 * @param {number} roomW
 * @param {number} roomH
 * @param {number} [max=32] largest whole factor
 * @returns {number}
 */
export function fitScale(w, h, roomW, roomH, max = 32) {
  const f = Math.min(roomW / Math.max(1, w), roomH / Math.max(1, h));
  return f >= 1 ? Math.min(max, Math.floor(f)) : f;
}

/**
 * Every term of one output unit's sum, as engine.conv2d adds them up:
 *   z = b[j] + Σ_c Σ_u Σ_v W[c][u][v] · x[first + c][s·m + d·u − p][s·n + d·v − p],  y = σ(z)
 * Taps on padding read x = 0.
 * @param {Float32Array[]} planes the input's C planes, each H·W row-major
 * @param {number} h
 * @param {number} w
 * @param {number[][][]} kernel W_j, (C/groups)×kh×kw
 * @param {number} bias b_j
 * @param {Geometry} g
 * @param {number} row output row m
 * @param {number} col output column n
 * @param {string} activation none | relu | sigmoid | tanh
 * @param {number} [first=0] the first input channel kernel j reads (its group's)
 * @returns {{channels: {c: number, sum: number, taps: {u: number, v: number, row: number, col: number,
 *   padding: boolean, x: number, w: number, product: number}[]}[], sum: number, z: number, y: number}}
 */
export function unitTerms(planes, h, w, kernel, bias, g, row, col, activation, first = 0) {
  const rf = receptiveField(g, row, col, h, w);
  let sum = 0;
  const channels = kernel.map((plane, c) => {
    const xc = planes[first + c];
    let acc = 0;
    const taps = rf.taps.map((t) => {
      const x = t.padding ? 0 : xc[t.row * w + t.col];
      const wt = plane[t.u][t.v];
      const product = wt * x;
      acc += product;
      return { ...t, x, w: wt, product };
    });
    sum += acc;
    return { c: first + c, sum: acc, taps };
  });
  const z = sum + bias;
  return { channels, sum, z, y: activate(z, activation) };
}

/**
 * The first input channel that kernel j reads: ⌊j / (J/groups)⌋ · (C/groups).
 * @param {number} j
 * @param {number} kernels J
 * @param {number} channels C
 * @param {number} groups
 * @returns {number}
 */
export function firstChannel(j, kernels, channels, groups) {
  return Math.floor(j / (kernels / groups)) * (channels / groups);
}

/**
 * v = Mu + b for the dense matrix's entries (sparse rows, cols, values) and a flat input u.
 * @param {{rows: number[], cols: number[], values: number[]}} entries
 * @param {number} rows rows of M
 * @param {ArrayLike<number>} u the crop, flattened (C, r, q) row-major
 * @param {(row: number) => number} biasOf the bias of a row's output
 * @returns {Float64Array}
 */
export function denseApply(entries, rows, u, biasOf) {
  const v = new Float64Array(rows);
  for (let i = 0; i < rows; i++) v[i] = biasOf(i);
  for (let i = 0; i < entries.rows.length; i++) v[entries.rows[i]] += entries.values[i] * u[entries.cols[i]];
  return v;
}

/**
 * The receptive field of one unit of layer L, drawn layer by layer: after layer l (l ≤ L) a box of
 * size r_l around the same centre, so the box grows while the jump j_l multiplies (Araujo et al.,
 * Distill 2019). The centre is that of the unit's own box (its top + (height − 1) / 2 per axis).
 * Layers without a whole-pixel size (after a transposed conv) are left out.
 * @param {{top: number, left: number, height: number, width: number}} box the unit's input box
 * @param {({size: number[], jump: number[]}|null)[]} entries per layer 0..L: size and jump per axis
 * @returns {{layer: number, top: number, left: number, height: number, width: number, jump: number[]}[]}
 */
export function growingBoxes(box, entries) {
  const cy = box.top + (box.height - 1) / 2;
  const cx = box.left + (box.width - 1) / 2;
  const out = [];
  entries.forEach((e, layer) => {
    if (!e) return;
    const [rh, rw] = e.size;
    out.push({ layer, top: cy - (rh - 1) / 2, left: cx - (rw - 1) / 2, height: rh, width: rw, jump: e.jump });
  });
  return out;
}
