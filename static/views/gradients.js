// The Gradients tab: pick one shared weight; see its contribution at every output position and
// their sum, which is the single update that weight gets.

import { Channel, Stale, parseNpy } from '../api.js';
import { ravelIndex, runningSum } from '../convmath.js';
import { counted, formatInt, formatNumber } from '../format.js';
import { clear, colourBar, el, kernelTable, pageLimit, sizeCanvas } from '../dom.js';
import { GradStep } from './gradstep.js';

const ACCENT = '#e4572e';
/** The API lists contributions up to this many positions (CONVLENS_MAX_VALUES). */
const valuesLimit = () => pageLimit('maxValues');

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
    this.intro = root.querySelector('#grad-intro');
    this.loss = root.querySelector('#grad-loss');
    this.target = root.querySelector('#grad-target');
    this.same = root.querySelector('#grad-same');
    this.step = new GradStep(root);
    this.app = null;
    const onLoss = () => {
      if (!this.app) return;
      this.app.setState({ loss: this.loss.value, target: this.target.value }, true);
      this.render(this.app);
    };
    this.loss.addEventListener('change', onLoss);
    this.target.addEventListener('change', onLoss);
    this.select.addEventListener('change', () => {
      if (!this.app) return;
      const weight = this.selectedWeight(this.app);
      this.app.setState({ weight: `${this.select.value},0,${weight[2]},${weight[3]}` }, true);
      this.render(this.app);
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
    const s = this.scale;
    this.marker.style.left = `${unit[1] * s - 2}px`;
    this.marker.style.top = `${unit[0] * s - 2}px`;
    this.marker.style.width = `${Math.max(s, 2) + 4}px`;
    this.marker.style.height = `${Math.max(s, 2) + 4}px`;
    this.marker.hidden = false;
    if (this.box && this.box.classList.contains('scrolls')) {
      const b = this.box;
      if (unit[1] < b.scrollLeft || unit[1] + 1 > b.scrollLeft + b.clientWidth) b.scrollLeft = unit[1] - b.clientWidth / 2;
      if (unit[0] < b.scrollTop || unit[0] + 1 > b.scrollTop + b.clientHeight) b.scrollTop = unit[0] - b.clientHeight / 2;
    }
    if (note) {
      const v = this.values ? this.values[ravelIndex(unit, this.outHW)] : null;
      note.textContent = `Pinned output (${unit[0]}, ${unit[1]})${v === null ? '' : ` contributes ${formatNumber(v, 4)}`}.`;
    }
  }

  /** The selected weight (j, c, u, v), clamped to the layer. */
  selectedWeight(app) {
    const parts = (app.state.weight || '').split(',').map(Number);
    const [kh, kw] = app.result.layer.kernel_size;
    const j = Math.min(Math.max(parts[0] || 0, 0), app.result.maps.length - 1);
    const u = Number.isFinite(parts[2]) ? Math.min(Math.max(parts[2], 0), kh - 1) : Math.floor(kh / 2);
    const v = Number.isFinite(parts[3]) ? Math.min(Math.max(parts[3], 0), kw - 1) : Math.floor(kw / 2);
    return [j, 0, u, v];
  }

  pick(e) {
    const td = e.target.closest('td');
    if (!td || !this.app) return;
    const weight = this.selectedWeight(this.app);
    this.app.setState({ weight: `${weight[0]},0,${td.dataset.u},${td.dataset.v}` }, true);
    this.render(this.app);
  }

  /**
   * Every contribution of weight (j, c, u, v) when the JSON does not list them (large outputs):
   * the whole (H_out, W_out) map as .npy from /api/gradient (format=npy). Asked after the JSON,
   * so the server answers it from the gradient it has just cached.
   * @returns {Promise<{values: Float32Array, ho: number, wo: number}>}
   */
  async fetchContributions(app, extra, signal) {
    const npy = parseNpy(await app.callApi('/api/gradient', { ...extra, format: 'npy', values: null }, signal, true));
    const [ho, wo] = npy.shape;
    return { values: npy.data, ho, wo };
  }

  /**
   * The running sum of the contributions in row-major order, as a curve with a scrubber.
   * @param {ArrayLike<number>} flat the H_out·W_out contributions, row-major
   * @param {number} wo output width
   * @param {number} total the API's grad_w_at_weight
   * @param {string} source where the numbers came from
   */
  renderRunningSum(flat, wo, total, source) {
    const box = this.root.querySelector('#grad-running');
    clear(box);
    const count = flat.length;
    const partial = runningSum(flat);
    const acc = count ? partial[count - 1] : 0;
    box.dataset.sum = String(acc);
    box.dataset.count = String(count);
    let lo = 0;
    let hi = 0;
    for (const p of partial) { if (p < lo) lo = p; if (p > hi) hi = p; }
    if (hi === lo) hi = lo + 1;
    const canvas = el('canvas', { className: 'sparkline', 'aria-hidden': 'true' });
    const slider = el('input', { type: 'range', min: '1', max: String(count), value: String(count), 'aria-label': 'positions added so far' });
    const text = el('p', { className: 'running-text', 'aria-live': 'polite' });
    box.append(el('h4', { text: `Running sum over the ${counted(count, 'position')}, row by row` }), canvas, slider, text,
      el('p', { className: 'muted small', text: source }));
    const draw = () => {
      const added = Number(slider.value);
      const width = Math.max(160, Math.min(420, box.clientWidth || 300));
      const height = 80;
      const ctx = sizeCanvas(canvas, width, height);
      const y = (val) => height - 6 - ((val - lo) / (hi - lo)) * (height - 12);
      ctx.strokeStyle = '#bbb';
      ctx.beginPath();
      ctx.moveTo(0, y(0));
      ctx.lineTo(width, y(0));
      ctx.stroke();
      // One point per screen pixel: the partial sum after that many positions.
      const inner = width - 8; // room for the end dot
      const upto = Math.max(1, Math.round((added / count) * inner));
      ctx.strokeStyle = ACCENT;
      ctx.lineWidth = 2;
      ctx.beginPath();
      for (let px = 0; px <= upto; px++) {
        const i = Math.min(added - 1, Math.max(0, Math.round((px / inner) * (count - 1))));
        if (px === 0) ctx.moveTo(px + 4, y(partial[i]));
        else ctx.lineTo(px + 4, y(partial[i]));
      }
      ctx.stroke();
      ctx.fillStyle = ACCENT;
      ctx.beginPath();
      ctx.arc(upto + 4, y(partial[added - 1]), 3.5, 0, Math.PI * 2);
      ctx.fill();
      const m = Math.floor((added - 1) / wo);
      const n = (added - 1) % wo;
      text.textContent = added === count
        ? `All ${counted(count, 'contribution')}: Σ = ${formatNumber(acc, 6)}, the API's ∂L/∂W = ${formatNumber(total, 6)}${Math.abs(acc - total) > 1e-9 * Math.max(1, Math.abs(total)) ? ' (equal up to float32 rounding)' : ''}.`
        : `After ${formatInt(added)} of ${counted(count, 'position')} (up to output (${m}, ${n})): ${formatNumber(partial[added - 1], 6)}; ${formatInt(count - added)} still to add.`;
    };
    slider.addEventListener('input', draw);
    draw();
  }

  /** What the loss is and what each position contributes, in words. */
  introText(result, loss, unitRC, pinned) {
    const act = result.layer.activation;
    const sigma = act === 'none' ? '' : ` · σ′(z) (${act})`;
    if (loss === 'sum') {
      return `Loss L = Σ y, the sum of the feature map, so ∂L/∂y = 1 at every position${act === 'none' ? '' : ' and ∂L/∂z = σ′(z)'}. Each output position contributes 1${sigma} · x, the pixel the picked weight reads there; backpropagation adds them all up.`;
    }
    if (loss === 'unit') {
      return `Loss L = y[${unitRC[0]}, ${unitRC[1]}], one output unit (${pinned ? 'the pinned one' : 'the centre: pin a unit to choose'}), so only that position contributes: its window's pixel${sigma}. Every other position gives 0.`;
    }
    return `Loss L = mean over positions of (y − t)², where t is the output of a hidden ${this.target.value} kernel on the same image. Position (m, n) contributes (2/M)(y − t)${sigma} · x: positions where the map is already right add nothing.`;
  }

  /** Say when two kernels get one identical gradient, and why the maths makes it so. */
  sameGradient(result, data, loss, weight) {
    const g = data.grad_w;
    const J = g.length;
    const same = [];
    const flat = g.map((k) => k.flat(2));
    for (let a = 0; a < J; a++) {
      for (let b = a + 1; b < J; b++) {
        if (flat[a].every((x, i) => Math.abs(x - flat[b][i]) <= 1e-6 * Math.max(1, Math.abs(x)))) same.push([a, b]);
      }
    }
    let text = '';
    if (loss === 'unit' && J > 1) text = `Only kernel ${weight[0]} gets a gradient: the unit belongs to its map, so the other kernels' weights do not change L and their gradient is 0.`;
    else if (same.length && loss === 'sum' && result.layer.activation === 'none') {
      text = `Every kernel gets the same gradient here, and that is the maths: with L = Σ y and no σ, ∂L/∂y = 1 everywhere, so ∂L/∂W_j[c, u, v] = Σ x over the pixels the tap reads, which does not depend on the kernel's weights. Choose the mse loss, one unit, or an activation to see the kernels differ.`;
    } else if (same.length) {
      text = `Kernels ${same.map((p) => p.join(' and ')).join(', ')} get the same gradient: they have the same weights${loss === 'mse' ? ' and the same target' : ''}, so the maths gives them the same update.`;
    }
    this.same.textContent = text;
    this.same.hidden = !text;
  }

  async render(app) {
    this.app = app;
    const { result } = app;
    const weight = this.selectedWeight(app);
    clear(this.select);
    result.maps.forEach((fmap, j) => this.select.append(el('option', { value: String(j), selected: j === weight[0], text: `${j} · ${fmap.name}` })));
    clear(this.grid);
    this.grid.append(kernelTable(result.maps[weight[0]].weights[0], null, { selected: [weight[2], weight[3]] }),
      el('p', { className: 'muted', text: 'Click a weight (channel 0).' }));
    const loss = ['sum', 'mse', 'unit'].includes(app.state.loss) ? app.state.loss : 'mse';
    this.loss.value = loss;
    this.target.value = app.state.target || 'gaussian';
    this.root.querySelector('#grad-target-row').hidden = loss !== 'mse';
    const pinned = app.pinned ? app.pinned() : null;
    const unitRC = pinned || result.output_shape.slice(1).map((n) => Math.floor(n / 2));
    const extra = { weight: weight.join(','), loss, target_kernels: null, row: null, col: null };
    if (loss === 'mse') extra.target_kernels = result.maps.map(() => this.target.value).join(',');
    if (loss === 'unit') Object.assign(extra, { row: String(unitRC[0]), col: String(unitRC[1]) });
    this.intro.textContent = this.introText(result, loss, unitRC, Boolean(pinned));
    const [, ho, wo] = result.output_shape;
    const small = ho * wo <= valuesLimit();
    let data;
    let listed = null;
    try {
      [data, listed] = await this.channel.run(async (signal) => {
        const json = await app.callApi('/api/gradient', { ...extra, values: small ? 'true' : 'false' }, signal);
        return [json, small ? null : await this.fetchContributions(app, extra, signal)];
      });
    } catch (err) {
      if (!(err instanceof Stale)) {
        clear(this.map);
        this.map.append(el('p', { className: 'field-error', text: err.message.replace(/`/g, '') }));
      }
      return;
    }
    this.sameGradient(result, data, loss, weight);
    this.step.prepare({ app, data, extra, weight });
    clear(this.map);
    const img = el('img', { className: 'pixelated grad-img', src: data.contributions.png, alt: `contributions of weight (${weight.join(', ')}) at each output position` });
    const room = Math.max(160, Math.min(420, this.map.clientWidth || 320));
    const fits = wo <= room;
    const scale = fits ? Math.max(1, Math.min(16, Math.floor(room / Math.max(wo, ho / 1.25)))) : 1;
    img.style.width = `${wo * scale}px`;
    img.style.height = `${ho * scale}px`;
    img.style.maxWidth = 'none';
    this.marker = el('div', { className: 'unit-marker pinned', hidden: true });
    this.img = img;
    this.scale = scale;
    this.values = data.contributions.values ? data.contributions.values.flat() : listed ? listed.values : null;
    this.outHW = [ho, wo];
    const box = el('div', { className: `fmap-box${fits ? '' : ' scrolls'}` }, el('div', { className: 'fmap-wrap' }, img, this.marker));
    if (!fits) {
      box.style.width = `${room}px`;
      box.style.height = `${Math.min(ho, 320)}px`;
    }
    this.box = box;
    this.map.append(box,
      el('p', { className: 'muted small', text: fits ? `${ho}×${wo} positions, shown ×${scale}` : `${ho}×${wo} positions, shown 1:1 (scroll to pan)` }),
      colourBar(data.contributions.min, data.contributions.max, result.layer.activation === 'none' ? '∂L/∂y · x' : '∂L/∂y · σ′(z) · x'),
      el('p', { className: 'muted grad-unit' }));
    this.mark(app.pinned ? app.pinned() : null);
    const n = ho * wo;
    const name = `∂L/∂W${subscript(weight[0])}[${weight[1]}, ${weight[2]}, ${weight[3]}]`;
    this.sum.dataset.loss = String(data.value);
    this.sum.textContent = `${name} = ${formatNumber(data.grad_w_at_weight, 6)}`;
    this.sum.dataset.api = String(data.grad_w_at_weight);
    if (this.values) {
      this.renderRunningSum(this.values, wo, data.grad_w_at_weight, data.contributions.values
        ? 'Values listed by /api/gradient.'
        : `The output is too large for the JSON of /api/gradient to list (over ${formatInt(valuesLimit())} positions), so the page read all ${formatInt(n)} as .npy (format=npy).`);
    }
    clear(this.untied);
    this.untied.append(
      el('div', { className: 'contrast shared' },
        el('strong', { text: 'Shared (this conv layer)' }),
        el('span', { text: `${counted(n, 'contribution')} → Σ → 1 update: W ← W − η · ${formatNumber(data.grad_w_at_weight, 4)}` })),
      el('div', { className: 'contrast untied' },
        el('strong', { text: 'Untied (locally connected)' }),
        el('span', { text: `${counted(n, 'contribution')} → ${counted(n, 'separate update')}, one per position and its own weight; nothing is summed. The contributions map would be the updates themselves.` })));
  }
}
