// The kernel list in the controls: up to CONVLENS_MAX_KERNELS kernels (the list's data-max),
// each a preset (the same preset may appear more than once), removable, with a grid editor for
// its weights. DOM only: the kernel editor (kernel-editor.js) owns the weights and decides what a
// change means for the layer.

import { clear, el, numberAttribute } from '../dom.js';

/** Largest kernel (kh·kw cells) that gets a grid editor; bigger ones are edited through the API. */
const MAX_GRID_CELLS = 121;

export class KernelList {
  /**
   * @param {HTMLElement} list the <ol id="kernel-list">
   * @param {{presets: string[], onChange: (change: {kind: 'add'|'remove'|'preset'|'weights', index: number, name?: string}) => void}} opts
   */
  constructor(list, opts) {
    this.list = list;
    this.presets = opts.presets;
    this.onChange = opts.onChange;
    this.max = numberAttribute(list, 'max'); // CONVLENS_MAX_KERNELS, rendered by the server
    this.open = new Set(); // indices whose grid editor is open
    list.addEventListener('change', (e) => {
      const select = e.target.closest('select[name="kernels"]');
      if (!select) return;
      e.stopPropagation();
      this.onChange({ kind: 'preset', index: Number(select.dataset.j), name: select.value });
    });
    list.addEventListener('input', (e) => {
      if (!e.target.closest('.weights-grid')) return;
      e.stopPropagation();
      this.onChange({ kind: 'weights', index: Number(e.target.dataset.j) });
    });
    list.addEventListener('click', (e) => {
      const btn = e.target.closest('button.kernel-remove');
      if (btn) this.onChange({ kind: 'remove', index: Number(btn.dataset.j) });
    });
    list.addEventListener('toggle', (e) => {
      const details = e.target;
      if (!details.matches || !details.matches('details.kernel-edit')) return;
      const j = Number(details.dataset.j);
      if (details.open) this.open.add(j);
      else this.open.delete(j);
    }, true);
  }

  /**
   * Rebuild the list for these names. Random kernels show the seed they use (seed + k).
   * @param {string[]} names
   * @param {number} seed
   * @param {boolean[]} edited per kernel, whether its weights differ from its preset's
   */
  render(names, seed, edited) {
    clear(this.list);
    names.forEach((name, j) => {
      const mine = Boolean(edited[j]);
      const options = this.presets.includes(name) ? this.presets : [name, ...this.presets];
      const select = el('select', { name: 'kernels', 'aria-label': `kernel ${j}: preset`, dataset: { j: String(j) } },
        ...options.map((p) => el('option', { value: p, selected: p === name, text: p })));
      const head = el('div', { className: 'kernel-head' },
        el('span', { className: 'kernel-index', text: String(j) }),
        select,
        name === 'random' ? el('span', { className: 'kernel-seed muted', text: `seed ${seed + j}` }) : null,
        mine ? el('span', { className: 'kernel-edited', text: 'edited' }) : null,
        el('button', {
          type: 'button', className: 'kernel-remove', dataset: { j: String(j) },
          'aria-label': `remove kernel ${j} (${name})`, title: 'remove this kernel', text: '×',
          disabled: names.length === 1,
        }));
      const details = el('details', { className: 'kernel-edit', dataset: { j: String(j) }, open: this.open.has(j) },
        el('summary', { text: 'weights' }),
        el('div', { className: 'grid-box' }));
      this.list.append(el('li', { className: 'kernel-item', dataset: { j: String(j) } }, head, details));
    });
    for (const j of [...this.open]) if (j >= names.length) this.open.delete(j);
  }

  /** Whether the user is typing in one of the grids (then a redraw would steal the focus). */
  editing() {
    return this.list.contains(document.activeElement) && Boolean(document.activeElement.closest('.weights-grid'));
  }

  /**
   * Fill each kernel's grid with its weights: one grid per kernel (kh×kw), or in RGB one per
   * channel (C×kh×kw, the real weights the layer uses).
   * @param {number[][][]|number[][][][]} planes J×kh×kw, or J×C×kh×kw when perChannel
   * @param {boolean} perChannel
   * @param {boolean} [rgb] the layer reads R, G and B
   */
  fillGrids(planes, perChannel, rgb = false) {
    if (this.editing()) return;
    this.perChannel = perChannel;
    for (const details of this.list.querySelectorAll('details.kernel-edit')) {
      const j = Number(details.dataset.j);
      const box = details.querySelector('.grid-box');
      clear(box);
      const kernel = planes[j];
      if (!kernel) continue;
      const channels = perChannel ? kernel : [kernel];
      const [kh, kw] = [channels[0].length, channels[0][0].length];
      if (kh * kw > MAX_GRID_CELLS) {
        box.append(el('p', { className: 'hint', text: `A ${kh}×${kw} kernel is too big to edit cell by cell here; send weights to the API (or a .npy file) instead.` }));
        continue;
      }
      channels.forEach((plane, c) => {
        const label = perChannel ? `channel ${'RGB'[c] || c} (c = ${c})` : rgb ? 'one grid on the mean of R, G, B (each channel gets a third)' : '';
        if (label) box.append(el('p', { className: 'grid-caption', text: label }));
        const table = el('table', { className: 'weights-grid', 'aria-label': `weights of kernel ${j}${perChannel ? `, channel ${c}` : ''}` });
        plane.forEach((row, u) => {
          table.append(el('tr', {}, ...row.map((w, v) => {
            const value = String(Number(w.toPrecision(4)));
            const input = el('input', {
              type: 'text', inputmode: 'decimal', value, title: String(w), autocomplete: 'off',
              'aria-label': `kernel ${j}${perChannel ? ` channel ${c}` : ''} weight (${u}, ${v})`,
              dataset: { j: String(j), c: String(c), u: String(u), v: String(v) },
            });
            // Wide enough for the whole number: 0.0007243 is never cut to "0.000".
            input.size = Math.max(4, value.length + 1);
            return el('td', {}, input);
          })));
        });
        box.append(table);
      });
    }
  }

  /**
   * The weights in the grids (J×kh×kw, or J×C×kh×kw per channel); kernels without a grid, and
   * cells not edited, keep the given planes.
   * @param {any[]} fallback the current weights, shaped as the grids
   * @returns {any[]}
   */
  readGrids(fallback) {
    const planes = JSON.parse(JSON.stringify(fallback));
    for (const input of this.list.querySelectorAll('.weights-grid input')) {
      // A cell you did not change keeps its exact weight (the grid shows 4 significant digits).
      if (input.value === input.defaultValue) continue;
      const { j, c, u, v } = input.dataset;
      const x = Number(input.value);
      const plane = this.perChannel ? planes[j]?.[c] : planes[j];
      if (plane && plane[u]) plane[u][v] = Number.isFinite(x) && input.value.trim() !== '' ? x : 0;
    }
    return planes;
  }
}
