// The Gradients tab: pick one shared weight; see its contribution at every output position and
// their sum, which is the single update that weight gets.

import { Channel, Stale } from '../api.js';
import { formatInt, formatNumber } from '../convmath.js';
import { clear, colourBar, el, kernelTable, sizeCanvas } from '../dom.js';

/** Digits as Unicode subscripts: 12 → "₁₂". */
function subscript(n) {
  return String(n).replace(/\d/g, (d) => '₀₁₂₃₄₅₆₇₈₉'[Number(d)]);
}

export class GradientsView {
  /** @param {HTMLElement} root #tab-gradients */
  constructor(root) {
    this.root = root;
    this.channel = new Channel();
    this.select = root.querySelector('#grad-kernel');
    this.grid = root.querySelector('#grad-grid');
    this.map = root.querySelector('#grad-map');
    this.sum = root.querySelector('#grad-sum');
    this.untied = root.querySelector('#grad-untied');
    this.ctx = null;
    this.select.addEventListener('change', () => {
      if (!this.ctx) return;
      const w = this.weight(this.ctx);
      this.ctx.setState({ weight: `${this.select.value},0,${w[2]},${w[3]}` }, true);
      this.render(this.ctx);
    });
    this.grid.addEventListener('click', (e) => this.pick(e));
    this.grid.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); this.pick(e); } });
  }

  /**
   * Mark the pinned unit on the contributions map (the same unit as on the input and maps).
   * @param {[number, number]|null} unit
   */
  mark(unit) {
    if (!this.marker || !this.img) return;
    const note = this.map.querySelector('.grad-unit');
    if (!unit) {
      this.marker.hidden = true;
      if (note) note.textContent = '';
      return;
    }
    const [ho, wo] = this.outHW;
    const w = parseFloat(this.img.style.width) / wo;
    const h = parseFloat(this.img.style.height) / ho;
    this.marker.style.left = `${unit[1] * w - 2}px`;
    this.marker.style.top = `${unit[0] * h - 2}px`;
    this.marker.style.width = `${Math.max(w, 2) + 4}px`;
    this.marker.style.height = `${Math.max(h, 2) + 4}px`;
    this.marker.hidden = false;
    if (note) {
      const v = this.values ? this.values[unit[0]][unit[1]] : null;
      note.textContent = `Pinned output (${unit[0]}, ${unit[1]})${v === null ? '' : ` contributes ${formatNumber(v, 4)}`}.`;
    }
  }

  /** The selected weight (j, c, u, v), clamped to the layer. */
  weight(ctx) {
    const parts = (ctx.state.weight || '').split(',').map(Number);
    const [kh, kw] = ctx.layer.layer.kernel_size;
    const j = Math.min(Math.max(parts[0] || 0, 0), ctx.layer.maps.length - 1);
    const u = Number.isFinite(parts[2]) ? Math.min(Math.max(parts[2], 0), kh - 1) : Math.floor(kh / 2);
    const v = Number.isFinite(parts[3]) ? Math.min(Math.max(parts[3], 0), kw - 1) : Math.floor(kw / 2);
    return [j, 0, u, v];
  }

  pick(e) {
    const td = e.target.closest('td');
    if (!td || !this.ctx) return;
    const w = this.weight(this.ctx);
    this.ctx.setState({ weight: `${w[0]},0,${td.dataset.u},${td.dataset.v}` }, true);
    this.render(this.ctx);
  }

  /**
   * The running sum of the contributions in row-major order, as a sparkline with a scrubber.
   * @param {number[][]|undefined} values H_out×W_out, present for small outputs
   * @param {number} total
   */
  renderRunningSum(values, total) {
    const box = this.root.querySelector('#grad-running');
    clear(box);
    if (!values) {
      box.append(el('p', { className: 'muted', text: 'The output is too large to list every contribution; the sum above is exact.' }));
      return;
    }
    const flat = values.flat();
    const partial = [];
    let acc = 0;
    for (const v of flat) { acc += v; partial.push(acc); }
    const canvas = el('canvas', { className: 'sparkline', 'aria-hidden': 'true' });
    const slider = el('input', { type: 'range', min: '1', max: String(flat.length), value: String(flat.length), 'aria-label': 'positions added so far' });
    const text = el('p', { className: 'running-text' });
    box.append(el('h4', { text: 'Running sum, position by position' }), canvas, slider, text);
    const draw = () => {
      const k = Number(slider.value);
      const width = Math.max(200, Math.min(360, box.clientWidth || 300));
      const height = 70;
      const g = sizeCanvas(canvas, width, height);
      const lo = Math.min(0, ...partial);
      const hi = Math.max(0, ...partial) || 1;
      const y = (v) => height - 4 - ((v - lo) / (hi - lo || 1)) * (height - 8);
      g.strokeStyle = '#bbb';
      g.beginPath();
      g.moveTo(0, y(0));
      g.lineTo(width, y(0));
      g.stroke();
      g.strokeStyle = '#e4572e';
      g.lineWidth = 2;
      g.beginPath();
      partial.slice(0, k).forEach((v, i) => {
        const x = (i / Math.max(1, partial.length - 1)) * width;
        if (i === 0) g.moveTo(x, y(v));
        else g.lineTo(x, y(v));
      });
      g.stroke();
      const m = Math.floor((k - 1) / values[0].length);
      const n = (k - 1) % values[0].length;
      text.textContent = `After ${formatInt(k)} of ${formatInt(flat.length)} positions (up to output (${m}, ${n})): ${formatNumber(partial[k - 1], 5)}`
        + (k === flat.length ? ` = the one update, ${formatNumber(total, 5)}.` : '.');
    };
    slider.addEventListener('input', draw);
    draw();
  }

  async render(ctx) {
    this.ctx = ctx;
    const { layer } = ctx;
    const w = this.weight(ctx);
    clear(this.select);
    layer.maps.forEach((m, j) => this.select.append(el('option', { value: String(j), selected: j === w[0], text: `${j} · ${m.name}` })));
    clear(this.grid);
    this.grid.append(kernelTable(layer.maps[w[0]].weights[0], null, { selected: [w[2], w[3]] }),
      el('p', { className: 'muted', text: 'Click a weight (channel 0).' }));
    let data;
    try {
      data = await this.channel.run((signal) => ctx.callApi('/api/gradient', { weight: w.join(','), loss: 'sum', values: 'true' }, signal));
    } catch (err) {
      if (!(err instanceof Stale)) ctx.showError(err);
      return;
    }
    const [, ho, wo] = layer.output_shape;
    clear(this.map);
    const img = el('img', { className: 'pixelated grad-img', src: data.contributions.png, alt: `contributions of weight (${w.join(', ')}) at each output position` });
    const room = Math.max(160, Math.min(420, this.map.clientWidth || 320));
    const scale = wo <= room ? Math.max(1, Math.floor(room / wo)) : room / wo;
    img.style.width = `${Math.round(wo * scale)}px`;
    img.style.height = `${Math.round(ho * scale)}px`;
    this.marker = el('div', { className: 'unit-marker pinned', hidden: true });
    this.img = img;
    this.values = data.contributions.values || null;
    this.outHW = [ho, wo];
    this.map.append(el('div', { className: 'fmap-wrap' }, img, this.marker),
      colourBar(data.contributions.min, data.contributions.max, '∂L/∂y · x'),
      el('p', { className: 'muted grad-unit' }));
    this.mark(ctx.pinned ? ctx.pinned() : null);
    const n = ho * wo;
    this.sum.textContent = `∂L/∂W${subscript(w[0])}[${w[1]}, ${w[2]}, ${w[3]}] = sum over ${formatInt(n)} positions = ${formatNumber(data.contributions.sum, 5)}`;
    this.renderRunningSum(data.contributions.values, data.contributions.sum);
    this.untied.textContent = `Shared: these ${formatInt(n)} contributions add up to one number, and gradient descent moves the one weight by −η × ${formatNumber(data.grad_w_at_weight, 5)}. `
      + `Untied (locally connected), each position would own its weight, so the same ${formatInt(n)} numbers would be ${formatInt(n)} separate updates to ${formatInt(n)} separate weights, with no sum.`;
  }
}
