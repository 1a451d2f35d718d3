// The Dense matrix tab's M / Mᵀ toggle: Mᵀ is the transposed conv with the same weights. It is
// drawn from the dense view's answer with rows and columns swapped, beside a grid of how many
// entries each crop pixel's row of Mᵀ holds (the API's transposed_coverage): with a stride the
// counts alternate, the checkerboard of transposed convolutions. This module only draws.

import { colourFor, css, tiedColour } from '../colormap.js';
import { integerScale } from '../convmath.js';
import { clear, el, sizeCanvas } from '../dom.js';
import { formatInt } from '../format.js';

export class TransposeToggle {
  /**
   * @param {HTMLElement} root #tab-dense
   * @param {{render: (app: object) => Promise<void>, data: object|null}} dense the DenseView
   */
  constructor(root, dense) {
    this.root = root;
    this.dense = dense;
    this.transposed = false;
    this.card = root.querySelector('#transpose-card');
    this.main = root.querySelector('.dense-main');
    this.buttons = [...root.querySelectorAll('#transpose-toggle button')];
    for (const btn of this.buttons) {
      btn.addEventListener('click', () => {
        this.transposed = btn.dataset.mode === 'transposed';
        this.draw();
      });
    }
  }

  /** Render the dense view, then this toggle's part. */
  async render(app) {
    await this.dense.render(app);
    this.draw();
  }

  draw() {
    const d = this.dense.data;
    for (const btn of this.buttons) btn.setAttribute('aria-pressed', String((btn.dataset.mode === 'transposed') === this.transposed));
    this.card.hidden = !d;
    if (!d) return;
    this.main.hidden = this.transposed;
    this.root.querySelector('#transpose-main').hidden = !this.transposed;
    this.root.dataset.matrix = this.transposed ? 'transposed' : 'conv';
    if (this.transposed) this.drawMatrix(d);
    this.drawCoverage(d);
  }

  /** Mᵀ: entry (i, j) of M drawn at (j, i), in its shared weight's colour. */
  drawMatrix(d) {
    const [rows, cols] = d.shape; // of M; Mᵀ is cols × rows
    const room = Math.max(240, (this.root.querySelector('#transpose-main').clientWidth || 600) - 8);
    const cell = Math.min(integerScale(rows, room, 12), integerScale(cols, 520, 12)); // Mᵀ is tall
    const canvas = this.root.querySelector('#transpose-canvas');
    const ctx = sizeCanvas(canvas, rows * cell, cols * cell);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, rows * cell, cols * cell);
    const e = d.entries;
    for (let i = 0; i < e.rows.length; i++) {
      ctx.fillStyle = tiedColour(e.tied[i]);
      ctx.fillRect(e.rows[i] * cell, e.cols[i] * cell, cell, cell);
    }
    this.root.querySelector('#transpose-shape').textContent = `${formatInt(cols)} × ${formatInt(rows)}: the same ${formatInt(d.nnz)} non-zeros, rows and columns swapped`;
  }

  /** Per crop pixel, the non-zeros of its row of Mᵀ: how many products the transposed conv adds there. */
  drawCoverage(d) {
    const counts = d.transposed_coverage;
    const box = this.root.querySelector('#transpose-coverage');
    clear(box);
    if (!counts) return;
    const flat = counts.flat();
    const lo = Math.min(...flat);
    const hi = Math.max(...flat);
    const table = el('table', { className: 'kernel coverage-grid', 'aria-label': 'contributions per output pixel of the transposed conv' });
    counts.forEach((row) => {
      const tr = el('tr');
      row.forEach((n) => {
        const rgb = colourFor(n, lo, hi);
        const light = rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114 > 140;
        const td = el('td', { className: light ? 'light' : 'dark', text: String(n) });
        td.style.backgroundColor = css(rgb);
        tr.append(td);
      });
      table.append(tr);
    });
    const [sh, sw] = this.dense.app?.result?.layer?.stride || [1, 1];
    const even = lo === hi;
    const words = even
      ? `Every pixel of the transposed conv's output gets ${formatInt(lo)} contributions: even coverage.`
      : `The transposed conv's output pixels get between ${formatInt(lo)} and ${formatInt(hi)} contributions`
        + `${sh > 1 || sw > 1 ? `: with stride ${sh === sw ? sh : `${sh}×${sw}`} the kernel's copies overlap on some pixels and not on others, the checkerboard pattern` : ', fewer at the edges'}.`;
    box.dataset.min = String(lo);
    box.dataset.max = String(hi);
    box.append(table, el('p', { className: 'muted small', text: words }));
  }
}
