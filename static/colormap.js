// Pure colour helpers: viridis (non-negative), RdBu-like diverging (signed, white at zero),
// and golden-ratio hues for shared weights. No DOM here.

// The same anchors as app/images.py, so colour bars match the API's PNGs exactly.
// Sequential, viridis-like: [position in [0, 1], [r, g, b]].
const SEQUENTIAL = [
  [0.0, [68, 1, 84]], [0.25, [59, 82, 139]], [0.5, [33, 145, 140]], [0.75, [94, 201, 98]],
  [1.0, [253, 231, 37]],
];
// Diverging: negative blue, zero exactly white, positive red.
const DIVERGING = [
  [0.0, [5, 48, 97]], [0.2, [42, 113, 178]], [0.4, [160, 202, 225]], [0.5, [255, 255, 255]],
  [0.6, [246, 180, 150]], [0.8, [196, 60, 60]], [1.0, [103, 0, 31]],
];

/**
 * Interpolate [position, rgb] anchors at t in [0, 1].
 * @param {[number, number[]][]} stops
 * @param {number} t
 * @returns {[number, number, number]}
 */
function lerpStops(stops, t) {
  const x = Math.min(1, Math.max(0, t));
  let i = 0;
  while (i < stops.length - 2 && stops[i + 1][0] < x) i++;
  const [p0, a] = stops[i];
  const [p1, b] = stops[i + 1];
  const f = p1 > p0 ? (x - p0) / (p1 - p0) : 0;
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f));
}

/**
 * Colour of value v for a map with range [lo, hi]: diverging when the range has both signs,
 * symmetric about zero; viridis otherwise.
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 * @returns {[number, number, number]}
 */
export function colourFor(v, lo, hi) {
  if (isSigned(lo)) {
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return lerpStops(DIVERGING, 0.5 + v / (2 * m));
  }
  return lerpStops(SEQUENTIAL, hi > lo ? (v - lo) / (hi - lo) : 0.5);
}

/**
 * Whether a range should use the diverging map (it holds negative values).
 * @param {number} lo the range's minimum
 * @returns {boolean}
 */
export function isSigned(lo) {
  return lo < 0;
}

/**
 * The range a colour bar should label: symmetric about zero for signed maps.
 * @param {number} lo
 * @param {number} hi
 * @returns {[number, number]}
 */
export function barRange(lo, hi) {
  if (isSigned(lo)) {
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    return [-m, m];
  }
  return [lo, hi];
}

/**
 * CSS colour string for an RGB triple.
 * @param {number[]} rgb
 * @returns {string}
 */
export function css(rgb) {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/**
 * Colour of shared weight number i (golden-ratio hues, alternating lightness), the same
 * sequence as the API's dense-matrix PNG.
 * @param {number} i flat index into the weight tensor
 * @returns {string} CSS colour
 */
export function tiedColour(i) {
  const hue = ((i * 0.618033988749895) % 1) * 360;
  const light = i % 2 === 0 ? 45 : 60;
  return `hsl(${hue.toFixed(1)}, 75%, ${light}%)`;
}
