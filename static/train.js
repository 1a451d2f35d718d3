// Training streams and the Learn tab's pure helpers: NDJSON lines read from a fetch() body as they
// arrive, the loss curve's log scale, and how far a learned kernel is from the hidden one. No DOM.

/**
 * Split text into complete lines and the unfinished rest.
 * @param {string} text what has arrived so far
 * @returns {[string[], string]} the complete, non-empty lines, and what follows the last newline
 */
export function splitLines(text) {
  const parts = text.split('\n');
  const rest = parts.pop();
  return [parts.filter((line) => line.trim() !== ''), rest];
}

/**
 * Read newline-delimited JSON from a response body as it arrives, calling onLine for each object.
 * Resolves at the end of the stream; rejects with an AbortError when the request is aborted.
 * @param {Response} res
 * @param {(line: any) => void} onLine
 * @returns {Promise<void>}
 */
export async function readLines(res, onLine) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    let lines;
    [lines, rest] = splitLines(rest + decoder.decode(value, { stream: true }));
    for (const line of lines) onLine(JSON.parse(line));
  }
  rest += decoder.decode();
  if (rest.trim()) onLine(JSON.parse(rest));
}

/**
 * Report every this many steps: about `lines` reports in all, never more than the server allows.
 * @param {number} steps
 * @param {number} maxReports CONVLENS_MAX_TRAIN_REPORTS, from the page
 * @param {number} [lines=200]
 * @returns {number}
 */
export function reportEvery(steps, maxReports, lines = 200) {
  const wanted = Math.min(lines, Math.max(1, maxReports - 2));
  return Math.max(1, Math.ceil(steps / wanted));
}

/**
 * The range of a log axis that holds every value: whole powers of ten around [lo, hi].
 * @param {number[]} values positive numbers (others are ignored)
 * @returns {[number, number]} exponents [a, b], a < b, so the axis runs from 10^a to 10^b
 */
export function logRange(values) {
  const logs = values.filter((v) => v > 0 && Number.isFinite(v)).map(Math.log10);
  if (!logs.length) return [-1, 0];
  const a = Math.floor(Math.min(...logs));
  const b = Math.ceil(Math.max(...logs));
  return [a, b > a ? b : a + 1];
}

/**
 * An SVG path through (step, loss) points: x from 0..xMax to 0..width, log10(loss) from the
 * exponents [a, b] to height..0 (top is 10^b).
 * @param {[number, number][]} points
 * @param {number} xMax
 * @param {[number, number]} range exponents, as logRange gives
 * @param {number} width
 * @param {number} height
 * @returns {string} the path's d attribute ('' when there is nothing to draw)
 */
export function curvePath(points, xMax, range, width, height) {
  const [a, b] = range;
  const parts = [];
  for (const [x, y] of points) {
    if (!(y > 0) || !Number.isFinite(y)) continue;
    const px = (x / Math.max(1, xMax)) * width;
    const py = height - ((Math.log10(y) - a) / (b - a)) * height;
    parts.push(`${parts.length ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`);
  }
  return parts.join(' ');
}

/**
 * Add the channels of each kernel: J x C x kh x kw weights as J x kh x kw (what a 2-D kernel on
 * the mean of the channels amounts to).
 * @param {number[][][][]} weights
 * @returns {number[][][]}
 */
export function sumChannels(weights) {
  return weights.map((kernel) => kernel[0].map((row, u) => row.map((_, v) => kernel.reduce((s, ch) => s + ch[u][v], 0))));
}

/**
 * How far learned weights are from hidden ones: the largest |difference|, and that as a share of
 * the largest hidden |weight|.
 * @param {number[]|number[][]|number[][][]} learned any nesting, the same as hidden
 * @param {number[]|number[][]|number[][][]} hidden
 * @returns {{max: number, relative: number}}
 */
export function kernelDistance(learned, hidden) {
  const a = [learned].flat(Infinity);
  const b = [hidden].flat(Infinity);
  let max = 0;
  let scale = 0;
  b.forEach((h, i) => {
    max = Math.max(max, Math.abs(a[i] - h));
    scale = Math.max(scale, Math.abs(h));
  });
  return { max, relative: scale > 0 ? max / scale : max };
}
