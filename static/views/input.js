// The input panel: the image with its padding, lines no output reads, and the receptive field
// of the current unit (window box and every dilated tap). Drawing only.

import { fitScale } from '../convmath.js';
import { sizeCanvas } from '../dom.js';

/** Accent colours, as in style.css. */
const ACCENT = '#e4572e';
const TAP = '#1f6fd1';
const TAP_PAD = '#f0a202';

export class InputView {
  /**
   * @param {HTMLElement} root the .input-view container
   */
  constructor(root) {
    this.root = root;
    this.img = root.querySelector('#input-img');
    this.base = root.querySelector('#input-canvas');
    this.overlay = root.querySelector('#overlay');
    this.box = root.querySelector('#rf-box');
    this.geom = null;
    this.scale = 1;
    this.unused = { rows: [], cols: [] };
  }

  /**
   * Set the image source (the stored working image) and resolve when it has loaded.
   * @param {string} src
   * @returns {Promise<void>}
   */
  load(src) {
    return new Promise((resolve, reject) => {
      if (this.img.getAttribute('src') === src && this.img.complete && this.img.naturalWidth) {
        resolve();
        return;
      }
      this.img.onload = () => resolve();
      this.img.onerror = () => reject(new Error('the image could not be loaded'));
      this.img.src = src;
    });
  }

  /**
   * Draw the padded input whole at the largest scale that fits its box (a whole factor when it
   * is enlarged, smooth when it shrinks), or 1:1 in a scroll box; the gray image in gray mode.
   * Never-read lines are tinted only when each line is at least 3 screen pixels.
   * @param {{padding: [number, number]}} geom
   * @param {{rows: [number, number][], cols: [number, number][]}} unused
   * @param {{picture: CanvasImageSource, oneToOne: boolean, maxHeight: number}} opts
   */
  draw(geom, unused, opts) {
    this.geom = geom;
    this.unused = unused;
    const w = this.img.naturalWidth;
    const h = this.img.naturalHeight;
    if (!w || !h) return;
    const [ph, pw] = geom.padding;
    const room = Math.max(100, this.root.parentElement.clientWidth - 2 || 320);
    const paddedW = w + 2 * pw;
    const paddedH = h + 2 * ph;
    const scale = opts.oneToOne ? 1 : fitScale(paddedW, paddedH, room, opts.maxHeight, 32);
    this.root.classList.toggle('scrolls', opts.oneToOne && (paddedW > room || paddedH > opts.maxHeight));
    this.root.style.maxHeight = opts.oneToOne ? `${opts.maxHeight}px` : '';
    this.scale = scale;
    const cw = paddedW * scale;
    const ch = paddedH * scale;
    const ctx = sizeCanvas(this.base, cw, ch);
    ctx.imageSmoothingEnabled = scale < 1;
    this.base.classList.toggle('pixelated', scale >= 1);
    ctx.fillStyle = '#c8c8c8';
    ctx.fillRect(0, 0, cw, ch);
    // Padding as a light checker so it reads as "zeros, not the image".
    ctx.fillStyle = '#b4b4b4';
    if ((ph || pw) && scale >= 2) {
      for (let r = 0; r < paddedH; r++) {
        for (let c = 0; c < paddedW; c++) {
          const inside = r >= ph && r < ph + h && c >= pw && c < pw + w;
          if (!inside && (r + c) % 2 === 0) ctx.fillRect(c * scale, r * scale, scale, scale);
        }
      }
    }
    ctx.drawImage(opts.picture, pw * scale, ph * scale, w * scale, h * scale);
    this.tinted = scale >= 3;
    if (this.tinted) {
      ctx.fillStyle = 'rgba(230, 0, 120, 0.35)';
      for (const [a, b] of unused.rows) ctx.fillRect(pw * scale, (ph + a) * scale, w * scale, (b - a) * scale);
      for (const [a, b] of unused.cols) ctx.fillRect((pw + a) * scale, ph * scale, (b - a) * scale, h * scale);
    }
    this.base.hidden = false;
    this.img.hidden = true;
    sizeCanvas(this.overlay, cw, ch);
    this.overlay.hidden = false;
  }

  /**
   * Draw the receptive field of one unit, or clear it with null.
   * @param {ReturnType<import('../convmath.js').receptiveField>|null} rf
   */
  showField(rf, opts = {}) {
    const ctx = this.overlay.getContext('2d');
    const dpr = this.overlay.width / Math.max(1, parseFloat(this.overlay.style.width) || 1);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    if (!rf || !this.geom) {
      this.box.hidden = true;
      return;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const s = this.scale;
    const [ph, pw] = this.geom.padding;
    const x = (rf.left + pw) * s;
    const y = (rf.top + ph) * s;
    // Dim everything outside the window.
    ctx.fillStyle = 'rgba(255, 255, 255, 0.35)';
    ctx.fillRect(0, 0, this.overlay.width / dpr, this.overlay.height / dpr);
    ctx.clearRect(x, y, rf.width * s, rf.height * s);
    const dot = Math.max(1.5, Math.min(s * 0.35, 6));
    for (const t of rf.taps) {
      ctx.fillStyle = t.padding ? TAP_PAD : TAP;
      const cx = (t.col + pw + 0.5) * s;
      const cy = (t.row + ph + 0.5) * s;
      if (s >= 3) {
        ctx.beginPath();
        ctx.arc(cx, cy, dot, 0, Math.PI * 2);
        ctx.fill();
      } else {
        ctx.fillRect(cx - 1.5, cy - 1.5, 3, 3);
      }
    }
    if (opts.symbol === 'p') {
      // The padding band: every cell outside the image.
      const w = this.img.naturalWidth;
      const h = this.img.naturalHeight;
      ctx.fillStyle = 'rgba(123, 63, 196, 0.6)';
      ctx.fillRect(0, 0, (w + 2 * pw) * s, ph * s);
      ctx.fillRect(0, (h + ph) * s, (w + 2 * pw) * s, ph * s);
      ctx.fillRect(0, ph * s, pw * s, h * s);
      ctx.fillRect((w + pw) * s, ph * s, pw * s, h * s);
    }
    if (opts.next) {
      // The neighbouring output's window: the step between the two is the stride.
      ctx.setLineDash([4, 3]);
      ctx.strokeStyle = '#b3261e';
      ctx.lineWidth = 2;
      ctx.strokeRect((opts.next.left + pw) * s - 1, (opts.next.top + ph) * s - 1, opts.next.width * s + 2, opts.next.height * s + 2);
      ctx.setLineDash([]);
    }
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = opts.symbol === 'k' ? 4 : 2;
    ctx.strokeRect(x - 1, y - 1, rf.width * s + 2, rf.height * s + 2);
    if (Math.max(rf.width, rf.height) * s < 16) {
      // A small window at this zoom: ring it so the eye finds it.
      ctx.beginPath();
      ctx.arc(x + (rf.width * s) / 2, y + (rf.height * s) / 2, 14, 0, Math.PI * 2);
      ctx.lineWidth = 2;
      ctx.stroke();
    }
    Object.assign(this.box.dataset, {
      top: String(rf.top), left: String(rf.left), height: String(rf.height), width: String(rf.width),
    });
    this.box.style.left = `${x - 1}px`;
    this.box.style.top = `${y - 1}px`;
    this.box.style.width = `${rf.width * s + 2}px`;
    this.box.style.height = `${rf.height * s + 2}px`;
    this.box.hidden = false;
    this.reveal(x, y, rf.width * s, rf.height * s);
  }

  /** Scroll a panning input so the window at (x, y, w, h) is in sight (it is not moved otherwise). */
  reveal(x, y, w, h) {
    const r = this.root;
    if (!r.classList.contains('scrolls')) return;
    if (x < r.scrollLeft || x + w > r.scrollLeft + r.clientWidth) r.scrollLeft = Math.max(0, x + w / 2 - r.clientWidth / 2);
    if (y < r.scrollTop || y + h > r.scrollTop + r.clientHeight) r.scrollTop = Math.max(0, y + h / 2 - r.clientHeight / 2);
  }

  /**
   * The input pixel under a pointer event, or null outside the image (padding included).
   * @param {MouseEvent} event
   * @returns {{row: number, col: number}|null}
   */
  pixelAt(event) {
    if (!this.geom) return null;
    const rect = this.base.getBoundingClientRect();
    const col = Math.floor((event.clientX - rect.left) / this.scale) - this.geom.padding[1];
    const row = Math.floor((event.clientY - rect.top) / this.scale) - this.geom.padding[0];
    return { row, col };
  }
}
