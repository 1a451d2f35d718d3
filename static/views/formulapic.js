// The Formula tab's picture: the padded top-left corner of the input, enlarged, with the first
// output's window. Hovering (or focusing) k, s, p or d in a formula shows where that number lives:
// k the window, s the step to the neighbouring window, p the band of zeros, d the gaps between
// taps. Drawing only.

import { effectiveKernel, geometryOf, integerScale } from '../convmath.js';
import { sizeCanvas } from '../dom.js';

const ACCENT = '#e4572e';
const TAP = '#1f6fd1';
const TAP_PAD = '#f0a202';

/** What each symbol means, in words, for the caption under the picture. */
const CAPTIONS = {
  k: (g) => `k = ${g.kernel[0]}×${g.kernel[1]}: the window holds ${g.kernel[0]}×${g.kernel[1]} taps, one weight each; the sums over u and v run over them.`,
  s: (g) => `s = ${g.stride[0]}×${g.stride[1]}: the next output's window (dashed) starts ${g.stride[1]} pixel${g.stride[1] === 1 ? '' : 's'} to the right, and the next row ${g.stride[0]} down.`,
  p: (g) => `p = ${g.padding[0]}×${g.padding[1]}: ${g.padding[0] || g.padding[1] ? 'a band of zeros around the image, so windows can start before its first pixel' : 'no padding: the first window starts on the first pixel'}.`,
  d: (g) => `d = ${g.dilation[0]}×${g.dilation[1]}: taps are ${g.dilation[1]} pixel${g.dilation[1] === 1 ? '' : 's'} apart; ${g.dilation[0] > 1 || g.dilation[1] > 1 ? 'the green pixels between them are skipped' : 'no gaps, the taps touch'}. The window spans d(k − 1) + 1 = ${effectiveKernel(g).join('×')} pixels.`,
};

export class FormulaPicture {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {HTMLElement} caption
   */
  constructor(canvas, caption) {
    this.canvas = canvas;
    this.caption = caption;
    this.result = null;
    this.img = null;
    this.symbol = null;
  }

  /**
   * @param {any} result the /api/convolve answer
   * @param {HTMLImageElement} img the working image
   */
  setResult(result, img) {
    this.result = result;
    this.img = img;
    this.draw();
  }

  /** @param {'k'|'s'|'p'|'d'|null} symbol */
  show(symbol) {
    this.symbol = symbol;
    this.canvas.dataset.symbol = symbol || '';
    this.draw();
  }

  draw() {
    if (!this.result) return;
    const spec = this.result.layer;
    const g = geometryOf(spec);
    const [, h, w] = this.result.input_shape;
    const eff = effectiveKernel(g);
    const [, ho, wo] = this.result.output_shape;
    // Rows and columns shown, in input coordinates (negative = padding): the first window and
    // its right-hand neighbour, one spare pixel, and no more than the padded image has.
    const r0 = -g.padding[0];
    const c0 = -g.padding[1];
    const rows = Math.min(eff[0] + (ho > 1 ? 1 : 0) + 1, h + 2 * g.padding[0], 40);
    const cols = Math.min(eff[1] + (wo > 1 ? g.stride[1] : 0) + 1, w + 2 * g.padding[1], 48);
    const room = Math.max(160, Math.min(300, (this.canvas.parentElement.clientWidth || 320) - 16));
    const cell = Math.max(4, integerScale(cols, room, 26));
    const ctx = sizeCanvas(this.canvas, cols * cell, rows * cell);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, cols * cell, rows * cell);
    // The image pixels as the layer sees them (gray in gray mode), padding as a light checker.
    const inside = (r, c) => r >= 0 && r < h && c >= 0 && c < w;
    if (this.img && this.img.naturalWidth) {
      const sr = Math.max(0, r0);
      const sc = Math.max(0, c0);
      const sh = Math.min(h, r0 + rows) - sr;
      const sw = Math.min(w, c0 + cols) - sc;
      if (sh > 0 && sw > 0) {
        ctx.filter = spec.color === 'rgb' ? 'none' : 'grayscale(1)';
        ctx.drawImage(this.img, sc, sr, sw, sh, (sc - c0) * cell, (sr - r0) * cell, sw * cell, sh * cell);
        ctx.filter = 'none';
      }
    }
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        if (inside(r + r0, c + c0)) continue;
        ctx.fillStyle = (r + c) % 2 ? '#dcdcdc' : '#cfcfcf';
        ctx.fillRect(c * cell, r * cell, cell, cell);
      }
    }
    const sym = this.symbol;
    if (sym) {
      // Fade the picture so the highlighted part stands out.
      ctx.fillStyle = 'rgba(255, 255, 255, 0.45)';
      ctx.fillRect(0, 0, cols * cell, rows * cell);
    }
    if (sym === 'p') {
      ctx.fillStyle = 'rgba(123, 63, 196, 0.55)';
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) if (!inside(r + r0, c + c0)) ctx.fillRect(c * cell, r * cell, cell, cell);
      }
    }
    // Grid lines when the cells are big enough to read as cells.
    if (cell >= 8) {
      ctx.strokeStyle = 'rgba(0, 0, 0, 0.12)';
      ctx.lineWidth = 1;
      for (let r = 0; r <= rows; r++) { ctx.beginPath(); ctx.moveTo(0, r * cell + 0.5); ctx.lineTo(cols * cell, r * cell + 0.5); ctx.stroke(); }
      for (let c = 0; c <= cols; c++) { ctx.beginPath(); ctx.moveTo(c * cell + 0.5, 0); ctx.lineTo(c * cell + 0.5, rows * cell); ctx.stroke(); }
    }
    // Window of output (0, 0): its top-left is input (−p, −p), i.e. cell (0, 0) here.
    const winH = Math.min(eff[0], rows);
    const winW = Math.min(eff[1], cols);
    if (sym === 'd') {
      ctx.fillStyle = 'rgba(11, 122, 91, 0.45)';
      for (let r = 0; r < winH; r++) {
        for (let c = 0; c < winW; c++) {
          if (r % g.dilation[0] || c % g.dilation[1]) ctx.fillRect(c * cell, r * cell, cell, cell);
        }
      }
    }
    const taps = (dc) => {
      for (let u = 0; u < g.kernel[0]; u++) {
        for (let v = 0; v < g.kernel[1]; v++) {
          const r = u * g.dilation[0];
          const c = v * g.dilation[1] + dc;
          if (r >= rows || c >= cols) continue;
          ctx.fillStyle = inside(r + r0, c + c0) ? TAP : TAP_PAD;
          ctx.beginPath();
          ctx.arc((c + 0.5) * cell, (r + 0.5) * cell, Math.max(1.5, cell * 0.22), 0, Math.PI * 2);
          ctx.fill();
        }
      }
    };
    taps(0);
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = sym === 'k' ? 4 : 2;
    ctx.strokeRect(1, 1, winW * cell - 2, winH * cell - 2);
    if (sym === 's' && wo > 1) {
      const dx = g.stride[1];
      taps(dx);
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 2.5;
      ctx.strokeRect(dx * cell + 1, 1, Math.min(winW, cols - dx) * cell - 2, winH * cell - 2);
      ctx.setLineDash([]);
      // An arrow from one window's left edge to the next one's: the step s.
      const y = Math.min(rows - 0.5, winH + 0.5) * cell;
      ctx.strokeStyle = '#b3261e';
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.moveTo(2, y);
      ctx.lineTo(dx * cell - 2, y);
      ctx.stroke();
      ctx.fillStyle = '#b3261e';
      ctx.beginPath();
      ctx.moveTo(dx * cell, y);
      ctx.lineTo(dx * cell - 8, y - 5);
      ctx.lineTo(dx * cell - 8, y + 5);
      ctx.fill();
    }
    this.caption.textContent = sym ? CAPTIONS[sym](g) : `The padded top-left corner of the input, ×${cell}: the box is output (0, 0)'s window, dots are its taps (orange on padding). Hover k, s, p or d in a formula, or the buttons, to see where each one is.`;
  }
}
