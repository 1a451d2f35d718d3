// The kernel editor in the controls: the list of presets (views/kernels.js draws it) and your own
// weights, kept in the hidden `weights` field as the API's J×kh×kw (or J×C×kh×kw) JSON. Adding,
// removing or swapping a kernel keeps your other kernels' exact weights.

import { ApiError } from './api.js';
import { KernelList } from './views/kernels.js';

const $ = (sel) => document.querySelector(sel);

/**
 * Each kernel's weights as J×kh×kw, in the sense of the API's `weights` (summed over channels).
 * @param {any} result a /api/convolve answer
 * @returns {number[][][]}
 */
function planesOf(result) {
  return result.maps.map((fmap) => fmap.weights[0].map((row, u) => row.map((_, v) => fmap.weights.reduce((acc, plane) => acc + plane[u][v], 0))));
}

/** A kh×kw plane as C×kh×kw weights acting on the mean of the channels (as the API spreads it). */
function spread(plane, c) {
  return Array.from({ length: c }, () => plane.map((row) => row.map((x) => x / c)));
}

/** A plane shaped like the entries of `weights` (J×kh×kw, or J×C×kh×kw spread over C). */
function likeEntries(weights, plane) {
  if (!weights.length || !Array.isArray(weights[0][0][0])) return plane;
  return spread(plane, weights[0].length);
}

export class KernelEditor {
  /**
   * @param {{state: any, result: any}} app the live page state and the last /api/convolve answer
   * @param {() => void} onChange the layer changed: compute it again
   */
  constructor(app, onChange) {
    this.app = app;
    this.onChange = onChange;
    this.weightsField = $('#weights');
    this.presetCache = new Map();
    this.list = new KernelList($('#kernel-list'), {
      presets: [...$('#kernel-add').options].map((o) => o.value).filter(Boolean),
      onChange: (change) => this.change(change),
    });
    $('#kernel-add').addEventListener('change', (e) => {
      const name = e.target.value;
      e.target.value = '';
      if (name) this.change({ kind: 'add', index: -1, name });
    });
    $('#weights-reset').addEventListener('click', () => {
      this.weightsField.value = '';
      this.edited = [];
      this.list.render(this.names(), this.seed(), []);
      this.onChange();
    });
    this.edited = []; // per kernel: its weights differ from its preset's
    $('#weights-mean').addEventListener('change', (e) => {
      this.app.setState({ mode: e.target.checked ? 'mean' : '' }, true);
      if (this.app.result) this.update(this.app.result);
    });
  }

  /** In RGB, whether the grids show one kernel per channel (else one on the mean of R, G, B). */
  perChannel() {
    return this.app.state.color === 'rgb' && this.app.state.mode !== 'mean';
  }

  /** The kernel names in the list, in order. */
  names() {
    return [...document.querySelectorAll('#kernel-list select[name="kernels"]')].map((s) => s.value).filter(Boolean);
  }

  seed() {
    return Number(this.app.state.seed) || 0;
  }

  /** Put a state's kernels and weights into the controls. */
  show(state) {
    const names = state.kernels.split(',').map((n) => n.trim()).filter(Boolean);
    this.list.render(names, Number(state.seed) || 0, state.weights ? this.edited : []);
    this.weightsField.value = state.weights;
    this.updateCount();
  }

  /** Drop your own weights (a new kernel size means the presets at that size). */
  clearWeights() {
    this.weightsField.value = '';
  }

  updateCount() {
    $('#kernels-count').textContent = `${this.names().length} of ${this.list.max}`;
  }

  message(text) {
    $('#error-kernels').textContent = text;
  }

  /** The user's own weights (the hidden field) as a nested list, or null. */
  ownWeights() {
    const text = this.weightsField.value;
    if (!text) return null;
    try {
      const weights = JSON.parse(text);
      return Array.isArray(weights) ? weights : null;
    } catch {
      return null;
    }
  }

  /** True when a kernel in the list is a preset defined for odd sizes only (sobel, laplacian, ...). */
  oddSizesOnly() {
    if (this.ownWeights()) return false;
    const odd = new Set([...$('#kernel-add').options].filter((o) => o.dataset.odd).map((o) => o.value));
    return this.names().some((name) => odd.has(name));
  }

  /**
   * One preset's kh×kw weights at the layer's kernel size (for adding a kernel to your own weights).
   * @param {string} name
   * @param {number} seed
   * @returns {Promise<number[][]>}
   */
  async presetPlane(name, seed) {
    const { result, state } = this.app;
    const size = result ? result.layer.kernel_size.join(',') : state.kernel_size;
    const key = `${size}|${seed}`;
    if (!this.presetCache.has(key)) {
      const res = await fetch(`/api/presets?size=${encodeURIComponent(size)}&seed=${seed}`);
      if (!res.ok) throw new ApiError(res.status, 'the presets could not be loaded', 'kernels');
      this.presetCache.set(key, await res.json());
    }
    const preset = this.presetCache.get(key).presets.find((q) => q.name === name);
    if (!preset || !preset.weights) throw new ApiError(422, `${name} has no ${size.replace(',', '×')} version`, 'kernels');
    return preset.weights;
  }

  /**
   * Which kernels of your own weights differ from the preset they started as (the k-th kernel of
   * the list is its preset at seed + k, as the API builds them). True where unsure.
   * @returns {Promise<boolean[]>}
   */
  async editedKernels(names, seed) {
    const own = this.ownWeights() || [];
    return Promise.all(names.map(async (name, k) => {
      const mine = own[k];
      if (!mine || !Array.isArray(mine[0])) return true;
      const differs = (plane, ref, f) => plane.some((row, u) => row.some((x, v) => Math.abs(x - ref[u][v] * f) > 1e-6 * Math.max(1, Math.abs(ref[u][v]))));
      try {
        const ref = await this.presetPlane(name, seed + k);
        // J×kh×kw, or J×C×kh×kw where the preset acts on the mean of the C channels.
        if (!Array.isArray(mine[0][0])) return differs(mine, ref, 1);
        return mine.some((plane) => differs(plane, ref, 1 / mine.length));
      } catch {
        return true;
      }
    }));
  }

  /** With your own weights, name each map whose kernel you changed "<preset> (edited)". */
  async nameEdited(result) {
    const { state } = this.app;
    if (!state.weights) {
      this.edited = [];
      return;
    }
    const names = state.kernels.split(',').filter(Boolean);
    const edited = await this.editedKernels(names, Number(state.seed) || 0);
    this.edited = edited;
    // Each map keeps its kernel's preset name; only the kernels you changed say "(edited)".
    if (names.length === result.maps.length) result.maps.forEach((fmap, j) => { fmap.name = edited[j] ? `${names[j]} (edited)` : names[j]; });
  }

  /**
   * The J×kh×kw weights the grids were filled from, exactly: your own when they are J×kh×kw, else
   * the presets (the answer's copy may be rounded to float32), else the answer's.
   * @returns {Promise<number[][][]>}
   */
  async basePlanes(own, names, seed) {
    if (own && own.every((kernel) => Array.isArray(kernel[0]) && !Array.isArray(kernel[0][0]))) return own;
    if (!own) {
      try {
        return await Promise.all(names.map((name, k) => this.presetPlane(name, seed + k)));
      } catch {
        // a preset without this size: fall back to the answer's weights
      }
    }
    return this.app.result ? planesOf(this.app.result) : [];
  }

  /**
   * The J×C×kh×kw weights the per-channel grids were filled from: your own when they are 4-D,
   * else the presets spread over the channels (as the API spreads them), else the answer's.
   * @returns {Promise<number[][][][]>}
   */
  async baseChannels(own, names, seed) {
    const c = this.app.result ? this.app.result.input_shape[0] : 3;
    if (own && own.every((kernel) => Array.isArray(kernel[0][0]))) return own;
    if (own) return own.map((plane) => spread(plane, c));
    try {
      return await Promise.all(names.map(async (name, k) => spread(await this.presetPlane(name, seed + k), c)));
    } catch {
      return this.app.result ? this.app.result.maps.map((m) => m.weights) : [];
    }
  }

  /**
   * The user changed the kernel list: add, remove, another preset, or a weight in a grid.
   * @param {{kind: string, index: number, name?: string}} change
   */
  async change(change) {
    const names = this.names();
    this.message('');
    const own = this.ownWeights();
    const seed = this.seed();
    const write = () => { this.weightsField.value = JSON.stringify(own); };
    try {
      if (change.kind === 'weights') {
        const base = this.perChannel() ? await this.baseChannels(own, names, seed) : await this.basePlanes(own, names, seed);
        this.weightsField.value = JSON.stringify(this.list.readGrids(base));
      } else if (change.kind === 'remove') {
        if (names.length <= 1) {
          this.message('A layer needs at least one kernel.');
          return;
        }
        names.splice(change.index, 1);
        if (own) { own.splice(change.index, 1); write(); }
      } else if (change.kind === 'add') {
        if (names.length >= this.list.max) {
          this.message(`A layer here holds at most ${this.list.max} kernels: remove one to add ${change.name}.`);
          return;
        }
        if (own) own.push(likeEntries(own, await this.presetPlane(change.name, seed + names.length)));
        names.push(change.name);
        if (own) write();
      } else if (change.kind === 'preset') {
        if (own) {
          own[change.index] = likeEntries(own, await this.presetPlane(change.name, seed + change.index));
          write();
        }
        names[change.index] = change.name;
      }
    } catch (err) {
      this.message(err.message);
      return;
    }
    if (change.kind !== 'weights') {
      // Kernels keep their own "edited" mark; a swapped-in preset is not edited.
      if (change.kind === 'remove') this.edited.splice(change.index, 1);
      if (change.kind === 'add') this.edited.push(false);
      if (change.kind === 'preset') this.edited[change.index] = false;
      this.list.render(names, seed, this.weightsField.value ? this.edited : []);
      this.updateCount();
    }
    this.onChange();
  }

  /** Fill the kernels' grids from the answer and say whether the presets or your weights apply. */
  update(result) {
    const { state } = this.app;
    if (!$('#kernel-list').contains(document.activeElement)) {
      this.list.render(state.kernels.split(',').filter(Boolean), Number(state.seed) || 0, state.weights ? this.edited : []);
      this.updateCount();
    }
    const perChannel = this.perChannel();
    const rgb = result.input_shape[0] > 1;
    $('#weights-mean-row').hidden = !rgb;
    $('#weights-mean').checked = rgb && !perChannel;
    this.list.fillGrids(perChannel ? result.maps.map((m) => m.weights) : planesOf(result), perChannel, rgb);
    $('#weights-mode').textContent = state.weights
      ? `Using your own ${result.layer.kernel_size.join('×')} weights. A new kernel size goes back to the presets.`
      : 'Open a kernel\'s weights to edit them; the layer then uses your numbers.';
    $('#weights-reset').hidden = !state.weights;
  }
}
