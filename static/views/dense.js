// The Dense matrix tab: M for a small crop, each entry in the colour of the shared weight it
// copies, zeros white. Hovering links a weight, its entries in M, and the input pixel.

import { Channel, Stale } from '../api.js';
import { tiedColour } from '../colormap.js';
import { formatInt, formatNumber, integerScale } from '../convmath.js';
import { clear, el, sizeCanvas } from '../dom.js';

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
    this.ctx = null;
    this.highlight = null; // {tied?: number, col?: number, row?: number}
    const changed = () => {
      root.querySelector('#crop-size-out').textContent = this.size.value;
      window.clearTimeout(this.debounce);
      this.debounce = window.setTimeout(() => {
        if (!this.ctx) return;
        this.ctx.setState({ crop: `${this.top.value},${this.left.value},${this.size.value},${this.size.value}` });
        this.render(this.ctx);
      }, 150);
    };
    for (const input of [this.size, this.top, this.left]) input.addEventListener('input', changed);
    this.canvas.addEventListener('mousemove', (e) => this.hoverMatrix(e));
    this.canvas.addEventListener('mouseleave', () => this.setHighlight(null));
    this.cropCanvas.addEventListener('mousemove', (e) => this.hoverCrop(e));
    this.cropCanvas.addEventListener('mouseleave', () => this.setHighlight(null));
  }

  /** The crop as (top, left, side): from the state, clamped to the image. */
  crop(ctx) {
    const [, h, w] = ctx.layer.input_shape;
    const parts = (ctx.state.crop || '').split(',').map(Number);
    const side = Math.min(Number.isFinite(parts[2]) && parts[2] > 0 ? parts[2] : Math.min(8, h, w), h, w, 16);
    const top = Math.min(Math.max(parts[0] || 0, 0), h - side);
    const left = Math.min(Math.max(parts[1] || 0, 0), w - side);
    return { top, left, side };
  }

  async render(ctx) {
    this.ctx = ctx;
    const { top, left, side } = this.crop(ctx);
    const [, h, w] = ctx.layer.input_shape;
    this.size.max = String(Math.min(16, h, w));
    this.size.value = String(side);
    this.root.querySelector('#crop-size-out').textContent = String(side);
    this.top.max = String(h - side);
    this.left.max = String(w - side);
    this.top.value = String(top);
    this.left.value = String(left);
    let data;
    try {
      data = await this.channel.run((signal) => ctx.callApi('/api/dense-matrix', { crop: `${top},${left},${side},${side}` }, signal));
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
    for (let i = 0; i < e.rows.length; i++) this.lookup.set(e.rows[i] * data.shape[1] + e.cols[i], i);
    this.root.querySelector('#dense-shape').textContent = `${formatInt(data.shape[0])} × ${formatInt(data.shape[1])}: ${formatInt(data.nnz)} non-zeros (${formatNumber(data.density * 100, 2)} %), but only ${formatInt(data.weight_shape.reduce((a, b) => a * b, 1))} distinct weights`;
    this.drawKernels(ctx.layer);
    this.draw();
  }

  drawKernels(layer) {
    clear(this.kernelBox);
    const [, cg, kh, kw] = this.data.weight_shape;
    layer.maps.forEach((m, j) => {
      const table = el('table', { className: 'kernel tied' });
      for (let u = 0; u < kh; u++) {
        const tr = el('tr');
        for (let v = 0; v < kw; v++) {
          const tied = ((j * cg) * kh + u) * kw + v;
          const td = el('td', { tabindex: '0', dataset: { tied: String(tied) }, title: `W${j}[0, ${u}, ${v}] = ${m.weights[0][u][v]}` },
            el('span', { className: 'w', text: formatNumber(m.weights[0][u][v], 2) }));
          td.style.backgroundColor = tiedColour(tied);
          td.addEventListener('mouseenter', () => this.setHighlight({ tied }));
          td.addEventListener('focus', () => this.setHighlight({ tied }));
          td.addEventListener('mouseleave', () => this.setHighlight(null));
          tr.append(td);
        }
        table.append(tr);
      }
      this.kernelBox.append(el('p', { className: 'muted', text: `kernel ${j} · ${m.name}${cg > 1 ? ' (channel 0)' : ''}` }), table);
    });
  }

  /** Draw M and the crop, fading everything but the highlighted weight, column or row. */
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
    const e = d.entries;
    for (let i = 0; i < e.rows.length; i++) {
      const on = !hl || (hl.tied !== undefined ? e.tied[i] === hl.tied : hl.col !== undefined ? e.cols[i] === hl.col : e.rows[i] === hl.row);
      ctx.globalAlpha = on ? 1 : 0.15;
      ctx.fillStyle = tiedColour(e.tied[i]);
      ctx.fillRect(e.cols[i] * cell, e.rows[i] * cell, cell, cell);
    }
    ctx.globalAlpha = 1;
    if (hl && hl.col !== undefined) {
      ctx.strokeStyle = '#e4572e';
      ctx.lineWidth = 1.5;
      ctx.strokeRect(hl.col * cell, 0, cell, rows * cell);
    }
    if (hl && hl.row !== undefined) {
      ctx.strokeStyle = '#e4572e';
      ctx.lineWidth = 1.5;
      ctx.strokeRect(0, hl.row * cell, cols * cell, cell);
    }
    this.drawCrop();
  }

  drawCrop() {
    const img = document.querySelector('#input-img');
    const { top, left, side } = this.cropBox;
    const px = integerScale(side, 200, 24);
    const ctx = sizeCanvas(this.cropCanvas, side * px, side * px);
    // The layer sees luma in gray mode: draw the crop as the layer sees it.
    ctx.filter = this.ctx && this.ctx.state.color === 'rgb' ? 'none' : 'grayscale(1)';
    if (img.naturalWidth) ctx.drawImage(img, left, top, side, side, 0, 0, side * px, side * px);
    ctx.filter = 'none';
    const hl = this.highlight;
    if (hl && hl.pixels) {
      ctx.strokeStyle = '#e4572e';
      ctx.lineWidth = 2;
      for (const [r, q] of hl.pixels) ctx.strokeRect(q * px + 1, r * px + 1, px - 2, px - 2);
    }
    this.px = px;
  }

  setHighlight(hl) {
    this.highlight = hl;
    for (const td of this.kernelBox.querySelectorAll('td')) {
      td.classList.toggle('selected', Boolean(hl && hl.tied !== undefined && Number(td.dataset.tied) === hl.tied));
    }
    if (hl && hl.tied !== undefined && this.data) {
      const e = this.data.entries;
      const [, hIn, wIn] = this.data.input_shape;
      const pixels = [];
      let count = 0;
      for (let i = 0; i < e.tied.length; i++) {
        if (e.tied[i] !== hl.tied) continue;
        count++;
        const q = e.cols[i] % (hIn * wIn);
        pixels.push([Math.floor(q / wIn), q % wIn]);
      }
      hl.pixels = pixels;
      this.info.textContent = `Weight #${hl.tied} appears ${count} times in M, once per output position where it reads a real pixel: all copies are one parameter.`;
    } else if (!hl) {
      this.info.textContent = 'Hover an entry of M, a kernel weight or a pixel of the crop.';
    }
    this.draw();
  }

  hoverMatrix(evt) {
    const d = this.data;
    if (!d) return;
    const rect = this.canvas.getBoundingClientRect();
    const col = Math.floor((evt.clientX - rect.left) / this.cell);
    const row = Math.floor((evt.clientY - rect.top) / this.cell);
    const i = this.lookup.get(row * d.shape[1] + col);
    const [, ho, wo] = d.output_shape;
    const [, hIn, wIn] = d.input_shape;
    const j = Math.floor(row / (ho * wo));
    const m = Math.floor((row % (ho * wo)) / wo);
    const n = row % wo;
    const c = Math.floor(col / (hIn * wIn));
    const r = Math.floor((col % (hIn * wIn)) / wIn);
    const q = col % wIn;
    if (i === undefined) {
      this.highlight = { row, pixels: [[r, q]] };
      this.draw();
      this.info.textContent = `M[${row}, ${col}] = 0: output (${j}, ${m}, ${n}) does not read input pixel (${c}, ${r}, ${q}).`;
      return;
    }
    const tied = d.entries.tied[i];
    const [, cg, kh, kw] = d.weight_shape;
    const v = tied % kw;
    const u = Math.floor(tied / kw) % kh;
    const wc = Math.floor(tied / (kw * kh)) % cg;
    this.setHighlight({ tied });
    this.info.textContent = `M[${row}, ${col}] = W${j}[${wc}, ${u}, ${v}] = ${formatNumber(d.entries.values[i])}: output (${j}, ${m}, ${n}) reads input pixel (${c}, ${r}, ${q}) of the crop through tap (${u}, ${v}). `
      + this.info.textContent;
  }

  hoverCrop(evt) {
    if (!this.data) return;
    const rect = this.cropCanvas.getBoundingClientRect();
    const q = Math.floor((evt.clientX - rect.left) / this.px);
    const r = Math.floor((evt.clientY - rect.top) / this.px);
    const [, , wIn] = this.data.input_shape;
    const col = r * wIn + q;
    this.highlight = { col, pixels: [[r, q]] };
    this.draw();
    let count = 0;
    for (const c of this.data.entries.cols) if (c === col) count++;
    this.info.textContent = `Crop pixel (${r}, ${q}) is column ${col} of M: ${count} outputs read it, each through a different tap.`;
  }
}
