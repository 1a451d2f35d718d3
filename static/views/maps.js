// The feature maps: one figure per kernel with its PNG (the URL the API returns, fetched once),
// a marker on the current unit, a colour bar and the value range. Each map fits its box whole
// (whole-number zoom in, smooth shrink) or is shown 1:1 in its own box; the maps panel itself
// never scrolls. Drawing, pointer and keyboard hit-testing only.

import { clear, colourBar, el } from '../dom.js';
import { fitScale } from '../convmath.js';
import { formatNumber } from '../format.js';

/** "×3", "1:1" or "×0.42" for a scale. */
export function zoomWords(scale) {
  if (scale === 1) return '1:1';
  return scale > 1 ? `×${scale}` : `×${formatNumber(scale, 2)}`;
}

export class MapsView {
  /**
   * @param {HTMLElement} root #maps
   * @param {{onHover: (unit: [number, number]|null, j: number) => void, onPick: (unit: [number, number], j: number) => void,
   *   onFocus: (j: number) => void, onBroken: (img: HTMLImageElement) => void}} handlers
   */
  constructor(root, handlers) {
    this.root = root;
    this.handlers = handlers;
    this.figures = [];
    this.outHW = [1, 1];
    this.images = new Map(); // map URL -> <img>, so a map already loaded is never fetched again
    // The server drew the first layer's maps into the page: the first answer uses those.
    this.serverDrawn = root.querySelector('img.fmap') !== null;
    for (const img of root.querySelectorAll('img.fmap')) {
      this.images.set(img.getAttribute('src'), img);
      img.addEventListener('error', () => this.handlers.onBroken(img));
      if (img.complete && !img.naturalWidth) queueMicrotask(() => this.handlers.onBroken(img));
    }
  }

  /**
   * What /api/convolve should add for the maps: their PNGs inside the answer (one request instead
   * of one more per map), except while the maps the server drew into the page are still the ones
   * asked for, which are then used as they are.
   * @returns {Record<string, string>}
   */
  request() {
    return { png_data: String(!this.serverDrawn) };
  }

  /**
   * The <img> of a map: the one already on the page for its URL, or a new one that shows the PNG
   * the answer carried (or, without it, loads the URL).
   * @param {{png: string, png_data?: string|null}} m a map of the convolve JSON
   */
  imageFor(m) {
    let img = this.images.get(m.png);
    if (!img) {
      img = el('img', { className: 'fmap', draggable: 'false', decoding: 'async' });
      img.addEventListener('error', () => this.handlers.onBroken(img));
      img.src = m.png_data || m.png;
      this.images.set(m.png, img);
    }
    return img;
  }

  /**
   * Start decoding every map of an answer now, before the page draws anything else: render()
   * later shows these very <img> elements, so each map is still fetched once.
   * @param {any} data the convolve JSON
   */
  prefetch(data) {
    this.serverDrawn = false;
    for (const m of data.maps) this.imageFor(m);
  }

  /**
   * Replace the maps with those of a /api/convolve answer.
   * @param {any} data the convolve JSON
   * @param {{frame: number, oneToOne: boolean}} opts frame: screen pixels per input pixel on the
   *   input panel, so a map is never drawn bigger than the input's frame (the same unit sits in
   *   the same place on both); oneToOne: every output unit one screen pixel
   */
  render(data, opts) {
    const [, ho, wo] = data.output_shape;
    this.outHW = [ho, wo];
    const room = Math.max(100, (this.root.clientWidth || 320) - 4);
    const count = data.maps.length;
    const perRow = count === 1 ? 1 : Math.min(count, room >= 700 ? 4 : room >= 400 ? (count <= 4 ? 2 : 3) : 2);
    const gap = 12;
    const each = Math.floor((room - gap * (perRow - 1)) / perRow);
    const [sh, sw] = data.layer.stride;
    let scale;
    if (opts.oneToOne) scale = 1;
    else {
      scale = fitScale(wo, ho, each, Math.max(each * 1.25, 120), 48);
      // One frame with the input: an output unit covers s input pixels there.
      const frame = opts.frame * Math.min(sh, sw);
      if (frame > 0 && scale > frame) scale = frame >= 1 ? Math.max(1, Math.floor(frame)) : frame;
    }
    const dispW = Math.max(1, Math.round(wo * scale));
    const dispH = Math.max(1, Math.round(ho * scale));
    const scrolls = opts.oneToOne && (dispW > each || dispH > each * 1.25);
    this.scale = scale;
    this.scrolls = scrolls;
    const zoom = this.root.parentElement.querySelector('#maps-zoom');
    if (zoom) {
      zoom.textContent = scrolls ? '1:1, one screen pixel per output unit: drag the scroll bars of any map, all maps pan together'
        : `whole maps, shown ${zoomWords(scale)}${scale < 1 ? ' (shrunk smoothly: use 1:1 for single units)' : ''}`;
    }
    clear(this.root);
    this.syncing = false;
    const keep = new Set();
    this.figures = data.maps.map((m) => {
      const img = this.imageFor(m);
      keep.add(m.png);
      img.alt = `feature map ${m.index} (${m.name}), ${ho}×${wo}`;
      img.dataset.index = String(m.index);
      img.dataset.scale = String(scale);
      img.classList.toggle('pixelated', scale >= 1);
      // A map whose kernel has no negative weight is a (blurred) copy of the input: gray shows it.
      const copy = m.weights.flat(2).every((x) => x >= 0) && m.min >= 0;
      img.classList.toggle('gray-map', copy);
      img.style.width = `${dispW}px`;
      img.style.height = `${dispH}px`;
      const marker = el('div', { className: 'unit-marker', hidden: true });
      const wrap = el('div', { className: 'fmap-wrap' }, img, marker);
      const box = el('div', {
        className: `fmap-box${scrolls ? ' scrolls' : ''}`, tabindex: '0', dataset: { j: String(m.index) },
        'aria-label': `feature map ${m.index} (${m.name}): Enter pins its centre unit, arrow keys move it, Escape unpins`,
      }, wrap);
      if (scrolls) {
        box.style.width = `${each}px`;
        box.style.height = `${Math.round(each * 1.1)}px`;
      }
      box.addEventListener('scroll', () => this.syncScroll(box));
      box.addEventListener('focus', () => this.handlers.onFocus(m.index));
      img.onmousemove = (e) => this.handlers.onHover(this.unitAt(img, e), m.index);
      img.onmouseleave = () => this.handlers.onHover(null, m.index);
      img.onclick = (e) => this.handlers.onPick(this.unitAt(img, e), m.index);
      const fig = el('figure', { className: 'fmap-fig' },
        el('figcaption', {}, el('strong', { text: `${m.index}` }), ` · ${m.name}`),
        box,
        colourBar(m.min, m.max),
        el('p', { className: 'range muted', text: `min ${formatNumber(m.min)} · mean ${formatNumber(m.mean)} · max ${formatNumber(m.max)}${copy ? ' · gray: no negative weights, a copy of the input' : ''}` }));
      if (copy) fig.querySelector('.colourbar').classList.add('gray-map');
      fig.style.width = `${Math.max(110, scrolls ? each : dispW + 2)}px`;
      return { fig, img, marker, box, scale };
    });
    for (const src of [...this.images.keys()]) if (!keep.has(src)) this.images.delete(src);
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

  /** Whether every map has loaded (for tests and the bench). */
  loaded() {
    return this.figures.every((f) => f.img.complete && f.img.naturalWidth > 0);
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
      const bw = Math.max(w, 2) + 4;
      const bh = Math.max(h, 2) + 4;
      f.marker.style.left = `${unit[1] * w + w / 2 - bw / 2}px`;
      f.marker.style.top = `${unit[0] * h + h / 2 - bh / 2}px`;
      f.marker.style.width = `${bw}px`;
      f.marker.style.height = `${bh}px`;
      f.marker.classList.toggle('pinned', pinned);
      f.marker.hidden = false;
    }
    const first = this.figures[0];
    if (unit && first && this.scrolls) {
      const box = first.box;
      const x = unit[1] * first.scale;
      const y = unit[0] * first.scale;
      if (x < box.scrollLeft || x + 1 > box.scrollLeft + box.clientWidth) box.scrollLeft = x - box.clientWidth / 2;
      if (y < box.scrollTop || y + 1 > box.scrollTop + box.clientHeight) box.scrollTop = y - box.clientHeight / 2;
    }
  }
}
