// One step of gradient descent on the Gradients tab: w ← w − η·g for every shared weight, the new
// kernel and map (the layer computed again with the new weights), and the loss before and after;
// beside it, the untied layer, whose M copies of a weight each take their own step. DOM only:
// the page's API does the computing.

import { Stale } from '../api.js';
import { clear, el, kernelTable } from '../dom.js';
import { counted, formatNumber } from '../format.js';

/**
 * w − η·g, element by element, for nested arrays of one shape.
 * @param {any} w
 * @param {any} g
 * @param {number} lr
 * @returns {any}
 */
export function stepWeights(w, g, lr) {
  return Array.isArray(w) ? w.map((x, i) => stepWeights(x, g[i], lr)) : w - lr * g;
}

/** A learning rate whose step moves the largest weight by about 5 % of the largest weight. */
export function suggestedRate(weights, grad) {
  const wMax = Math.max(1e-6, ...weights.flat(3).map(Math.abs));
  const gMax = Math.max(1e-12, ...grad.flat(3).map(Math.abs));
  const lr = (0.05 * wMax) / gMax;
  return Number(lr.toPrecision(1));
}

export class GradStep {
  /** @param {HTMLElement} root #tab-gradients */
  constructor(root) {
    this.root = root;
    this.lr = root.querySelector('#grad-lr');
    this.out = root.querySelector('#grad-step');
    this.use = root.querySelector('#grad-use');
    this.ctx = null;
    this.next = null;
    root.querySelector('#grad-apply').addEventListener('click', () => this.apply());
    this.use.addEventListener('click', () => {
      if (!this.next || !this.ctx) return;
      this.ctx.app.useWeights(this.next);
    });
  }

  /**
   * The gradient the step will use.
   * @param {{app: any, data: any, extra: Record<string, string|null>, weight: number[]}} ctx
   */
  prepare(ctx) {
    this.ctx = ctx;
    this.next = null;
    this.use.hidden = true;
    clear(this.out);
    const weights = ctx.app.result.maps.map((m) => m.weights);
    const st = ctx.app.state.lr;
    this.lr.value = st || String(suggestedRate(weights, ctx.data.grad_w));
    this.out.append(el('p', { className: 'muted', text: `Loss now: L = ${formatNumber(ctx.data.value, 6)}. Press "Apply one step" to move every shared weight against its gradient and see the loss after.` }));
  }

  async apply() {
    const ctx = this.ctx;
    if (!ctx) return;
    const lr = Number(this.lr.value);
    const err = this.root.querySelector('#error-lr');
    if (!this.lr.value.trim() || !Number.isFinite(lr) || lr <= 0) {
      err.textContent = 'The learning rate must be a positive number, such as 0.01.';
      return;
    }
    err.textContent = '';
    ctx.app.setState({ lr: this.lr.value.trim() });
    const { app, data, extra, weight } = ctx;
    const j = weight[0];
    const before = app.result.maps.map((m) => m.weights);
    const after = stepWeights(before, data.grad_w, lr);
    const fields = { weights: JSON.stringify(after), kernels: null };
    let conv;
    let grad;
    try {
      [conv, grad] = await Promise.all([
        app.callApi('/api/convolve', fields),
        app.callApi('/api/gradient', { ...extra, ...fields, values: 'false' }),
      ]);
    } catch (e) {
      if (!(e instanceof Stale)) err.textContent = e.message.replace(/`/g, '');
      return;
    }
    this.next = after;
    this.use.hidden = false;
    const lower = grad.value < data.value;
    clear(this.out);
    this.out.dataset.before = String(data.value);
    this.out.dataset.after = String(grad.value);
    const map = conv.maps[j];
    const img = el('img', { className: 'grad-img', src: map.png, alt: `map ${j} after the step` });
    const [, ho, wo] = conv.output_shape;
    const side = Math.min(220, Math.max(ho, wo));
    img.style.width = `${Math.round((wo / Math.max(ho, wo)) * side)}px`;
    img.style.height = `${Math.round((ho / Math.max(ho, wo)) * side)}px`;
    img.classList.toggle('pixelated', side >= Math.max(ho, wo));
    const n = data.positions;
    this.out.append(
      el('div', { className: 'step-cols' },
        el('div', {}, el('h4', { text: `Kernel ${j}, channel 0: before` }), kernelTable(before[j][0], null, { selected: [weight[2], weight[3]] })),
        el('div', {}, el('h4', { text: 'after one step' }), kernelTable(after[j][0], null, { selected: [weight[2], weight[3]] })),
        el('div', {}, el('h4', { text: `Map ${j} after` }), img)),
      el('p', { className: `step-loss ${lower ? 'down' : 'up'}`, id: 'grad-step-loss' },
        `Loss before ${formatNumber(data.value, 6)} → after ${formatNumber(grad.value, 6)}: `,
        lower ? 'lower, as a step against the gradient should be.' : 'not lower: the step η was too large; try a smaller one.'),
      el('div', { className: 'contrast shared' },
        el('strong', { text: 'Shared: one step per weight' }),
        el('span', { text: `W${j}[${weight[1]}, ${weight[2]}, ${weight[3]}] moved once, by −η · Σ = −${formatNumber(lr, 3)} · ${formatNumber(data.grad_w_at_weight, 4)} = ${formatNumber(-lr * data.grad_w_at_weight, 4)}: the ${counted(n, 'contribution')} were added first.` })),
      el('div', { className: 'contrast untied' },
        el('strong', { text: `Untied: ${counted(n, 'separate step')}` }),
        el('span', { text: `A locally connected layer has its own copy of this weight at each of the ${counted(n, 'position')}; each copy moves by −η × its own contribution (the map above, times −${formatNumber(lr, 3)}), from ${formatNumber(-lr * data.contributions.max, 3)} to ${formatNumber(-lr * data.contributions.min, 3)}. Nothing is summed, and no copy learns from the other positions.` })),
    );
  }
}
