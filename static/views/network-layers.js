// The Network tab's layer list: the kinds of layer and their fields, the ready-made stacks, and the
// editor that shows a stack as rows of fields (add, move, remove, pick a preset) and reads it back.

import { clear, el, numberAttribute } from '../dom.js';
import { counted } from '../format.js';

const KINDS = ['conv', 'maxpool', 'avgpool', 'relu', 'sigmoid', 'tanh', 'conv_transpose'];
export const KIND_NAMES = {
  conv: 'conv', maxpool: 'max pool', avgpool: 'avg pool', relu: 'ReLU', sigmoid: 'sigmoid', tanh: 'tanh',
  conv_transpose: 'transposed conv',
};
/** The fields the editor offers per kind (the API's names), and their labels. */
const FIELDS = {
  conv: ['kernels', 'out_channels', 'kernel_size', 'stride', 'padding', 'dilation'],
  conv_transpose: ['kernels', 'out_channels', 'kernel_size', 'stride', 'padding', 'output_padding'],
  maxpool: ['kernel_size', 'stride', 'padding', 'dilation'],
  avgpool: ['kernel_size', 'stride', 'padding'],
  relu: [], sigmoid: [], tanh: [],
};
const LABELS = {
  kernels: 'kernels', out_channels: 'or maps', kernel_size: 'k', stride: 's', padding: 'p', dilation: 'd',
  output_padding: 'output p',
};
const HINTS = {
  kernels: 'preset names, comma-separated (sobel_x,box,…); empty: random weights for "maps" kernels',
  out_channels: 'number of maps with random weights (PyTorch init), when no kernels are named',
  kernel_size: 'kernel size: 3 or 3,5', stride: 'stride', padding: 'zero padding', dilation: 'dilation',
  output_padding: 'extra rows and columns at the end (less than the stride)',
};
/** Ready-made stacks of the page; the API's runnable networks (GET /api/networks) join them. */
const PRESETS = [
  {
    name: 'edges', title: 'Edges → ReLU → max pool → blur → max pool',
    layers: [{ kernels: 'sobel_x,sobel_y', padding: 1 }, { kind: 'relu' }, { kind: 'maxpool', kernel_size: 2 },
      { kernels: 'box', kernel_size: 5, padding: 2 }, { kind: 'maxpool', kernel_size: 2 }],
  },
  {
    name: 'dilated', title: 'Three 3×3 convs, dilation 1, 2, 4',
    layers: [{ kernels: 'gaussian', padding: 1 }, { kernels: 'gaussian', padding: 2, dilation: 2 },
      { kernels: 'gaussian', padding: 4, dilation: 4 }],
  },
  {
    name: 'upsample', title: 'Strided conv → transposed conv (back up)',
    layers: [{ kernels: 'box', stride: 2, padding: 1 }, { kind: 'conv_transpose', kernels: 'box', stride: 2 }],
  },
];
const DEFAULT_LAYERS = PRESETS[0].layers;
/** Milliseconds of quiet typing before an edited stack is sent. */
const EDIT_DEBOUNCE_MS = 300;

/**
 * A field's text as the API reads it: "3" → 3, "3,5" → [3, 5], anything else as typed.
 * @param {string} name
 * @param {string} text
 * @returns {string|number|number[]}
 */
function fieldValue(name, text) {
  const t = text.trim();
  if (name === 'kernels') return t;
  if (/^\d+$/.test(t)) return Number(t);
  if (/^\d+\s*,\s*\d+$/.test(t)) return t.split(',').map(Number);
  return t;
}

/** A field's value as the editor shows it. */
function fieldText(value) {
  if (value === undefined || value === null) return '';
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** "3×3", "3×5" for a pair. */
export function pairText(p) {
  return p[0] === p[1] ? `${p[0]}` : `${p[0]}×${p[1]}`;
}

/** "conv 3×3, s 2, p 1, 2 kernels" in a few words, for a layer of the /api/network answer. */
export function describe(layer) {
  const spec = layer.spec;
  const parts = [KIND_NAMES[layer.kind]];
  if (spec.kernel_size) parts[0] += ` ${pairText(spec.kernel_size)}`;
  else if (layer.kind === 'conv' || layer.kind === 'conv_transpose') parts[0] += ' 3';
  if (spec.stride && (spec.stride[0] > 1 || spec.stride[1] > 1)) parts.push(`s ${pairText(spec.stride)}`);
  if (Array.isArray(spec.padding) && (spec.padding[0] || spec.padding[1])) parts.push(`p ${pairText(spec.padding)}`);
  if (spec.dilation && (spec.dilation[0] > 1 || spec.dilation[1] > 1)) parts.push(`d ${pairText(spec.dilation)}`);
  if (spec.kernels) parts.push(spec.kernels.replace(/,/g, ', '));
  return parts.join(', ');
}

export class LayerEditor {
  /**
   * @param {HTMLElement} root #tab-network
   * @param {() => void} onChange called when the stack changed and should be sent
   */
  constructor(root, onChange) {
    this.root = root;
    this.onChange = onChange;
    this.maxLayers = numberAttribute(root, 'maxStackLayers');
    this.list = root.querySelector('#net-layers');
    this.error = root.querySelector('#error-layers');
    this.preset = root.querySelector('#net-preset');
    this.layers = DEFAULT_LAYERS.map((l) => ({ ...l }));
    this.presets = [...PRESETS];
    this.answer = null; // {data, sent}: the last /api/network answer and the layers it was for
    this.debounce = 0;
    root.querySelector('#net-add').addEventListener('click', () => this.addLayer());
    this.preset.addEventListener('change', () => this.pickPreset(this.preset.value));
    this.list.addEventListener('input', () => this.edited());
    this.list.addEventListener('change', (e) => { if (e.target.matches('select')) this.edited(true); });
  }

  /** The stack as the API reads it (the `layers` field). */
  sent() {
    return JSON.stringify(this.layers);
  }

  /** Networks of the API that this page can run: few enough layers and maps. */
  async loadPresets() {
    let body;
    try {
      const res = await fetch('/api/networks', { headers: { Accept: 'application/json' } });
      if (!res.ok) return;
      body = await res.json();
    } catch {
      return;
    }
    const maxMaps = numberAttribute(this.root, 'maxStackChannels');
    for (const net of body.networks) {
      const fits = net.runnable && net.layers.every((l) => (l.out_channels || 1) <= maxMaps);
      if (fits) this.presets.push({ name: net.name, title: `${net.title} (${net.layout})`, layers: net.layers });
    }
    this.drawPresetOptions();
  }

  drawPresetOptions() {
    const current = this.preset.value;
    while (this.preset.options.length > 1) this.preset.remove(1);
    for (const p of this.presets) this.preset.append(el('option', { value: p.name, text: p.title }));
    this.preset.value = this.presets.some((p) => p.name === current) ? current : '';
  }

  pickPreset(name) {
    const preset = this.presets.find((p) => p.name === name);
    if (!preset) return;
    this.layers = preset.layers.map((l) => {
      const copy = {};
      for (const [k, v] of Object.entries(l)) if (k === 'kind' || FIELDS[l.kind || 'conv'].includes(k)) copy[k] = v;
      return copy;
    });
    this.draw();
    this.onChange();
  }

  addLayer() {
    if (this.layers.length >= this.maxLayers) return;
    const last = this.layers[this.layers.length - 1];
    const kind = last && (last.kind || 'conv') === 'conv' ? 'relu' : 'conv';
    this.layers.push(kind === 'conv' ? { kernels: 'box', padding: 1 } : { kind });
    this.preset.value = '';
    this.draw();
    this.onChange();
  }

  move(i, delta) {
    const j = i + delta;
    if (j < 0 || j >= this.layers.length) return;
    [this.layers[i], this.layers[j]] = [this.layers[j], this.layers[i]];
    this.preset.value = '';
    this.draw();
    this.onChange();
  }

  remove(i) {
    if (this.layers.length <= 1) return;
    this.layers.splice(i, 1);
    this.preset.value = '';
    this.draw();
    this.onChange();
  }

  /** Read the editor back into this.layers; a new kind redraws its row's fields. */
  edited(kindChanged = false) {
    this.layers = [...this.list.children].map((li) => {
      const kind = li.querySelector('select').value;
      const spec = kind === 'conv' ? {} : { kind };
      for (const input of li.querySelectorAll('input[data-name]')) {
        const name = input.dataset.name;
        if (FIELDS[kind].includes(name) && input.value.trim() !== '') spec[name] = fieldValue(name, input.value);
      }
      return spec;
    });
    this.preset.value = '';
    if (kindChanged) this.draw();
    window.clearTimeout(this.debounce);
    this.debounce = window.setTimeout(() => this.onChange(), EDIT_DEBOUNCE_MS);
  }

  /** One row per layer: kind, its fields, channels in → out, and move / remove buttons. */
  draw() {
    clear(this.list);
    this.layers.forEach((spec, i) => {
      const kind = spec.kind || 'conv';
      const select = el('select', { 'aria-label': `layer ${i + 1}: kind`, dataset: { field: `layers[${i}].kind` } },
        ...KINDS.map((k) => el('option', { value: k, text: KIND_NAMES[k], selected: k === kind })));
      const fields = FIELDS[kind].map((name) => el('label', { className: `net-field net-field-${name}`, title: HINTS[name] },
        el('span', { text: LABELS[name] }),
        el('input', {
          type: 'text', value: fieldText(spec[name]), size: name === 'kernels' ? 14 : 3, spellcheck: 'false',
          placeholder: name === 'kernels' ? 'sobel_x,box' : '', 'aria-label': `layer ${i + 1}: ${HINTS[name]}`,
          dataset: { name, field: `layers[${i}].${name}` },
        })));
      const channels = el('span', { className: 'net-channels muted', dataset: { index: String(i) } });
      const buttons = el('span', { className: 'net-buttons' },
        el('button', { type: 'button', title: 'move up', 'aria-label': `move layer ${i + 1} up`, disabled: i === 0, text: '↑' }),
        el('button', { type: 'button', title: 'move down', 'aria-label': `move layer ${i + 1} down`, disabled: i === this.layers.length - 1, text: '↓' }),
        el('button', { type: 'button', title: 'remove', 'aria-label': `remove layer ${i + 1}`, disabled: this.layers.length === 1, text: '×' }));
      const [up, down, del] = buttons.children;
      up.addEventListener('click', () => this.move(i, -1));
      down.addEventListener('click', () => this.move(i, 1));
      del.addEventListener('click', () => this.remove(i));
      this.list.append(el('li', { className: 'net-layer', dataset: { index: String(i) } },
        el('span', { className: 'net-index', text: String(i + 1) }), select, ...fields, channels, buttons));
    });
    this.root.querySelector('#net-add').disabled = this.layers.length >= this.maxLayers;
    this.root.querySelector('#net-count').textContent = `${this.layers.length} of at most ${this.maxLayers} layers`;
    this.drawChannels();
  }

  /**
   * Remember the answer for `sent` and write its channels beside the rows.
   * @param {object} data the /api/network answer
   * @param {string} sent the layers it answers
   */
  showAnswer(data, sent) {
    this.answer = { data, sent };
    this.drawChannels();
  }

  /** Beside each row: C_in → C_out from the last answer (C_in follows the previous layer). */
  drawChannels() {
    if (!this.answer || this.answer.sent !== this.sent()) return;
    for (const span of this.list.querySelectorAll('.net-channels')) {
      const layer = this.answer.data.layers[Number(span.dataset.index)];
      if (layer) span.textContent = `${layer.input_shape[0]} → ${counted(layer.output_shape[0], 'map')}`;
    }
  }

  /** An error next to the layer list, and the field it names marked in its row. */
  showError(err) {
    for (const node of this.list.querySelectorAll('.invalid')) node.classList.remove('invalid');
    this.error.textContent = err ? err.message.replace(/`/g, '') : '';
    if (!err || !err.field) return;
    const node = this.list.querySelector(`[data-field="${CSS.escape(err.field)}"]`)
      || this.list.querySelector(`li[data-index="${CSS.escape((/^layers\[(\d+)\]/.exec(err.field) || [])[1] || '')}"]`);
    if (node) node.classList.add('invalid');
  }
}
