// The Network tab: a stack of layers on the image (up to CONVLENS_MAX_STACK_LAYERS, read from the
// page), each layer's maps in a row, a table of receptive-field sizes, jumps and starts, and for
// the unit under the pointer its receptive field on the photo, layer by layer, with its
// effective receptive field (ERF) inside it. The numbers come from /api/network,
// /api/receptive-field and /api/erf; the box arithmetic from convmath.js; this module draws.

import { Channel, Stale } from '../api.js';
import { fitScale, growingBoxes } from '../convmath.js';
import { clear, el, numberAttribute, sizeCanvas } from '../dom.js';
import { counted, formatInt, formatNumber, numberInWords } from '../format.js';

const KINDS = ['conv', 'maxpool', 'avgpool', 'relu', 'sigmoid', 'tanh', 'conv_transpose'];
const KIND_NAMES = {
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
const MAPS_SHOWN = 4;
const THUMB = 112; // css px of the longest side of a map thumbnail
const ACCENT = '#e4572e';

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
function pairText(p) {
  return p[0] === p[1] ? `${p[0]}` : `${p[0]}×${p[1]}`;
}

export class NetworkView {
  /** @param {HTMLElement} root #tab-network */
  constructor(root) {
    this.root = root;
    this.maxLayers = numberAttribute(root, 'maxStackLayers');
    this.list = root.querySelector('#net-layers');
    this.rows = root.querySelector('#net-rows');
    this.table = root.querySelector('#net-table tbody');
    this.canvas = root.querySelector('#net-canvas');
    this.info = root.querySelector('#net-rf-info');
    this.error = root.querySelector('#error-layers');
    this.preset = root.querySelector('#net-preset');
    this.netChannel = new Channel();
    this.rfChannel = new Channel();
    this.erfChannel = new Channel();
    this.layers = DEFAULT_LAYERS.map((l) => ({ ...l }));
    this.presets = [...PRESETS];
    this.data = null; // the /api/network answer for this.sent
    this.sent = null; // the layers of that answer
    this.hovered = null; // {layer, channel, row, col}
    this.pinned = false;
    this.drawn = null; // {box, boxes, erf: HTMLImageElement|null}
    this.app = null;
    this.debounce = 0;
    this.hoverTimer = 0;
    root.querySelector('#net-add').addEventListener('click', () => this.addLayer());
    this.preset.addEventListener('change', () => this.pickPreset(this.preset.value));
    this.list.addEventListener('input', () => this.edited());
    this.list.addEventListener('change', (e) => { if (e.target.matches('select')) this.edited(true); });
    this.canvas.addEventListener('mouseleave', () => { if (!this.pinned) this.drawInput(); });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.pinned) { this.pinned = false; this.setStatus(); }
    });
    this.loadPresets();
    this.drawEditor();
  }

  // ---------------------------------------------------------------- the layer list

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
    this.drawEditor();
    this.refresh();
  }

  addLayer() {
    if (this.layers.length >= this.maxLayers) return;
    const last = this.layers[this.layers.length - 1];
    const kind = last && (last.kind || 'conv') === 'conv' ? 'relu' : 'conv';
    this.layers.push(kind === 'conv' ? { kernels: 'box', padding: 1 } : { kind });
    this.preset.value = '';
    this.drawEditor();
    this.refresh();
  }

  move(i, delta) {
    const j = i + delta;
    if (j < 0 || j >= this.layers.length) return;
    [this.layers[i], this.layers[j]] = [this.layers[j], this.layers[i]];
    this.preset.value = '';
    this.drawEditor();
    this.refresh();
  }

  remove(i) {
    if (this.layers.length <= 1) return;
    this.layers.splice(i, 1);
    this.preset.value = '';
    this.drawEditor();
    this.refresh();
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
    if (kindChanged) this.drawEditor();
    window.clearTimeout(this.debounce);
    this.debounce = window.setTimeout(() => this.refresh(), 300);
  }

  /** One row per layer: kind, its fields, channels in → out, and move / remove buttons. */
  drawEditor() {
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

  /** Beside each row: C_in → C_out from the last answer (C_in follows the previous layer). */
  drawChannels() {
    if (!this.data || this.sent !== JSON.stringify(this.layers)) return;
    for (const span of this.list.querySelectorAll('.net-channels')) {
      const layer = this.data.layers[Number(span.dataset.index)];
      if (layer) span.textContent = `${layer.input_shape[0]} → ${counted(layer.output_shape[0], 'map')}`;
    }
  }

  // ---------------------------------------------------------------- the answer

  /** @param {object} app the page (app.js): state, result, callApi */
  async render(app) {
    this.app = app;
    await this.refresh();
  }

  async refresh() {
    if (!this.app) return;
    const layers = JSON.stringify(this.layers);
    let data;
    try {
      data = await this.netChannel.run((signal) => this.app.callApi('/api/network', { layers }, signal));
    } catch (err) {
      if (err instanceof Stale) return;
      this.showError(err);
      return;
    }
    this.showError(null);
    this.data = data;
    this.sent = layers;
    this.hovered = null;
    this.pinned = false;
    this.drawChannels();
    this.drawRows();
    this.drawTable();
    await this.loadInput();
    this.drawInput();
    this.setStatus();
    this.root.dataset.rendered = String(Number(this.root.dataset.rendered || 0) + 1);
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

  /** Each layer's maps in a row: the first few, then "+N more", with its shape. */
  drawRows() {
    clear(this.rows);
    this.data.layers.forEach((layer, i) => {
      const [c, h, w] = layer.output_shape;
      const scale = fitScale(w, h, THUMB, THUMB, 8);
      const maps = layer.maps.slice(0, MAPS_SHOWN).map((m) => {
        const img = el('img', {
          className: `net-map${scale >= 1 ? ' pixelated' : ''}`, src: m.png, alt: `layer ${i + 1}, map ${m.index} (${m.name})`,
          width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)),
          dataset: { layer: String(i), channel: String(m.index) }, title: `${m.name}: ${formatNumber(m.min)} … ${formatNumber(m.max)}`,
        });
        img.addEventListener('mousemove', (e) => this.pointAt(img, e));
        img.addEventListener('click', (e) => { this.pinned = false; this.pointAt(img, e); this.pinned = true; });
        img.addEventListener('mouseleave', () => { if (!this.pinned) { this.hovered = null; this.drawInput(); this.setStatus(); } });
        return el('figure', { className: 'net-map-fig' }, img, el('figcaption', { className: 'muted small', text: `${m.index} · ${m.name}` }));
      });
      const more = layer.maps.length > MAPS_SHOWN ? el('span', { className: 'net-more', text: `+${layer.maps.length - MAPS_SHOWN} more` }) : null;
      this.rows.append(el('section', { className: 'net-row', dataset: { layer: String(i) } },
        el('h3', {}, `${i + 1} · ${this.describe(layer)} `, el('span', { className: 'muted', text: `→ ${c}×${h}×${w}` })),
        el('div', { className: 'net-maps' }, ...maps, more)));
    });
  }

  /** "conv 3×3, s 2, p 1, 2 kernels" in a few words. */
  describe(layer) {
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

  /** The receptive field and parameters of every layer, one row each. */
  drawTable() {
    clear(this.table);
    const cell = (text) => el('td', { text });
    this.data.layers.forEach((layer, i) => {
      const rf = layer.receptive_field;
      const p = layer.parameters;
      this.table.append(el('tr', { dataset: { layer: String(i) } },
        el('th', { scope: 'row', text: String(i + 1) }), cell(this.describe(layer)), cell(layer.output_shape.join('×')),
        cell(rf ? pairText(rf.size) : '—'), cell(rf ? pairText(rf.jump) : '—'), cell(rf ? rf.start.join(', ') : '—'),
        cell(formatInt(p.weights)), cell(formatInt(p.biases)), cell(formatInt(p.multiply_adds))));
    });
    const d = this.data;
    this.table.append(el('tr', { className: 'net-total' }, el('th', { scope: 'row', text: '' }), cell('whole stack'),
      cell(d.output_shape.join('×')), cell(''), cell(''), cell(''),
      el('td', { colspan: '2', text: `${formatInt(d.parameters)} parameters` }),
      cell(`${formatInt(d.multiply_adds)}${d.multiply_adds >= 1e6 ? ` (${numberInWords(d.multiply_adds)})` : ''}`)));
    if (d.layers.some((l) => !l.receptive_field)) {
      this.table.append(el('tr', {}, el('td', { colspan: '9', className: 'muted', text: 'From a transposed conv on, neighbouring units are a fraction of an input pixel apart: there is no whole-pixel size and jump, but each unit still has its box (hover it).' })));
    }
  }

  // ---------------------------------------------------------------- hover: the unit's receptive field

  /** The unit of a map under the pointer: (layer, channel, row, col). */
  pointAt(img, evt) {
    if (this.pinned) return;
    const layer = this.data.layers[Number(img.dataset.layer)];
    const [, h, w] = layer.output_shape;
    const rect = img.getBoundingClientRect();
    const col = Math.min(w - 1, Math.max(0, Math.floor(((evt.clientX - rect.left) / rect.width) * w)));
    const row = Math.min(h - 1, Math.max(0, Math.floor(((evt.clientY - rect.top) / rect.height) * h)));
    const unit = { layer: Number(img.dataset.layer), channel: Number(img.dataset.channel), row, col };
    const same = this.hovered && ['layer', 'channel', 'row', 'col'].every((k) => this.hovered[k] === unit[k]);
    if (same) return;
    this.hovered = unit;
    window.clearTimeout(this.hoverTimer);
    this.hoverTimer = window.setTimeout(() => this.explain(unit), 60);
  }

  /** Ask for the unit's box (geometry of layers 0..L) and its ERF, then draw both on the photo. */
  async explain(unit) {
    const upTo = JSON.stringify(JSON.parse(this.sent).slice(0, unit.layer + 1));
    const where = { row: String(unit.row), col: String(unit.col) };
    let rf;
    try {
      rf = await this.rfChannel.run((signal) => this.app.callApi('/api/receptive-field', { layers: upTo, ...where }, signal));
    } catch (err) {
      if (!(err instanceof Stale)) this.showError(err);
      return;
    }
    const boxes = growingBoxes(rf.box, rf.layers.map((l) => l.receptive_field));
    this.drawn = { unit, rf, boxes, erf: null, erfData: null };
    this.drawInput();
    this.setStatus();
    let erf;
    try {
      erf = await this.erfChannel.run((signal) => this.app.callApi('/api/erf', {
        layers: this.sent, layer: String(unit.layer), channel: String(unit.channel), ...where,
      }, signal));
    } catch (err) {
      if (!(err instanceof Stale)) this.showError(err);
      return;
    }
    const img = new Image();
    img.src = erf.png;
    try {
      await img.decode();
    } catch {
      return;
    }
    if (this.drawn.unit !== unit) return; // a newer unit is drawn
    this.drawn.erf = img;
    this.drawn.erfData = erf;
    this.drawInput();
    this.setStatus();
  }

  async loadInput() {
    const src = document.querySelector('#input-img');
    this.photo = src;
    if (src && !src.complete) {
      try { await src.decode(); } catch { /* drawn without the photo */ }
    }
  }

  /**
   * The photo, fitted, with room around it for boxes that reach into the padding; and beside it the
   * unit's neighbourhood magnified (whole-pixel zoom), where a small box and its growth show.
   */
  drawInput() {
    if (!this.data) return;
    const [, h, w] = this.data.input_shape;
    const room = Math.max(200, Math.min(420, (this.canvas.parentElement.clientWidth || 360) - 4));
    const margin = Math.round(room * 0.1);
    const scale = fitScale(w, h, room - 2 * margin, room - 2 * margin, 16);
    const cw = Math.round(w * scale) + 2 * margin;
    const ch = Math.round(h * scale) + 2 * margin;
    const ctx = sizeCanvas(this.canvas, cw, ch);
    this.canvas.dataset.frame = `${margin},${scale}`; // input (r, q) is drawn at margin + (q, r)·scale
    const d = this.hovered ? this.drawn : null;
    this.drawScene(ctx, { x: margin, y: margin, scale }, cw, ch, d);
    for (const key of ['box', 'erf', 'unit']) delete this.canvas.dataset[key];
    const zoom = this.root.querySelector('#net-zoom');
    zoom.hidden = !d;
    if (!d) return;
    const box = d.rf.box;
    this.canvas.dataset.box = [box.top, box.left, box.height, box.width].join(',');
    this.canvas.dataset.unit = [d.unit.layer, d.unit.channel, d.unit.row, d.unit.col].join(',');
    if (d.erf) this.canvas.dataset.erf = 'drawn';
    // The magnified neighbourhood: the box and half its size again on each side.
    const side = Math.max(box.height, box.width);
    const pad = Math.max(2, Math.ceil(side / 2));
    const span = side + 2 * pad;
    const zs = Math.max(1, Math.floor(Math.min(room, 260) / span));
    const zw = span * zs;
    const zctx = sizeCanvas(zoom, zw, zw);
    const top = box.top + (box.height - side) / 2 - pad;
    const left = box.left + (box.width - side) / 2 - pad;
    this.drawScene(zctx, { x: -left * zs, y: -top * zs, scale: zs }, zw, zw, d);
    this.root.querySelector('#net-zoom-caption').textContent = span * scale < 48 ? `magnified ×${zs} around the unit` : `around the unit, ×${zs}`;
  }

  /**
   * Draw the photo at frame f (input (r, q) at (f.x + q·s, f.y + r·s)), and for unit d its box,
   * the ERF inside it and the boxes after each earlier layer.
   */
  drawScene(ctx, f, cw, ch, d) {
    const [, h, w] = this.data.input_shape;
    const s = f.scale;
    const X = (col) => f.x + col * s;
    const Y = (row) => f.y + row * s;
    const photo = () => {
      if (!this.photo || !this.photo.naturalWidth) return;
      ctx.imageSmoothingEnabled = s < 1;
      ctx.filter = this.app && this.app.state.color === 'rgb' ? 'none' : 'grayscale(1)';
      ctx.drawImage(this.photo, f.x, f.y, w * s, h * s);
      ctx.filter = 'none';
    };
    ctx.fillStyle = '#c9c9c9'; // padding: outside the image
    ctx.fillRect(0, 0, cw, ch);
    photo();
    if (!d) return;
    const box = d.rf.box;
    ctx.fillStyle = 'rgba(255, 255, 255, 0.5)'; // fade what the unit does not see
    ctx.fillRect(0, 0, cw, ch);
    ctx.save();
    ctx.beginPath();
    ctx.rect(X(box.left), Y(box.top), box.width * s, box.height * s);
    ctx.clip();
    ctx.fillStyle = '#c9c9c9';
    ctx.fillRect(X(box.left), Y(box.top), box.width * s, box.height * s);
    photo();
    if (d.erf) {
      ctx.globalAlpha = 0.7;
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(d.erf, f.x, f.y, w * s, h * s);
      ctx.globalAlpha = 1;
    }
    ctx.restore();
    // The box after each earlier layer, around the same centre: it grows, the jump multiplies.
    d.boxes.forEach((b, k) => {
      if (b.layer === d.unit.layer) return; // the unit's own box is drawn in the accent below
      ctx.setLineDash([]);
      ctx.strokeStyle = `rgba(0, 0, 0, ${0.35 + (0.4 * (k + 1)) / d.boxes.length})`;
      ctx.lineWidth = 2;
      ctx.strokeRect(X(b.left), Y(b.top), b.width * s, b.height * s);
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 1;
      ctx.setLineDash([3, 3]);
      ctx.strokeRect(X(b.left), Y(b.top), b.width * s, b.height * s);
    });
    ctx.setLineDash([]);
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 2;
    ctx.strokeRect(X(box.left) - 1, Y(box.top) - 1, box.width * s + 2, box.height * s + 2);
  }

  /** The sentence under the photo: what the hovered unit sees, layer by layer. */
  setStatus() {
    const caption = this.root.querySelector('#net-input-caption');
    const d = this.drawn;
    if (!this.data) return;
    const [c, h, w] = this.data.input_shape;
    if (!d || !this.hovered) {
      caption.textContent = `${c}×${h}×${w}`;
      this.info.textContent = 'Hover a unit of any layer’s maps (click pins it, Escape unpins) to see its receptive field here.';
      return;
    }
    const { unit, rf, boxes } = d;
    caption.textContent = `${c}×${h}×${w} · unit (${unit.channel}, ${unit.row}, ${unit.col}) of layer ${unit.layer + 1}${this.pinned ? ' (pinned)' : ''}`;
    const b = rf.box;
    const growth = boxes.map((x) => `${pairText([x.height, x.width])} (j ${pairText(x.jump)})`).join(' → ');
    let text = `It sees input rows ${b.top}…${b.top + b.height - 1} and columns ${b.left}…${b.left + b.width - 1}: ${b.height}×${b.width} pixels`
      + `${rf.in_padding ? `, ${formatInt(rf.in_padding)} of them padding (${formatNumber(rf.padding_fraction * 100, 2)} %)` : ''}.`;
    if (growth) text += ` Layer by layer the box grows ${growth}.`;
    if (d.erfData && d.erfData.std) {
      const e = d.erfData;
      text += ` Its effective receptive field is centred at (${formatNumber(e.center[0])}, ${formatNumber(e.center[1])}) with spread σ = ${formatNumber(e.std[0])}×${formatNumber(e.std[1])} pixels: most of its input comes from the middle of the box.`;
    } else if (d.erfData) {
      text += ' Its effective receptive field is zero: no input pixel moves it here (a ReLU is off, or a max pool chose another input).';
    }
    this.info.textContent = text;
  }
}
