// The feature maps: one figure per kernel with its PNG (from the API), a marker on the current
// unit, a colour bar and the value range. Drawing and pointer hit-testing only.

import { clear, colourBar, el } from '../dom.js';
import { formatNumber, integerScale } from '../convmath.js';

export class MapsView {
  /**
   * @param {HTMLElement} root #maps
   * @param {{onHover: (unit: [number, number]|null) => void, onPick: (unit: [number, number]) => void}} handlers
   */
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.figures = [];
    this.outHW = [1, 1];
  }

  /**
   * Replace the maps with those of a /api/convolve answer.
   * @param {any} data the convolve JSON
   */
  render(data) {
    const [, ho, wo] = data.output_shape;
    this.outHW = [ho, wo];
    const room = Math.max(120, (this.root.clientWidth || 320) - 8);
    const count = data.maps.length;
    const perRow = count === 1 ? 1 : Math.min(count, room >= 560 ? 3 : 2, count <= 4 ? 2 : 3);
    const each = Math.floor(room / perRow) - 12;
    const scale = wo <= each ? integerScale(wo, Math.min(each, 320), 48) : each / wo;
    clear(this.root);
    this.figures = data.maps.map((m) => {
      const img = el('img', {
        className: 'fmap pixelated',
        src: m.png,
        alt: `feature map ${m.index} (${m.name}), ${ho}×${wo}`,
        dataset: { index: String(m.index) },
        draggable: 'false',
      });
      img.style.width = `${Math.max(1, Math.round(wo * scale))}px`;
      img.style.height = `${Math.max(1, Math.round(ho * scale))}px`;
      const marker = el('div', { className: 'unit-marker', hidden: true });
      const wrap = el('div', { className: 'fmap-wrap' }, img, marker);
      img.addEventListener('mousemove', (e) => this.handlers.onHover(this.unitAt(img, e)));
      img.addEventListener('mouseleave', () => this.handlers.onHover(null));
      img.addEventListener('click', (e) => this.handlers.onPick(this.unitAt(img, e)));
      const fig = el('figure', { className: 'fmap-fig' },
        el('figcaption', {}, el('strong', { text: `${m.index}` }), ` · ${m.name}`),
        wrap,
        colourBar(m.min, m.max),
        el('p', { className: 'range muted', text: `min ${formatNumber(m.min)} · mean ${formatNumber(m.mean)} · max ${formatNumber(m.max)}` }));
      fig.style.width = `${Math.max(150, Math.round(wo * scale))}px`;
      return { fig, img, marker, scale };
    });
    this.figures.forEach((f) => this.root.append(f.fig));
  }

  /**
   * The output unit under the pointer.
   * @param {HTMLImageElement} img
   * @param {MouseEvent} e
   * @returns {[number, number]}
   */
  unitAt(img, e) {
    const rect = img.getBoundingClientRect();
    const [ho, wo] = this.outHW;
    const row = Math.min(ho - 1, Math.max(0, Math.floor(((e.clientY - rect.top) / rect.height) * ho)));
    const col = Math.min(wo - 1, Math.max(0, Math.floor(((e.clientX - rect.left) / rect.width) * wo)));
    return [row, col];
  }

  /**
   * Mark one unit on every map (the same unit everywhere), or none.
   * @param {[number, number]|null} unit
   * @param {boolean} pinned
   */
  mark(unit, pinned) {
    for (const f of this.figures) {
      if (!unit) {
        f.marker.hidden = true;
        continue;
      }
      const w = parseFloat(f.img.style.width) / this.outHW[1];
      const h = parseFloat(f.img.style.height) / this.outHW[0];
      f.marker.style.left = `${unit[1] * w - 2}px`;
      f.marker.style.top = `${unit[0] * h - 2}px`;
      f.marker.style.width = `${Math.max(w, 2) + 4}px`;
      f.marker.style.height = `${Math.max(h, 2) + 4}px`;
      f.marker.classList.toggle('pinned', pinned);
      f.marker.hidden = false;
    }
  }
}
