// The Network tab's hover: for the unit under the pointer, its receptive field on the photo (from
// /api/receptive-field), the box after each earlier layer (growingBoxes in convmath.js), its
// effective receptive field (ERF, from /api/erf) inside it, a magnified neighbourhood, and a
// sentence of what it sees.

import { Channel, Stale } from '../api.js';
import { fitScale, growingBoxes } from '../convmath.js';
import { sizeCanvas } from '../dom.js';
import { formatInt, formatNumber } from '../format.js';
import { pairText } from './network-layers.js';

const ACCENT = '#e4572e';
/** Milliseconds the pointer rests on a unit before its receptive field is asked for. */
const HOVER_MS = 60;

export class ReceptiveFieldOverlay {
  /**
   * @param {HTMLElement} root #tab-network
   * @param {object} page
   * @param {(path: string, params: object, signal: AbortSignal) => Promise<object>} page.callApi
   * @param {() => boolean} page.rgb whether the page shows the photo in colour
   * @param {(err: Error) => void} page.showError
   */
  constructor(root, page) {
    this.root = root;
    this.page = page;
    this.canvas = root.querySelector('#net-canvas');
    this.info = root.querySelector('#net-rf-info');
    this.rfChannel = new Channel();
    this.erfChannel = new Channel();
    this.data = null; // the /api/network answer for this.sent
    this.sent = null; // the layers of that answer
    this.hovered = null; // {layer, channel, row, col}
    this.pinned = false;
    this.drawn = null; // {unit, rf, boxes, erf: HTMLImageElement|null, erfData}
    this.photo = null;
    this.hoverTimer = 0;
    this.canvas.addEventListener('mouseleave', () => { if (!this.pinned) this.drawInput(); });
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.pinned) { this.pinned = false; this.setStatus(); }
    });
  }

  /** A new answer: no unit is hovered or pinned. */
  setAnswer(data, sent) {
    this.data = data;
    this.sent = sent;
    this.hovered = null;
    this.pinned = false;
  }

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
    this.hoverTimer = window.setTimeout(() => this.explain(unit), HOVER_MS);
  }

  /** A click pins the unit under the pointer (Escape unpins it). */
  pin(img, evt) {
    this.pinned = false;
    this.pointAt(img, evt);
    this.pinned = true;
  }

  /** The pointer left a map: unless a unit is pinned, show the photo alone. */
  leave() {
    if (this.pinned) return;
    this.hovered = null;
    this.drawInput();
    this.setStatus();
  }

  /** Ask for the unit's box (geometry of layers 0..L) and its ERF, then draw both on the photo. */
  async explain(unit) {
    const upTo = JSON.stringify(JSON.parse(this.sent).slice(0, unit.layer + 1));
    const where = { row: String(unit.row), col: String(unit.col) };
    let rf;
    try {
      rf = await this.rfChannel.run((signal) => this.page.callApi('/api/receptive-field', { layers: upTo, ...where }, signal));
    } catch (err) {
      if (!(err instanceof Stale)) this.page.showError(err);
      return;
    }
    const boxes = growingBoxes(rf.box, rf.layers.map((l) => l.receptive_field));
    this.drawn = { unit, rf, boxes, erf: null, erfData: null };
    this.drawInput();
    this.setStatus();
    let erf;
    try {
      erf = await this.erfChannel.run((signal) => this.page.callApi('/api/erf', {
        layers: this.sent, layer: String(unit.layer), channel: String(unit.channel), ...where,
      }, signal));
    } catch (err) {
      if (!(err instanceof Stale)) this.page.showError(err);
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
      ctx.filter = this.page.rgb() ? 'none' : 'grayscale(1)';
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
