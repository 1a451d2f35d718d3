// The Learn tab: a hidden kernel (a preset, or drawn), Start and Stop, the stream of POST
// /api/train read line by line, a live loss curve for the shared and the untied layer, the learned
// kernel beside the hidden one, the chosen weight's per-position contributions at the current step
// (from /api/gradient), and at the end both layers on a shifted and a new image.

import { ApiError } from '../api.js';
import { layerParams } from '../state.js';
import { clear, colourBar, el, kernelTable, numberAttribute } from '../dom.js';
import { counted, formatInt, formatNumber } from '../format.js';
import { kernelDistance, readLines, reportEvery, sumChannels } from '../train.js';
import { drawCurve } from './learn-curve.js';
import { drawLossTable, drawMaps, verdict } from './learn-results.js';
import { fetchPresets, openTraining } from './learn-stream.js';

/** Fields of POST /api/train that this tab's controls set (others belong to the sidebar). */
const OWN_FIELDS = { steps: 'learn-steps', every: 'learn-steps', lr: 'learn-lr', optimizer: 'learn-optimizer',
  target_weights: 'learn-hidden', weights: 'learn-hidden', test_image: 'learn-second', untied: 'learn-untied' };
/** A learning rate that converges on a photo for each optimizer (the user may change it). */
const LR = { adam: '0.05', momentum: '0.03', sgd: '0.3' };
/** Fewest milliseconds between two contribution maps while training runs. */
const MAP_EVERY_MS = 300;
const DRAWN = 'drawn';

export class LearnView {
  /** @param {HTMLElement} root #tab-learn */
  constructor(root) {
    this.root = root;
    this.$ = (sel) => root.querySelector(sel);
    this.app = null;
    this.size = null; // [kh, kw] of the presets loaded
    this.presets = new Map(); // name -> kh x kw weights
    this.hidden = null; // the hidden kernel, kh x kw
    this.controller = null; // the running stream's AbortController
    this.run = null; // what the running (or last) stream has sent
    this.weight = [0, 0]; // (u, v) of the weight whose contributions are shown
    this.mapBusy = false;
    this.mapWanted = null;
    this.mapAt = 0;
    this.lrEdited = false;
    this.painting = false;
    this.wire();
  }

  wire() {
    this.$('#learn-start').addEventListener('click', () => this.start());
    this.$('#learn-stop').addEventListener('click', () => this.stop());
    this.$('#learn-hidden').addEventListener('change', (e) => this.choose(e.target.value));
    this.$('#learn-lr').addEventListener('input', () => { this.lrEdited = true; });
    this.$('#learn-optimizer').addEventListener('change', (e) => {
      if (!this.lrEdited) this.$('#learn-lr').value = LR[e.target.value];
    });
    const paint = this.$('#learn-draw');
    paint.addEventListener('pointerdown', (e) => { this.painting = true; this.paint(e); });
    paint.addEventListener('pointerover', (e) => { if (this.painting) this.paint(e); });
    paint.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); this.paint(e); } });
    window.addEventListener('pointerup', () => { this.painting = false; });
    const learned = this.$('#learn-learned-grid');
    learned.addEventListener('click', (e) => this.pickWeight(e));
    learned.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); this.pickWeight(e); } });
  }

  running() {
    return this.controller !== null;
  }

  /** Called whenever the page has a new answer for the layer: keep the hidden kernel at its size. */
  async render(app) {
    this.app = app;
    const size = app.result.layer.kernel_size;
    if (this.running() || (this.size && size[0] === this.size[0] && size[1] === this.size[1])) return;
    this.size = [...size];
    try {
      await this.loadPresets(size);
    } catch (err) {
      this.say(err.message);
      return;
    }
    const keep = this.$('#learn-hidden').value;
    this.choose(this.presets.has(keep) ? keep : this.presets.has('sobel_x') ? 'sobel_x' : [...this.presets.keys()][0]);
    this.weight = [Math.floor(size[0] / 2), Math.min(size[1] - 1, Math.floor(size[1] / 2) + 1)];
  }

  async loadPresets(size) {
    const presets = await fetchPresets(size);
    this.presets = new Map(presets.filter((p) => p.weights).map((p) => [p.name, p.weights]));
    const select = this.$('#learn-hidden');
    clear(select);
    for (const name of this.presets.keys()) select.append(el('option', { value: name, text: name }));
    select.append(el('option', { value: DRAWN, text: 'your drawing' }));
  }

  /** Show preset `name` (or the drawing) as the hidden kernel. */
  choose(name) {
    const [kh, kw] = this.size;
    if (name !== DRAWN) this.hidden = this.presets.get(name).map((row) => [...row]);
    else if (!this.hidden || this.hidden.length !== kh) this.hidden = Array.from({ length: kh }, () => Array(kw).fill(0));
    this.$('#learn-hidden').value = name;
    this.drawHidden();
  }

  drawHidden() {
    const grid = this.$('#learn-draw');
    clear(grid);
    grid.append(kernelTable(this.hidden));
    const live = this.$('#learn-hidden-grid');
    clear(live);
    live.append(kernelTable(this.hidden));
  }

  /** Paint the cell under the pointer with the brush; the kernel becomes "your drawing". */
  paint(e) {
    if (this.running()) return;
    const td = e.target.closest('td');
    if (!td) return;
    e.preventDefault();
    const value = Number(this.$('#learn-brush').value);
    const u = Number(td.dataset.u);
    const v = Number(td.dataset.v);
    if (this.hidden[u][v] === value && this.$('#learn-hidden').value === DRAWN) return;
    this.hidden[u][v] = value;
    this.$('#learn-hidden').value = DRAWN;
    this.drawHidden();
  }

  pickWeight(e) {
    const td = e.target.closest('td');
    if (!td) return;
    this.weight = [Number(td.dataset.u), Number(td.dataset.v)];
    if (this.run && this.run.last) {
      this.drawLearned(this.run.last);
      this.mapAt = 0;
      this.wantMap(this.run.last);
    }
  }

  say(text, error = false) {
    this.$('#learn-status').textContent = error ? '' : text;
    this.$('#learn-message').textContent = error ? text : '';
  }

  /** The form fields of the training request. */
  body(steps) {
    const state = this.app.state;
    const body = layerParams(state);
    body.set('image_id', state.image_id);
    body.delete('kernels');
    const hidden = JSON.stringify([this.hidden]);
    body.set('weights', hidden); // the learned layer's shape: one kernel of kh x kw
    body.set('target_weights', hidden);
    body.set('bias', '0');
    body.set('groups', '1');
    body.set('learn_bias', 'false'); // so /api/gradient at the same weights gives the same gradient
    body.set('optimizer', this.$('#learn-optimizer').value);
    body.set('lr', this.$('#learn-lr').value);
    body.set('steps', String(steps));
    body.set('every', String(reportEvery(steps, numberAttribute(this.root, 'maxReports'))));
    body.set('untied', String(this.$('#learn-untied').checked));
    body.set('test_image', this.$('#learn-second').value);
    body.set('maps', 'true');
    return body;
  }

  async start() {
    if (this.running() || !this.app || !this.app.result) return;
    const steps = Math.round(Number(this.$('#learn-steps').value));
    for (const id of Object.values(OWN_FIELDS)) this.$(`#${id}`).removeAttribute('aria-invalid');
    this.controller = new AbortController();
    const untied = this.$('#learn-untied').checked;
    this.run = { steps, shared: [], untied: [], last: null, hidden: this.hidden.map((r) => [...r]), untiedOn: untied, t0: performance.now() };
    this.setRunning(true);
    this.$('#learn-result').hidden = true;
    this.root.querySelector('.learn-live').hidden = false;
    const progress = this.$('#learn-progress');
    progress.max = Math.max(1, steps);
    progress.value = 0;
    clear(this.$('#learn-map'));
    this.$('#learn-sum').textContent = '';
    this.$('#learn-sum-note').textContent = '';
    drawCurve(this.$('#learn-curve'), this.run);
    this.say('Starting…');
    try {
      const res = await openTraining(() => this.body(steps), (...args) => this.app.callApi(...args), this.controller.signal);
      await readLines(res, (line) => this.onLine(line));
      if (this.root.dataset.state === 'running') this.root.dataset.state = 'stopped';
    } catch (err) {
      if (err && err.name === 'AbortError') {
        this.root.dataset.state = 'stopped';
        this.say(`Stopped at step ${formatInt(this.run.last ? this.run.last.step : 0)} of ${formatInt(steps)}. Press Start to train again from a new random start.`);
      } else {
        this.root.dataset.state = 'error';
        this.showError(err);
      }
    } finally {
      this.controller = null;
      this.setRunning(false);
    }
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  setRunning(on) {
    this.$('#learn-start').disabled = on;
    this.$('#learn-stop').disabled = !on;
    for (const id of ['learn-hidden', 'learn-optimizer', 'learn-lr', 'learn-steps', 'learn-second', 'learn-untied', 'learn-brush']) this.$(`#${id}`).disabled = on;
    this.$('#learn-draw').classList.toggle('locked', on);
    if (on) this.root.dataset.state = 'running';
  }

  showError(err) {
    const field = err instanceof ApiError ? err.field : null;
    const text = String(err.message || err).replace(/`/g, '');
    if (field && OWN_FIELDS[field]) this.$(`#${OWN_FIELDS[field]}`).setAttribute('aria-invalid', 'true');
    else if (field && err instanceof ApiError) this.app.showError(err); // a sidebar field
    this.say(text, true);
  }

  /** One line of the stream: a report, the last line, or an error that ends it. */
  onLine(line) {
    const run = this.run;
    if (line.error) {
      this.root.dataset.state = 'error';
      this.showError(new ApiError(line.status, line.detail, line.field));
      return;
    }
    if (line.done) {
      this.finish(line);
      return;
    }
    run.last = line;
    run.shared.push([line.step, line.loss]);
    if (line.untied_loss !== undefined) run.untied.push([line.step, line.untied_loss]);
    const progress = this.$('#learn-progress');
    progress.value = line.step;
    this.root.dataset.step = String(line.step);
    const seconds = (performance.now() - run.t0) / 1000;
    this.say(`Step ${formatInt(line.step)} of ${formatInt(run.steps)} · loss ${formatNumber(line.loss, 3)}`
      + (line.untied_loss !== undefined ? ` · untied ${formatNumber(line.untied_loss, 3)}` : '') + ` · ${seconds.toFixed(1)} s`);
    drawCurve(this.$('#learn-curve'), this.run);
    this.drawLearned(line);
    this.wantMap(line);
  }

  /** The learned kernel (channels added up) beside the hidden one, and how far apart they are. */
  drawLearned(line) {
    const learned = sumChannels(line.weights)[0];
    const grid = this.$('#learn-learned-grid');
    clear(grid);
    const hidden = this.run.hidden;
    grid.append(kernelTable(learned, (u, v) => `Δ ${formatNumber(learned[u][v] - hidden[u][v], 2)}`, { selected: this.weight }));
    const d = kernelDistance(learned, hidden);
    this.$('#learn-step-label').textContent = `after ${counted(line.step, 'step')}`;
    const channels = line.weights[0].length;
    const distance = this.$('#learn-distance');
    distance.textContent = `Largest difference from the hidden kernel: ${formatNumber(d.max, 3)} (${formatNumber(100 * d.relative, 2)}% of its largest weight)${channels > 1 ? `; each cell adds the ${channels} channels` : ''}.`;
    distance.dataset.relative = String(d.relative);
  }

  /** Ask for the contribution map at this report's weights, at most one request at a time. */
  wantMap(line) {
    this.mapWanted = line;
    if (!this.mapBusy) this.fetchMaps();
  }

  async fetchMaps() {
    this.mapBusy = true;
    try {
      while (this.mapWanted) {
        const wait = this.mapAt + MAP_EVERY_MS - performance.now();
        if (wait > 0 && this.running()) await new Promise((resolve) => window.setTimeout(resolve, wait));
        const line = this.mapWanted;
        this.mapWanted = null;
        this.mapAt = performance.now();
        await this.showMap(line);
      }
    } finally {
      this.mapBusy = false;
    }
  }

  async showMap(line) {
    const [u, v] = this.weight;
    const hidden = JSON.stringify([this.run.hidden]);
    let data;
    try {
      data = await this.app.callApi('/api/gradient', {
        kernels: null, weights: JSON.stringify(line.weights), bias: '0', groups: '1', loss: 'mse',
        target_weights: hidden, target_kernels: null, weight: `0,0,${u},${v}`, values: 'false', format: null,
      });
    } catch (err) {
      this.$('#learn-sum-note').textContent = `The contributions could not be fetched: ${err.message}`;
      return;
    }
    const box = this.$('#learn-map');
    clear(box);
    const [ho, wo] = data.contributions.shape;
    const room = Math.max(160, Math.min(360, box.clientWidth || 320));
    const scale = wo <= room ? Math.max(1, Math.floor(room / wo)) : room / wo;
    const img = el('img', { className: 'pixelated', src: data.contributions.png, alt: `contributions to weight (${u}, ${v}) at every output position`, width: Math.round(wo * scale), height: Math.round(ho * scale) });
    box.append(img, colourBar(data.contributions.min, data.contributions.max, '∂L/∂y · x'));
    const streamed = line.grad[0][0][u][v];
    this.$('#learn-weight-label').textContent = `W[${u}, ${v}] at step ${formatInt(line.step)}`;
    const sum = this.$('#learn-sum');
    sum.textContent = `Σ of ${counted(data.positions, 'contribution')} = ${formatNumber(data.contributions.sum, 4)}`;
    sum.dataset.sum = String(data.contributions.sum);
    sum.dataset.grad = String(streamed);
    this.$('#learn-sum-note').textContent = `= ∂L/∂W[${u}, ${v}] of the training stream at this step, ${formatNumber(streamed, 4)}: the one gradient the ${this.$('#learn-optimizer').selectedOptions[0].text} update of this shared weight is made from.`
      + (this.run.untiedOn ? ` The untied layer has ${formatInt(data.positions)} copies of this weight; each gets one of these contributions as its whole gradient.` : '')
      + (line.weights[0].length > 1 ? ' (Channel 0.)' : '');
  }

  /** The last line: the numbers and maps of both layers on the images they never saw. */
  finish(done) {
    this.root.dataset.state = 'done';
    const run = this.run;
    const seconds = done.seconds;
    const d = kernelDistance(sumChannels(done.weights)[0], run.hidden);
    this.say(`Done: ${formatInt(done.steps)} steps in ${formatNumber(seconds, 2)} s. The learned kernel is within ${formatNumber(100 * d.relative, 2)}% of the hidden one.`
      + (d.relative > 0.05 ? ' On a smooth photo many kernels give nearly the same output, so the loss falls long before the kernel matches: more steps pin it down.' : ''));
    this.root.dataset.relative = String(d.relative);
    this.$('#learn-progress').value = done.steps;
    this.$('#learn-result').hidden = false;
    const second = this.$('#learn-second').selectedOptions[0].text;
    drawLossTable(this.$('#learn-table'), done, second);
    this.$('#learn-verdict').textContent = verdict(done);
    drawMaps(this.$('#learn-maps'), done.maps || [], second, done.shift);
  }
}
