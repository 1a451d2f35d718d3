// One step of gradient descent on the Gradients tab: w ← w − η·g for every shared weight, the new
// kernel and map (the layer computed again with the new weights), and the loss before and after;
// beside it, the untied layer, whose M copies of a weight each take their own step. DOM only:
// the page's API does the computing.

import { Stale } from '../api.js';
import { clear, el, kernelTable } from '../dom.js';
import { counted, formatInt, formatNumber } from '../format.js';

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
    // One /api/gradient call with lr takes both steps on the server: the shared layer's, and the
    // untied layer's M separate ones, and answers the three losses; /api/convolve draws the new map.
    let conv;
    let grad;
    try {
      [conv, grad] = await Promise.all([
        app.callApi('/api/convolve', { weights: JSON.stringify(after), kernels: null }),
        app.callApi('/api/gradient', { ...extra, values: 'false', lr: String(lr) }),
      ]);
    } catch (e) {
      if (!(e instanceof Stale)) err.textContent = e.message.replace(/`/g, '');
      return;
    }
    const step = grad.step;
    this.next = after;
    this.use.hidden = false;
    const lower = step.shared_loss_after < step.loss_before;
    clear(this.out);
    Object.assign(this.out.dataset, {
      before: String(step.loss_before),
      after: String(step.shared_loss_after),
      untiedAfter: String(step.untied_loss_after),
    });
    const map = conv.maps[j];
    const img = el('img', { className: 'grad-img', src: map.png, alt: `map ${j} after the step` });
    const [, ho, wo] = conv.output_shape;
    const side = Math.min(220, Math.max(ho, wo));
    img.style.width = `${Math.round((wo / Math.max(ho, wo)) * side)}px`;
    img.style.height = `${Math.round((ho / Math.max(ho, wo)) * side)}px`;
    img.classList.toggle('pixelated', side >= Math.max(ho, wo));
    const n = data.positions;
    const loss = (x) => formatNumber(x, 6);
    this.out.append(
      el('div', { className: 'step-cols' },
        el('div', {}, el('h4', { text: `Kernel ${j}, channel 0: before` }), kernelTable(before[j][0], null, { selected: [weight[2], weight[3]] })),
        el('div', {}, el('h4', { text: 'after one step' }), kernelTable(after[j][0], null, { selected: [weight[2], weight[3]] })),
        el('div', {}, el('h4', { text: `Map ${j} after` }), img)),
      el('p', { className: `step-loss ${lower ? 'down' : 'up'}`, id: 'grad-step-loss' },
        `Loss before ${loss(step.loss_before)} → after ${loss(step.shared_loss_after)}: `,
        lower ? 'lower, as a step against the gradient should be.' : 'not lower: the step η was too large; try a smaller one.'),
      el('div', { className: 'step-contrast' },
        el('div', { className: 'contrast shared' },
          el('strong', { text: 'Shared: one step per weight' }),
          el('span', { className: 'step-numbers', text: `L ${loss(step.loss_before)} → ${loss(step.shared_loss_after)}` }),
          el('span', { text: `W${j}[${weight[1]}, ${weight[2]}, ${weight[3]}] moved once, by −η · Σ = −${formatNumber(lr, 3)} · ${formatNumber(data.grad_w_at_weight, 4)} = ${formatNumber(-lr * data.grad_w_at_weight, 4)}: the ${counted(n, 'contribution')} were added first.` })),
        el('div', { className: 'contrast untied', id: 'grad-step-untied' },
          el('strong', { text: `Untied: ${counted(n, 'separate step')}` }),
          el('span', { className: 'step-numbers', text: `L ${loss(step.loss_before)} → ${loss(step.untied_loss_after)}` }),
          el('span', { text: `A locally connected layer has its own copy of this weight at each of the ${counted(n, 'position')}; each copy moves by −η × its own contribution (the map above, times −${formatNumber(lr, 3)}), from ${formatNumber(-lr * data.contributions.max, 3)} to ${formatNumber(-lr * data.contributions.min, 3)}. Nothing is summed, and no copy learns from the other positions.` }))),
      el('p', { className: 'step-compare', id: 'grad-step-compare', text: compareSteps(step, n, extra.loss) }),
    );
  }
}

/**
 * The two steps compared in this layer's own numbers.
 * @param {{loss_before: number, shared_loss_after: number, untied_loss_after: number}} step
 * @param {number} n positions M
 * @param {string|null} loss sum | mse | unit
 * @returns {string}
 */
export function compareSteps(step, n, loss) {
  const shared = step.loss_before - step.shared_loss_after;
  const untied = step.loss_before - step.untied_loss_after;
  const f = (x) => formatNumber(x, 4);
  const scale = Math.max(Math.abs(shared), Math.abs(untied), 1e-30);
  if (Math.abs(shared - untied) <= 1e-6 * scale + 1e-12) {
    const why = n === 1 ? 'the layer has one output position' : loss === 'unit' ? 'the loss is one unit, so only its position contributes' : 'only one position contributes';
    return `Both layers lower L by the same ${f(shared)}: ${why}, so the sum has one term and the shared step is the untied one.`;
  }
  if (shared <= 0 || untied <= 0) {
    const who = shared <= 0 && untied <= 0 ? 'Both losses rose' : shared <= 0 ? 'The shared loss rose' : 'The untied loss rose';
    return `${who} (shared ${f(-shared)}, untied ${f(-untied)} higher): with η = ${step.lr} the step overshoots; a smaller η lowers both.`;
  }
  if (shared > untied) {
    return `The shared step lowered L by ${f(shared)}, ${formatNumber(shared / untied, 3)}× the untied layer's ${f(untied)}: each shared weight moved by the sum of all ${counted(n, 'contribution')}, while each untied copy moved by its own one alone, on average 1/${formatInt(n)} of that sum.`;
  }
  return `The untied layer's ${counted(n, 'separate step')} lowered L by ${f(untied)}, ${formatNumber(untied / shared, 3)}× the shared step's ${f(shared)}: each copy fits its own position's window, with ${formatNumber(n, 3)}× the parameters; that fit is to this image only (the Learn tab shifts it).`;
}
