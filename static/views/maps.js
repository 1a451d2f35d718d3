// The feature maps: one figure per kernel with its PNG (from the API), a marker on the current
// unit, a colour bar and the value range. Drawing and pointer hit-testing only.

import { clear, colourBar, el } from '../dom.js';
import { integerScale } from '../convmath.js';
import { formatNumber } from '../format.js';

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
    // Integer zoom only: small maps are enlarged by a whole factor; a map wider than its slot is
    // shown 1:1 in a scroll box (every output unit stays one screen pixel, none is dropped).
    const fits = wo <= each;
    const scale = fits ? integerScale(Math.max(wo, ho / 1.25), Math.min(each, 320), 48) : 1;
    const boxW = fits ? wo * scale : each;
    const boxH = Math.min(ho * scale, Math.max(200, Math.min(each, 300)));
    this.scale = scale;
    this.scrolls = !fits || ho * scale > boxH;
    const zoom = scale === 1 ? '1:1' : `×${scale}`;
    this.root.parentElement.querySelector('#maps-zoom')?.replaceChildren(
      this.scrolls ? `1:1, one screen pixel per output unit · scroll to pan; all maps pan together` : `shown ${zoom}`);
    clear(this.root);
    this.syncing = false;
    this.figures = data.maps.map((m) => {
      const img = el('img', {
        className: 'fmap pixelated',
        src: m.png,
        alt: `feature map ${m.index} (${m.name}), ${ho}×${wo}`,
        dataset: { index: String(m.index), scale: String(scale) },
        draggable: 'false',
        width: String(wo * scale),
        height: String(ho * scale),
      });
      img.style.width = `${wo * scale}px`;
      img.style.height = `${ho * scale}px`;
      img.style.maxWidth = 'none';
      const marker = el('div', { className: 'unit-marker', hidden: true });
      const wrap = el('div', { className: 'fmap-wrap' }, img, marker);
      const box = el('div', { className: `fmap-box${this.scrolls ? ' scrolls' : ''}` }, wrap);
      box.style.width = `${boxW + (this.scrolls ? 2 : 0)}px`;
      box.style.height = this.scrolls ? `${boxH}px` : '';
      box.addEventListener('scroll', () => this.syncScroll(box));
      img.addEventListener('mousemove', (e) => this.handlers.onHover(this.unitAt(img, e)));
      img.addEventListener('mouseleave', () => this.handlers.onHover(null));
      img.addEventListener('click', (e) => this.handlers.onPick(this.unitAt(img, e)));
      const fig = el('figure', { className: 'fmap-fig' },
        el('figcaption', {}, el('strong', { text: `${m.index}` }), ` · ${m.name}`),
        box,
        colourBar(m.min, m.max),
        el('p', { className: 'range muted', text: `min ${formatNumber(m.min)} · mean ${formatNumber(m.mean)} · max ${formatNumber(m.max)}` }));
      fig.style.width = `${Math.max(150, boxW + 2)}px`;
      return { fig, img, marker, box, scale };
    });
    this.figures.forEach((f) => this.root.append(f.fig));
  }

  /** Every map shows the same region: scrolling one scrolls the others. */
  syncScroll(source) {
    if (this.syncing) return;
    this.syncing = true;
    for (const f of this.figures) {
      if (f.box === source) continue;
      f.box.scrollLeft = source.scrollLeft;
      f.box.scrollTop = source.scrollTop;
    }
    this.syncing = false;
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
    // Bring the unit into view when the maps scroll (the box of a hovered map already shows it).
    const first = this.figures[0];
    if (unit && first && this.scrolls) {
      const box = first.box;
      const x = unit[1] * first.scale;
      const y = unit[0] * first.scale;
      const s = first.scale;
      if (x < box.scrollLeft || x + s > box.scrollLeft + box.clientWidth) box.scrollLeft = x - box.clientWidth / 2;
      if (y < box.scrollTop || y + s > box.scrollTop + box.clientHeight) box.scrollTop = y - box.clientHeight / 2;
    }
  }
}
