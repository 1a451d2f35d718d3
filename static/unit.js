// The unit under the pointer: the output unit hovered on a feature map or on the input (the
// inverse receptive field, from convmath), or pinned by a click, Enter or the URL. It is drawn
// in the same accent everywhere: its window and taps on the input, its pixel on every map.

import { geometryOf, nearestUnit, parsePair, receptiveField } from './convmath.js';

const $ = (sel) => document.querySelector(sel);
const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

export class UnitPointer {
  /**
   * @param {{state: any, result: any, setState: Function}} app the live page state
   * @param {{inputView: any, mapsView: any, symbol: () => string|null, onPin: (unit: [number, number]|null) => void,
   *   onShow: (unit: [number, number]|null, pinned: boolean) => void}} opts
   */
  constructor(app, opts) {
    this.app = app;
    this.inputView = opts.inputView;
    this.mapsView = opts.mapsView;
    this.symbol = opts.symbol;
    this.onPin = opts.onPin;
    this.onShow = opts.onShow;
    this.hovered = null; // [row, col] under the pointer
  }

  /** The output (H_out, W_out) of the last answer. */
  outHW() {
    const [, ho, wo] = this.app.result.output_shape;
    return [ho, wo];
  }

  /** Clamp [row, col] to the output. */
  clamp(unit) {
    const out = this.outHW();
    return unit.map((x, a) => Math.min(Math.max(x, 0), out[a] - 1));
  }

  /** The pinned unit from the state, or null. */
  pinned() {
    const p = parsePair(this.app.state.unit);
    if (!p || !this.app.result) return null;
    return this.clamp(p);
  }

  /** Preview a unit (the pointer is over it), or stop previewing with null. */
  hover(unit) {
    this.hovered = unit;
    this.show();
  }

  /** Pin a unit (click), or unpin with null. */
  pin(unit) {
    this.app.setState({ unit: unit ? `${unit[0]},${unit[1]}` : '' });
    this.show();
    this.onPin(unit);
  }

  /** Draw the current unit (hovered, else pinned) on the input and on every map. */
  show() {
    const result = this.app.result;
    const sym = this.symbol();
    const pinned = this.pinned();
    // A formula symbol with no unit chosen shows output (0, 0), where padding is visible.
    const unit = this.hovered || pinned || (sym && result ? [0, 0] : null);
    if (!result || !unit) {
      this.inputView.showField(null);
      this.mapsView.mark(null, false);
      $('#rf-info').textContent = 'Hover a pixel of a feature map (or of the input) to see which input pixels it reads; click to pin it.';
      this.onShow(null, false);
      return;
    }
    const g = geometryOf(result.layer);
    const [, h, w] = result.input_shape;
    const rf = receptiveField(g, unit[0], unit[1], h, w);
    const next = sym === 's' && unit[1] + 1 < result.output_shape[2] ? receptiveField(g, unit[0], unit[1] + 1, h, w) : null;
    this.inputView.showField(rf, { symbol: sym, next });
    this.mapsView.mark(unit, !this.hovered && Boolean(pinned));
    const onPad = rf.taps.filter((t) => t.padding).length;
    const isPinned = Boolean(pinned) && (!this.hovered || (this.hovered[0] === pinned[0] && this.hovered[1] === pinned[1]));
    // The lens follows the pointer and the pin only: a formula symbol's picture must not move the page.
    if (this.hovered || pinned) this.onShow(unit, isPinned);
    $('#rf-info').textContent = `Output (${unit[0]}, ${unit[1]}) reads rows ${rf.top}…${rf.top + rf.height - 1}, columns ${rf.left}…${rf.left + rf.width - 1}: ${rf.taps.length} taps, ${onPad} on padding.${isPinned ? ' Pinned: arrow keys move it, Escape unpins.' : ''}`;
  }

  /**
   * Hovering the input previews the unit whose window is centred nearest the pixel; a click pins
   * it; Enter pins the centre unit, and then the arrow keys move it.
   * @param {HTMLElement} view #input-view
   */
  wireInput(view) {
    view.addEventListener('mousemove', (e) => {
      const px = this.inputView.pixelAt(e);
      const result = this.app.result;
      if (!px || !result) return;
      this.hover(nearestUnit(geometryOf(result.layer), px.row, px.col, this.outHW()));
    });
    view.addEventListener('mouseleave', () => this.hover(null));
    view.addEventListener('click', () => { if (this.hovered) this.pin(this.hovered); });
    view.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && this.app.result && !this.app.state.unit) {
        e.preventDefault();
        this.pin(this.outHW().map((n) => Math.floor(n / 2)));
      }
    });
  }

  /**
   * A feature map with the keyboard focus: Enter (or Space) pins its centre unit, or the unit
   * already pinned; then the arrow keys move it.
   * @param {HTMLElement} maps #maps
   */
  wireMaps(maps) {
    maps.addEventListener('keydown', (e) => {
      if (!e.target.closest || !e.target.closest('.fmap-box') || !this.app.result) return;
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.hovered = null;
        this.pin(this.pinned() || this.outHW().map((n) => Math.floor(n / 2)));
      }
    });
  }

  /**
   * Escape unpins; the arrow keys move the pinned unit (not while on a button or in the tab list).
   * @param {KeyboardEvent} e
   * @param {boolean} typing the key went to a text field
   * @returns {boolean} whether the key was used
   */
  onKey(e, typing) {
    if (e.key === 'Escape' && this.app.state.unit) {
      this.hovered = null;
      this.pin(null);
      return true;
    }
    const unit = this.pinned();
    const tag = (e.target.tagName || '').toLowerCase();
    if (typing || !MOVES[e.key] || !unit || tag === 'button' || e.target.closest('[role="tablist"]')) return false;
    e.preventDefault();
    this.hovered = null;
    const [dr, dc] = MOVES[e.key];
    this.pin(this.clamp([unit[0] + dr, unit[1] + dc]));
    return true;
  }
}
