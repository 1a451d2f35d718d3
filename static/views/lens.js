// The lens: one output unit's sum written out. A magnified picture of its window on the real
// pixels (padding cells and every dilated tap), and beside it, per channel, each weight w, the
// pixel x it reads, the product w·x and their sum; then + b, σ, and the value on the map. Kernels
// of more than MAX_LISTED taps show every product too, in a compact kh×kw grid (w and x in each
// cell's title) that scrolls inside the lens. The numbers come from convmath.unitTerms;
// tests/browser check them against the API. Drawing only.

import { colourFor, css } from '../colormap.js';
import { effectiveKernel, firstChannel, geometryOf, unitTerms } from '../convmath.js';
import { clear, el, sizeCanvas } from '../dom.js';
import { formatNumber } from '../format.js';

const ACCENT = '#e4572e';
const TAP = '#1f6fd1';
const TAP_PAD = '#f0a202';
/** Largest kernel (kh·kw) whose products are listed with their w and x; larger ones get the grid. */
const MAX_LISTED = 49;
const CHANNEL_NAMES = ['R', 'G', 'B'];

/** A number for the lens: 4 significant digits. */
const num = (x) => formatNumber(x, 4);

export class Lens {
  /**
   * @param {HTMLElement} root the container the lens draws into
   * @param {{onKernel?: (j: number) => void}} [opts] the user picked another kernel in the lens
   */
  constructor(root, opts = {}) {
    this.root = root;
    this.onKernel = opts.onKernel || null;
  }

  /**
   * Write out unit (m, n) of map j.
   * @param {{result: any, pixels: import('../pixels.js').Pixels, img: HTMLImageElement}} ctx
   * @param {[number, number]|null} unit
   * @param {number} j
   * @param {{pinned?: boolean}} [opts]
   */
  show(ctx, unit, j, opts = {}) {
    const { result, pixels } = ctx;
    clear(this.root);
    if (!result || !unit || !pixels.ready) {
      this.root.append(el('p', { className: 'muted lens-empty', text: 'Hover or pin a unit of a feature map (or a pixel of the input) to see its sum written out here. Keyboard: Tab to a map, Enter pins its centre, arrow keys move it.' }));
      delete this.root.dataset.value;
      return;
    }
    const g = geometryOf(result.layer);
    const [c, h, w] = result.input_shape;
    const kernels = result.maps.length;
    const fmap = result.maps[j];
    const { planes } = pixels.planes(result.layer.color);
    const first = firstChannel(j, kernels, c, result.layer.groups || 1);
    const t = unitTerms(planes, h, w, fmap.weights, fmap.bias || 0, g, unit[0], unit[1], result.layer.activation, first);
    Object.assign(this.root.dataset, { m: String(unit[0]), n: String(unit[1]), j: String(j), value: String(t.y), z: String(t.z) });
    const head = el('div', { className: 'lens-head' },
      el('strong', { text: `y${sub(j)}[${unit[0]}, ${unit[1]}]` }),
      ` · map ${j} (${fmap.name})${opts.pinned ? ' · pinned' : ''}`);
    if (this.onKernel && kernels > 1) {
      const select = el('select', { 'aria-label': 'kernel shown in the lens', className: 'lens-kernel' },
        ...result.maps.map((m) => el('option', { value: String(m.index), selected: m.index === j, text: `${m.index} · ${m.name}` })));
      select.addEventListener('change', () => this.onKernel(Number(select.value)));
      head.append(' ', select);
    }
    const body = el('div', { className: 'lens-body' }, this.windowPicture(ctx, g, unit, t, h, w));
    const listed = g.kernel[0] * g.kernel[1] <= MAX_LISTED;
    const rgbNames = c === 3;
    for (const ch of t.channels) {
      const title = rgbNames ? `channel ${CHANNEL_NAMES[ch.c]} (c = ${ch.c - first})` : 'c = 0 (gray)';
      body.append(el('div', { className: 'lens-channel' },
        el('div', { className: 'lens-title', text: title }),
        listed ? this.productTable(ch, g) : this.productGrid(ch, g),
        el('div', { className: 'lens-csum', text: `Σ w·x = ${num(ch.sum)}` })));
    }
    const act = result.layer.activation;
    const lines = [];
    if (t.channels.length > 1) lines.push(`Σ over the ${t.channels.length} channels: ${t.channels.map((ch) => num(ch.sum)).join(' + ')} = ${num(t.sum)}`);
    else lines.push(`Σ w·x = ${num(t.sum)}`);
    lines.push(`+ b${sub(j)} = ${num(t.sum)} + ${num(fmap.bias || 0)} = ${num(t.z)}`);
    if (act !== 'none') lines.push(`σ = ${act}(${num(t.z)}) = ${num(t.y)}`);
    else lines.push('σ = none: y = z');
    const total = el('div', { className: 'lens-total' },
      ...lines.map((text) => el('div', { text })),
      el('div', { className: 'lens-value' }, 'on the map: ', el('strong', { text: `y${sub(j)}[${unit[0]}, ${unit[1]}] = ${num(t.y)}` })));
    const onPad = t.channels[0].taps.filter((tap) => tap.padding).length;
    this.root.append(head, body, total,
      el('p', { className: 'muted small', text: `${t.channels[0].taps.length} taps per channel${onPad ? `, ${onPad} on padding (x = 0)` : ''}; the window starts at input (s·m − p, s·n − p) = (${g.stride[0] * unit[0] - g.padding[0]}, ${g.stride[1] * unit[1] - g.padding[1]}) and its taps are d = ${g.dilation.join('×')} apart.` }));
  }

  /** The window, magnified: real pixels, padding cells (grey with 0) and the taps as dots. */
  windowPicture(ctx, g, unit, t, h, w) {
    const eff = effectiveKernel(g);
    const top = g.stride[0] * unit[0] - g.padding[0];
    const left = g.stride[1] * unit[1] - g.padding[1];
    const rows = eff[0] + 2;
    const cols = eff[1] + 2;
    const cell = Math.max(4, Math.min(28, Math.floor(220 / Math.max(rows, cols))));
    const canvas = el('canvas', { className: 'lens-window pixelated', role: 'img', 'aria-label': `the window of output (${unit[0]}, ${unit[1]}), magnified` });
    const c2 = sizeCanvas(canvas, cols * cell, rows * cell);
    const source = ctx.pixels.picture(ctx.result.layer.color, ctx.img);
    for (let r = 0; r < rows; r++) {
      for (let q = 0; q < cols; q++) {
        const ir = top - 1 + r;
        const iq = left - 1 + q;
        const inside = ir >= 0 && ir < h && iq >= 0 && iq < w;
        if (inside) c2.drawImage(source, iq, ir, 1, 1, q * cell, r * cell, cell, cell);
        else {
          c2.fillStyle = (r + q) % 2 ? '#dcdcdc' : '#cfcfcf';
          c2.fillRect(q * cell, r * cell, cell, cell);
        }
      }
    }
    // Outside the window: faded, so the window reads as the part that counts.
    c2.fillStyle = 'rgba(255, 255, 255, 0.55)';
    c2.fillRect(0, 0, cols * cell, cell);
    c2.fillRect(0, (rows - 1) * cell, cols * cell, cell);
    c2.fillRect(0, cell, cell, (rows - 2) * cell);
    c2.fillRect((cols - 1) * cell, cell, cell, (rows - 2) * cell);
    if (cell >= 8) {
      c2.strokeStyle = 'rgba(0, 0, 0, 0.15)';
      for (let r = 0; r <= rows; r++) { c2.beginPath(); c2.moveTo(0, r * cell + 0.5); c2.lineTo(cols * cell, r * cell + 0.5); c2.stroke(); }
      for (let q = 0; q <= cols; q++) { c2.beginPath(); c2.moveTo(q * cell + 0.5, 0); c2.lineTo(q * cell + 0.5, rows * cell); c2.stroke(); }
    }
    for (const tap of t.channels[0].taps) {
      c2.fillStyle = tap.padding ? TAP_PAD : TAP;
      c2.beginPath();
      c2.arc((tap.col - left + 1.5) * cell, (tap.row - top + 1.5) * cell, Math.max(1.5, cell * 0.22), 0, Math.PI * 2);
      c2.fill();
    }
    c2.strokeStyle = ACCENT;
    c2.lineWidth = 2;
    c2.strokeRect(cell - 1, cell - 1, eff[1] * cell + 2, eff[0] * cell + 2);
    return el('figure', { className: 'lens-fig' }, canvas,
      el('figcaption', { className: 'muted small', text: `input rows ${top}…${top + eff[0] - 1}, columns ${left}…${left + eff[1] - 1}; grey = padding` }));
  }

  /** kh×kw cells: w, × x, = w·x, coloured by the product. */
  productTable(ch, g) {
    const m = Math.max(1e-12, ...ch.taps.map((tap) => Math.abs(tap.product)));
    const table = el('table', { className: 'lens-table' });
    for (let u = 0; u < g.kernel[0]; u++) {
      const tr = el('tr');
      for (let v = 0; v < g.kernel[1]; v++) {
        const tap = ch.taps[u * g.kernel[1] + v];
        const rgb = colourFor(tap.product, -m, m);
        const td = el('td', { className: tap.padding ? 'pad' : '', title: `W[${ch.c}, ${u}, ${v}] · x[${tap.row}, ${tap.col}]`, 'data-product': String(tap.product) },
          el('span', { className: 'lw', text: num(tap.w) }),
          el('span', { className: 'lx', text: `× ${tap.padding ? '0 (pad)' : num(tap.x)}` }),
          el('span', { className: 'lp', text: `= ${num(tap.product)}` }));
        td.style.backgroundColor = css(rgb.map((x) => Math.round(255 - (255 - x) * 0.45)));
        tr.append(td);
      }
      table.append(tr);
    }
    return table;
  }

  /**
   * Every product w·x of a big kernel as a kh×kw grid: one number a tap, its background red for
   * + and blue for − (deeper for larger), padding taps dashed; row u and column v are labelled.
   */
  productGrid(ch, g) {
    const [kh, kw] = g.kernel;
    let m = 1e-12;
    for (const tap of ch.taps) m = Math.max(m, Math.abs(tap.product));
    const table = el('table', { className: 'lens-grid' });
    table.append(el('tr', {}, el('th', { text: 'u\\v', title: 'row u, column v of the kernel' }), ...Array.from({ length: kw }, (_, v) => el('th', { text: String(v) }))));
    for (let u = 0; u < kh; u++) {
      const tr = el('tr', {}, el('th', { text: String(u) }));
      for (let v = 0; v < kw; v++) {
        const tap = ch.taps[u * kw + v];
        const td = el('td', {
          className: `${tap.padding ? 'pad ' : ''}${tap.product < 0 ? 'neg' : tap.product > 0 ? 'pos' : 'zero'}`,
          title: `W[${ch.c}, ${u}, ${v}] = ${num(tap.w)} × x[${tap.row}, ${tap.col}] = ${tap.padding ? '0 (padding)' : num(tap.x)}: ${num(tap.product)}`,
          'data-product': String(tap.product),
          text: formatNumber(tap.product, 2),
        });
        td.style.backgroundColor = css(colourFor(tap.product, -m, m).map((x) => Math.round(255 - (255 - x) * 0.6)));
        tr.append(td);
      }
      table.append(tr);
    }
    return el('div', { className: 'lens-grid-box', tabindex: '0', role: 'region', 'aria-label': `the ${kh}×${kw} products w·x of channel ${ch.c}; hover a cell for its w and x` },
      el('p', { className: 'muted small', text: `${kh}×${kw} = ${ch.taps.length} products w·x (hover a cell for w and x)` }), table);
  }
}

/** Digits as Unicode subscripts: 12 → "₁₂". */
export function sub(n) {
  return String(n).replace(/\d/g, (d) => '₀₁₂₃₄₅₆₇₈₉'[Number(d)]);
}
