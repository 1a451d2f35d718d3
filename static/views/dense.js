// The Dense matrix tab: M for a small crop, each entry in the colour of the shared weight it
// copies, zeros white. Hovering links a weight, its entries in M, and the input pixel.

import { Channel, Stale } from '../api.js';
import { tiedColour } from '../colormap.js';
import { activate, denseApply, integerScale, ravelIndex, unravelIndex } from '../convmath.js';
import { colourFor, css } from '../colormap.js';
import { formatInt, formatNumber } from '../format.js';
import { clear, el, pageLimit, sizeCanvas } from '../dom.js';

/** Largest crop side the server draws (CONVLENS_MAX_DENSE_SIDE). */
const maxSide = () => pageLimit('maxDenseSide');

const ACCENT = '#e4572e';

export class DenseView {
  /** @param {HTMLElement} root #tab-dense */
  constructor(root) {
    this.root = root;
    this.channel = new Channel();
    this.canvas = root.querySelector('#dense-canvas');
    this.cropCanvas = root.querySelector('#dense-crop');
    this.kernelBox = root.querySelector('#dense-kernel');
    this.info = root.querySelector('#dense-info');
    this.size = root.querySelector('#crop-size');
    this.top = root.querySelector('#crop-top');
    this.left = root.querySelector('#crop-left');
    this.data = null;
    this.app = null;
    this.highlight = null; // {tied?: number, col?: number, row?: number}
    const changed = () => {
      root.querySelector('#crop-size-out').textContent = this.size.value;
      window.clearTimeout(this.debounce);
      this.debounce = window.setTimeout(() => {
        if (!this.app) return;
        this.app.setState({ crop: `${this.top.value},${this.left.value},${this.size.value},${this.size.value}` });
        this.render(this.app);
      }, 150);
    };
    for (const input of [this.size, this.top, this.left]) input.addEventListener('input', changed);
    this.canvas.addEventListener('mousemove', (e) => this.hoverMatrix(e));
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('aria-label', 'the dense matrix M: arrow keys move from entry to entry');
    this.cursor = [0, 0];
    this.canvas.addEventListener('keydown', (e) => this.keyMatrix(e));
    this.canvas.addEventListener('mouseleave', () => this.setHighlight(null));
    this.cropCanvas.addEventListener('mousemove', (e) => this.hoverCrop(e));
    this.cropCanvas.addEventListener('mouseleave', () => this.setHighlight(null));
    this.outCanvas = root.querySelector('#dense-out');
    this.outCanvas.addEventListener('mousemove', (e) => this.hoverOutput(e));
    this.outCanvas.addEventListener('mouseleave', () => this.setHighlight(null));
  }

  /** The crop as (top, left, side): from the state, clamped to the image. */
  crop(app) {
    const [, h, w] = app.result.input_shape;
    const parts = (app.state.crop || '').split(',').map(Number);
    const side = Math.min(Number.isFinite(parts[2]) && parts[2] > 0 ? parts[2] : Math.min(8, h, w), h, w, maxSide());
    const top = Math.min(Math.max(parts[0] || 0, 0), h - side);
    const left = Math.min(Math.max(parts[1] || 0, 0), w - side);
    return { top, left, side };
  }

  async render(app) {
    this.app = app;
    const { top, left, side } = this.crop(app);
    const [, h, w] = app.result.input_shape;
    this.size.max = String(Math.min(maxSide(), h, w));
    this.size.value = String(side);
    this.root.querySelector('#crop-size-out').textContent = String(side);
    this.top.max = String(h - side);
    this.left.max = String(w - side);
    this.top.value = String(top);
    this.left.value = String(left);
    let data;
    try {
      data = await this.channel.run((signal) => app.callApi('/api/dense-matrix', { crop: `${top},${left},${side},${side}` }, signal));
    } catch (err) {
      if (err instanceof Stale) return;
      this.root.querySelector('#error-crop').textContent = err.message.replace(/`/g, '');
      return;
    }
    this.root.querySelector('#error-crop').textContent = '';
    this.data = data;
    this.cropBox = { top, left, side };
    this.lookup = new Map();
    const e = data.entries;
    for (let i = 0; i < e.rows.length; i++) this.lookup.set(ravelIndex([e.rows[i], e.cols[i]], data.shape), i);
    this.root.querySelector('#dense-shape').textContent = `${formatInt(data.shape[0])} × ${formatInt(data.shape[1])}: ${formatInt(data.nnz)} non-zeros (${formatNumber(data.density * 100, 2)} %), but only ${formatInt(data.weight_shape.reduce((a, b) => a * b, 1))} distinct weights`;
    this.drawKernels(app.result);
    this.outputs = this.computeOutputs(app, data, top, left);
    this.setHighlight(null);
  }

  /** v = σ(Mu + b) for the crop, from M's entries and the crop's pixels as the layer reads them. */
  computeOutputs(app, data, top, left) {
    if (!app.pixels || !app.pixels.ready) return null;
    const { planes, width } = app.pixels.planes(app.result.layer.color);
    const [c, side] = data.input_shape;
    const u = new Float64Array(c * side * side);
    for (let ch = 0; ch < c; ch++) {
      for (let r = 0; r < side; r++) for (let q = 0; q < side; q++) u[(ch * side + r) * side + q] = planes[ch][(top + r) * width + left + q];
    }
    const maps = app.result.maps;
    const v = denseApply(data.entries, data.shape[0], u, (row) => maps[this.outputOf(row)[0]].bias || 0);
    const act = app.result.layer.activation;
    return v.map((z) => activate(z, act));
  }

  drawKernels(result) {
    clear(this.kernelBox);
    const [, cg, kh, kw] = this.data.weight_shape;
    result.maps.forEach((fmap, j) => {
      const table = el('table', { className: 'kernel tied' });
      for (let u = 0; u < kh; u++) {
        const tr = el('tr');
        for (let v = 0; v < kw; v++) {
          const tied = ravelIndex([j, 0, u, v], this.data.weight_shape);
          const td = el('td', { tabindex: '0', dataset: { tied: String(tied) }, title: `W${j}[0, ${u}, ${v}] = ${fmap.weights[0][u][v]}` },
            el('span', { className: 'w', text: formatNumber(fmap.weights[0][u][v], 2) }));
          td.style.backgroundColor = tiedColour(tied);
          td.addEventListener('mouseenter', () => this.hoverWeight(tied));
          td.addEventListener('focus', () => this.hoverWeight(tied));
          td.addEventListener('mouseleave', () => this.setHighlight(null));
          td.addEventListener('blur', () => this.setHighlight(null));
          tr.append(td);
        }
        table.append(tr);
      }
      this.kernelBox.append(el('p', { className: 'muted', text: `kernel ${j} · ${fmap.name}${cg > 1 ? ' (channel 0)' : ''}` }), table);
    });
  }

  // ---------------------------------------------------------------- indices of M (convmath)

  /** Output unit (j, m, n) of row i of M. */
  outputOf(row) {
    return unravelIndex(row, this.data.output_shape);
  }

  /** Input pixel (c, r, q) of the crop for column i of M. */
  pixelOf(col) {
    return unravelIndex(col, this.data.input_shape);
  }

  /** The weight (j, c, u, v) of a flat index into the weight tensor. */
  weightOf(tied) {
    return unravelIndex(tied, this.data.weight_shape);
  }

  // ---------------------------------------------------------------- drawing

  /** Draw M, the crop and the outputs, fading everything the highlight does not concern. */
  draw() {
    const d = this.data;
    if (!d) return;
    const [rows, cols] = d.shape;
    const room = Math.max(240, (this.root.querySelector('.dense-main').clientWidth || 600) - 8);
    const cell = integerScale(cols, room, 12);
    const ctx = sizeCanvas(this.canvas, cols * cell, rows * cell);
    this.cell = cell;
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cols * cell, rows * cell);
    const hl = this.highlight;
    if (hl && (hl.row !== undefined || hl.col !== undefined)) {
      // The hovered row (one output) and column (one input pixel) as light bands.
      ctx.fillStyle = 'rgba(228, 87, 46, 0.12)';
      if (hl.row !== undefined) ctx.fillRect(0, hl.row * cell, cols * cell, cell);
      if (hl.col !== undefined) ctx.fillRect(hl.col * cell, 0, cell, rows * cell);
    }
    const e = d.entries;
    for (let i = 0; i < e.rows.length; i++) {
      let on = true;
      if (hl) {
        if (hl.tied !== undefined) on = e.tied[i] === hl.tied;
        else on = (hl.row !== undefined && e.rows[i] === hl.row) || (hl.col !== undefined && e.cols[i] === hl.col);
      }
      ctx.globalAlpha = on ? 1 : 0.12;
      ctx.fillStyle = tiedColour(e.tied[i]);
      ctx.fillRect(e.cols[i] * cell, e.rows[i] * cell, cell, cell);
    }
    ctx.globalAlpha = 1;
    if (hl && hl.row !== undefined && hl.col !== undefined) {
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = 2;
      ctx.strokeRect(hl.col * cell - 1, hl.row * cell - 1, cell + 2, cell + 2);
    }
    this.drawCrop();
    this.drawOutputs();
  }

  drawCrop() {
    const img = document.querySelector('#input-img');
    const { top, left, side } = this.cropBox;
    const px = integerScale(side, 128, 16);
    const ctx = sizeCanvas(this.cropCanvas, side * px, side * px);
    // The layer sees luma in gray mode: draw the crop as the layer sees it.
    ctx.filter = this.app && this.app.state.color === 'rgb' ? 'none' : 'grayscale(1)';
    if (img.naturalWidth) ctx.drawImage(img, left, top, side, side, 0, 0, side * px, side * px);
    ctx.filter = 'none';
    const hl = this.highlight;
    if (hl && hl.pixels) {
      ctx.fillStyle = 'rgba(255, 255, 255, 0.55)';
      ctx.fillRect(0, 0, side * px, side * px);
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = 2;
      for (const [, r, q] of hl.pixels) {
        ctx.clearRect(q * px, r * px, px, px);
        if (img.naturalWidth) {
          ctx.filter = this.app && this.app.state.color === 'rgb' ? 'none' : 'grayscale(1)';
          ctx.drawImage(img, left + q, top + r, 1, 1, q * px, r * px, px, px);
          ctx.filter = 'none';
        }
        ctx.strokeRect(q * px + 1, r * px + 1, px - 2, px - 2);
      }
    }
    this.px = px;
  }

  /** The crop's output units: one small grid per kernel, side by side. */
  drawOutputs() {
    const [kernels, ho, wo] = this.data.output_shape;
    const cell = Math.max(3, Math.min(16, Math.floor(Math.min(260, this.outCanvas.parentElement.clientWidth || 200) / (kernels * (wo + 1)))));
    this.outCell = cell;
    const width = kernels * (wo + 1) * cell - cell;
    const ctx = sizeCanvas(this.outCanvas, Math.max(cell, width), ho * cell);
    const lit = new Set((this.highlight && this.highlight.outputs || []).map((o) => o.join(',')));
    const v = this.outputs;
    let lo = 0;
    let hi = 0;
    if (v) for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; }
    for (let j = 0; j < kernels; j++) {
      for (let m = 0; m < ho; m++) {
        for (let n = 0; n < wo; n++) {
          const x = (j * (wo + 1) + n) * cell;
          const value = v ? v[ravelIndex([j, m, n], this.data.output_shape)] : 0;
          ctx.fillStyle = v ? css(colourFor(value, lo, hi)) : '#ddd';
          ctx.fillRect(x, m * cell, cell, cell);
          if (lit.has(`${j},${m},${n}`)) {
            ctx.strokeStyle = ACCENT;
            ctx.lineWidth = 2;
            ctx.strokeRect(x + 1, m * cell + 1, cell - 2, cell - 2);
          }
        }
      }
    }
    this.root.querySelector('#dense-out-caption').textContent = `v = σ(Mu + b), ${kernels} × ${ho}×${wo}: row i of M is output (j, m, n) with i = (j·${ho} + m)·${wo} + n. Hover a unit for its value.`;
  }

  /**
   * Set what is highlighted, mark the kernel cell, redraw, and record it on #dense-info.
   * @param {{tied?: number, row?: number, col?: number, pixels?: number[][], outputs?: number[][]}|null} hl
   */
  setHighlight(hl) {
    this.highlight = hl;
    for (const td of this.kernelBox.querySelectorAll('td')) {
      td.classList.toggle('selected', Boolean(hl && hl.tied !== undefined && Number(td.dataset.tied) === hl.tied));
    }
    const ds = this.info.dataset;
    for (const key of ['tied', 'entry', 'pixel', 'output']) delete ds[key];
    if (hl) {
      if (hl.tied !== undefined) ds.tied = String(hl.tied);
      if (hl.row !== undefined && hl.col !== undefined) ds.entry = `${hl.row},${hl.col}`;
      if (hl.pixels && hl.pixels.length === 1) ds.pixel = hl.pixels[0].join(',');
      if (hl.outputs && hl.outputs.length === 1) ds.output = hl.outputs[0].join(',');
    } else {
      this.info.textContent = 'Hover an entry of M, a kernel weight, a pixel of the crop or an output unit.';
    }
    this.draw();
  }

  /** A kernel weight: all its copies in M, the pixels they read and the outputs they feed. */
  hoverWeight(tied) {
    if (!this.data) return;
    const e = this.data.entries;
    const pixels = new Map();
    const outputs = new Map();
    let count = 0;
    for (let i = 0; i < e.tied.length; i++) {
      if (e.tied[i] !== tied) continue;
      count++;
      const p = this.pixelOf(e.cols[i]);
      const o = this.outputOf(e.rows[i]);
      pixels.set(p.join(','), p);
      outputs.set(o.join(','), o);
    }
    const [j, c, u, v] = this.weightOf(tied);
    this.setHighlight({ tied, pixels: [...pixels.values()], outputs: [...outputs.values()] });
    this.info.textContent = `W${j}[${c}, ${u}, ${v}] appears ${count} times in M, once for each output whose tap (${u}, ${v}) lands on a real pixel of the crop. All ${count} copies are one parameter.`;
  }

  /** Arrow keys walk M entry by entry (Page Up/Down by ten rows), as the pointer does. */
  keyMatrix(e) {
    const d = this.data;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1], PageUp: [-10, 0], PageDown: [10, 0] };
    if (!d || !moves[e.key]) return;
    e.preventDefault();
    e.stopPropagation();
    const [dr, dc] = moves[e.key];
    this.cursor = [Math.min(d.shape[0] - 1, Math.max(0, this.cursor[0] + dr)), Math.min(d.shape[1] - 1, Math.max(0, this.cursor[1] + dc))];
    this.hoverEntry(this.cursor[0], this.cursor[1]);
  }

  hoverMatrix(evt) {
    const d = this.data;
    if (!d) return;
    const rect = this.canvas.getBoundingClientRect();
    const col = Math.min(d.shape[1] - 1, Math.max(0, Math.floor((evt.clientX - rect.left) / this.cell)));
    const row = Math.min(d.shape[0] - 1, Math.max(0, Math.floor((evt.clientY - rect.top) / this.cell)));
    this.hoverEntry(row, col);
  }

  /** One entry M[row, col]: its weight, its input pixel and its output unit. */
  hoverEntry(row, col) {
    const d = this.data;
    const i = this.lookup.get(ravelIndex([row, col], d.shape));
    const [j, m, n] = this.outputOf(row);
    const [c, r, q] = this.pixelOf(col);
    if (i === undefined) {
      this.setHighlight({ row, col, pixels: [[c, r, q]], outputs: [[j, m, n]] });
      this.info.textContent = `M[${row}, ${col}] = 0: output (${j}, ${m}, ${n}) does not read crop pixel (${c}, ${r}, ${q}); it is outside that output's window.`;
      return;
    }
    const tied = d.entries.tied[i];
    const [, wc, u, v] = this.weightOf(tied);
    let copies = 0;
    for (const t of d.entries.tied) if (t === tied) copies++;
    this.setHighlight({ tied, row, col, pixels: [[c, r, q]], outputs: [[j, m, n]] });
    this.info.textContent = `M[${row}, ${col}] = W${j}[${wc}, ${u}, ${v}] = ${formatNumber(d.entries.values[i])}: output (${j}, ${m}, ${n}) reads crop pixel (${c}, ${r}, ${q}) through tap (${u}, ${v}). The same weight fills ${copies - 1} other entries of M.`;
  }

  hoverCrop(evt) {
    if (!this.data) return;
    const rect = this.cropCanvas.getBoundingClientRect();
    const side = this.cropBox.side;
    const q = Math.min(side - 1, Math.max(0, Math.floor((evt.clientX - rect.left) / this.px)));
    const r = Math.min(side - 1, Math.max(0, Math.floor((evt.clientY - rect.top) / this.px)));
    const col = ravelIndex([0, r, q], this.data.input_shape);
    const e = this.data.entries;
    const outputs = [];
    for (let i = 0; i < e.cols.length; i++) if (e.cols[i] === col) outputs.push(this.outputOf(e.rows[i]));
    this.setHighlight({ col, pixels: [[0, r, q]], outputs });
    this.info.textContent = `Crop pixel (${r}, ${q}) is column ${col} of M: ${outputs.length} outputs read it, each through a different tap.`;
  }

  hoverOutput(evt) {
    if (!this.data) return;
    const [kernels, ho, wo] = this.data.output_shape;
    const rect = this.outCanvas.getBoundingClientRect();
    const x = Math.floor((evt.clientX - rect.left) / this.outCell);
    const m = Math.min(ho - 1, Math.max(0, Math.floor((evt.clientY - rect.top) / this.outCell)));
    const j = Math.min(kernels - 1, Math.floor(x / (wo + 1)));
    const n = x - j * (wo + 1);
    if (n < 0 || n >= wo) { this.setHighlight(null); return; }
    const row = ravelIndex([j, m, n], this.data.output_shape);
    const e = this.data.entries;
    const pixels = [];
    for (let i = 0; i < e.rows.length; i++) if (e.rows[i] === row) pixels.push(this.pixelOf(e.cols[i]));
    this.setHighlight({ row, pixels, outputs: [[j, m, n]] });
    const value = this.outputs ? ` v[${row}] = ${formatNumber(this.outputs[row], 4)}.` : '';
    this.info.textContent = `Output (${j}, ${m}, ${n}) is row ${row} of M: it reads ${pixels.length} crop pixels, one per tap that lands inside the crop.${value}`;
  }
}
