// Small DOM helpers shared by the views. Text always goes in through textContent.

import { barRange, colourFor, css } from './colormap.js';
import { ticks } from './convmath.js';
import { formatNumber } from './format.js';

const MATHML = 'http://www.w3.org/1998/Math/MathML';

/**
 * Create an element; string children become text nodes.
 * @param {string} tag
 * @param {Record<string, any>} [attrs] className, dataset, text, and plain attributes
 * @param {...(Node|string|null)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

/**
 * Create a MathML element (mi, mn, mo, mrow, msub, ...).
 * @param {string} tag
 * @param {...(Node|string|number|null)} children
 * @returns {Element}
 */
export function mml(tag, ...children) {
  const node = document.createElementNS(MATHML, tag);
  append(node, children);
  return node;
}

/** MathML helpers for the common token elements. */
export const mi = (t, cls) => withClass(mml('mi', String(t)), cls);
export const mn = (t, cls) => withClass(mml('mn', String(t)), cls);
export const mo = (t) => mml('mo', String(t));
export const mrow = (...c) => mml('mrow', ...c);
export const msub = (a, b) => mml('msub', a, b);

function withClass(node, cls) {
  if (cls) node.setAttribute('class', cls);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
}

/**
 * Remove every child of a node.
 * @param {Element} node
 */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

/**
 * A colour bar with numbers: the gradient and three tick labels for the range [lo, hi]
 * (symmetric about zero for signed maps, as the API colours them).
 * @param {number} lo
 * @param {number} hi
 * @param {string} [label]
 * @returns {HTMLElement}
 */
export function colourBar(lo, hi, label = '') {
  const [a, b] = barRange(lo, hi);
  const canvas = el('canvas', { className: 'colourbar-canvas', width: 128, height: 1, 'aria-hidden': 'true' });
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(128, 1);
  for (let i = 0; i < 128; i++) {
    const rgb = colourFor(a + ((b - a) * i) / 127, a, b);
    img.data.set([rgb[0], rgb[1], rgb[2], 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  const labels = el('div', { className: 'colourbar-ticks' },
    ...ticks(a, b, 3).map((t) => el('span', { text: formatNumber(t) })));
  return el('div', { className: 'colourbar', role: 'img', 'aria-label': `colour scale from ${formatNumber(a)} to ${formatNumber(b)}${label ? ` (${label})` : ''}` },
    canvas, labels);
}

/**
 * A kernel as a grid of cells, each coloured by its weight, with a text line per cell.
 * @param {number[][]} weights kh×kw
 * @param {(u: number, v: number) => string} [caption] extra text under the weight
 * @param {{selected?: [number, number]|null}} [opts]
 * @returns {HTMLElement} a table; cells carry data-u and data-v
 */
export function kernelTable(weights, caption, opts = {}) {
  const flat = weights.flat();
  const m = Math.max(1e-12, ...flat.map(Math.abs));
  const table = el('table', { className: 'kernel' });
  weights.forEach((row, u) => {
    const tr = el('tr');
    row.forEach((w, v) => {
      const rgb = colourFor(w, -m, m);
      const light = rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114 > 140;
      const td = el('td', {
        dataset: { u: String(u), v: String(v) },
        tabindex: '0',
        className: `${light ? 'light' : 'dark'}${opts.selected && opts.selected[0] === u && opts.selected[1] === v ? ' selected' : ''}`,
        title: `W[${u}, ${v}] = ${w}`,
      }, el('span', { className: 'w', text: formatNumber(w) }),
      caption ? el('span', { className: 'cap', text: caption(u, v) }) : null);
      td.style.backgroundColor = css(rgb);
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

/**
 * Size a canvas for crisp drawing: CSS size w×h, backing store scaled by devicePixelRatio.
 * @param {HTMLCanvasElement} canvas
 * @param {number} w CSS pixels
 * @param {number} h CSS pixels
 * @returns {CanvasRenderingContext2D} with the transform set so one unit = one CSS pixel
 */
export function sizeCanvas(canvas, w, h) {
  const dpr = Math.max(1, Math.round(window.devicePixelRatio || 1));
  canvas.width = Math.max(1, Math.round(w * dpr));
  canvas.height = Math.max(1, Math.round(h * dpr));
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.imageSmoothingEnabled = false;
  return ctx;
}

/**
 * A limit the server wrote on the page from its Settings: a data- attribute of #workspace, such
 * as data-max-values for CONVLENS_MAX_VALUES. There is no default here: a limit lives in Settings.
 * @param {string} key the dataset key, e.g. 'maxValues'
 * @returns {number}
 */
export function pageLimit(key) {
  return numberAttribute(document.getElementById('workspace'), key);
}

/**
 * A positive number in a data- attribute the server rendered (such as a control's data-max).
 * @param {HTMLElement|null} node
 * @param {string} key the dataset key, e.g. 'max'
 * @returns {number}
 * @throws {Error} when the page does not carry it: the template and the JS disagree
 */
export function numberAttribute(node, key) {
  const n = Number(node?.dataset[key]);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`the page has no data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} limit`);
  return n;
}
