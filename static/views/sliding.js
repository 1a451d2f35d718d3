// The Sliding tab: the kernel window moving by the stride over the whole output (or over the
// block around the pinned unit), a block of output cells with their values, and the current
// unit's sum written out by the same lens as on the first screen. "Stride = decimation" shows the
// stride-1 outputs of the block with the kept cells marked. Values come from convmath.unitTerms
// on the layer's own input planes, so every number is the layer's output there.

import { activate, effectiveKernel, firstChannel, geometryOf, integerScale, unitTerms } from '../convmath.js';
import { formatNumber, ordinal } from '../format.js';
import { colourFor, css } from '../colormap.js';
import { sizeCanvas } from '../dom.js';
import { Lens } from './lens.js';

const ACCENT = '#e4572e';
const BLOCK = 6;

/** "every row", "every 2nd column". */
function every(step, noun) {
  return step === 1 ? `every ${noun}` : `every ${ordinal(step)} ${noun}`;
}

export class SlidingView {
  /**
   * @param {HTMLElement} root #tab-sliding
   * @param {() => {state: any, result: any, inputImage: HTMLImageElement, setState: Function, pixels: any, pinned: Function}} getApp
   */
  constructor(root, getApp) {
    this.root = root;
    this.getApp = getApp;
    this.canvas = root.querySelector('#slide-canvas');
    this.play = root.querySelector('#slide-play');
    this.pos = root.querySelector('#slide-pos');
    this.speed = root.querySelector('#slide-speed');
    this.decimate = root.querySelector('#slide-decimate');
    this.sweep = root.querySelector('#slide-sweep');
    this.info = root.querySelector('#slide-info');
    this.caption = root.querySelector('#slide-caption');
    this.lens = new Lens(root.querySelector('#slide-lens'));
    this.timer = 0;
    this.model = null;
    this.play.addEventListener('click', () => this.toggle());
    root.querySelector('#slide-step').addEventListener('click', () => { this.pause(); this.advance(1); });
    this.pos.addEventListener('input', () => { this.pause(); this.goto(Number(this.pos.value)); });
    this.speed.addEventListener('input', () => {
      root.querySelector('#slide-speed-out').textContent = this.speed.value;
      if (this.timer) { this.pause(); this.start(); }
    });
    this.decimate.addEventListener('change', () => {
      this.getApp().setState({ decimate: this.decimate.checked ? '1' : '' }, true);
      this.draw();
    });
    this.sweep.addEventListener('change', () => {
      this.getApp().setState({ sweep: this.sweep.value }, true);
      this.render(this.getApp());
    });
  }

  /** Set up the sweep for the current layer and draw the current step. */
  render(app) {
    const { result, state } = app;
    this.decimate.checked = state.decimate === '1';
    this.sweep.value = state.sweep === 'region' ? 'region' : '';
    const pixels = app.pixels;
    if (!pixels || !pixels.ready) return;
    const [c, h, w] = result.input_shape;
    const [, ho, wo] = result.output_shape;
    const g = geometryOf(result.layer);
    const j = Math.min(Math.max(Number((state.weight || '0').split(',')[0]) || 0, 0), result.maps.length - 1);
    const fmap = result.maps[j];
    const pinned = app.pinned ? app.pinned() : null;
    // The region swept: the whole output, or the block of outputs around the pinned unit.
    let region = { top: 0, left: 0, rows: ho, cols: wo };
    if (this.sweep.value === 'region') {
      const at = pinned || [0, 0];
      const top = Math.max(0, Math.min(ho - BLOCK, at[0] - Math.floor(BLOCK / 2)));
      const left = Math.max(0, Math.min(wo - BLOCK, at[1] - Math.floor(BLOCK / 2)));
      region = { top, left, rows: Math.min(BLOCK, ho), cols: Math.min(BLOCK, wo) };
    }
    this.model = {
      g, c, h, w, ho, wo, j, fmap, region, planes: pixels.planes(result.layer.color).planes,
      first: firstChannel(j, result.maps.length, c, result.layer.groups || 1),
      act: result.layer.activation, steps: region.rows * region.cols, color: result.layer.color,
      lo: fmap.min, hi: fmap.max,
    };
    this.pos.max = String(this.model.steps - 1);
    let step = Math.min(Number(state.step) || 0, this.model.steps - 1);
    // A pinned unit and no step chosen yet: start the sweep at the pinned unit.
    if (!Number(state.step) && pinned) step = (pinned[0] - region.top) * region.cols + (pinned[1] - region.left);
    this.goto(step);
  }

  /** Output unit (m, n) of step i. */
  unitOf(i) {
    const { region } = this.model;
    return [region.top + Math.floor(i / region.cols), region.left + (i % region.cols)];
  }

  /** Jump to step i (0-based, row-major over the swept region). */
  goto(i) {
    if (!this.model) return;
    this.step = ((i % this.model.steps) + this.model.steps) % this.model.steps;
    this.pos.value = String(this.step);
    this.root.querySelector('#slide-pos-out').textContent = String(this.step);
    this.draw();
    // While playing, the URL is written on pause only (browsers throttle frequent history calls).
    if (!this.timer) this.getApp().setState({ step: String(this.step) });
  }

  advance(n) {
    this.goto((this.step || 0) + n);
  }

  /** Follow a unit pinned elsewhere when it lies in the swept region. */
  follow(unit) {
    if (!unit || !this.model) return;
    const { region } = this.model;
    if (this.sweep.value === 'region') { this.render(this.getApp()); return; }
    const r = unit[0] - region.top;
    const q = unit[1] - region.left;
    if (r >= 0 && q >= 0 && r < region.rows && q < region.cols) this.goto(r * region.cols + q);
  }

  start() {
    if (this.timer || !this.model) return;
    this.timer = window.setInterval(() => this.advance(1), 1000 / Number(this.speed.value));
    this.play.textContent = 'Pause';
    this.play.setAttribute('aria-pressed', 'true');
  }

  pause() {
    const wasPlaying = Boolean(this.timer);
    window.clearInterval(this.timer);
    this.timer = 0;
    if (wasPlaying && this.model) this.getApp().setState({ step: String(this.step) });
    this.play.textContent = 'Play';
    this.play.setAttribute('aria-pressed', 'false');
  }

  toggle() {
    if (this.timer) this.pause();
    else this.start();
  }

  /** The value of output (m, n) with geometry g (the layer's, or its stride-1 twin). */
  value(g, m, n) {
    const md = this.model;
    return unitTerms(md.planes, md.h, md.w, md.fmap.weights, md.fmap.bias || 0, g, m, n, md.act, md.first).y;
  }

  /** Draw the block of outputs around the current unit, the input cells its windows read, the window and its taps. */
  draw() {
    const md = this.model;
    if (!md) return;
    const { g, region } = md;
    const [m, n] = this.unitOf(this.step);
    // The block of outputs shown: BLOCK×BLOCK around the current unit, inside the swept region.
    const bRows = Math.min(BLOCK, region.rows);
    const bCols = Math.min(BLOCK, region.cols);
    const bTop = region.top + Math.min(region.rows - bRows, Math.floor((m - region.top) / bRows) * bRows);
    const bLeft = region.left + Math.min(region.cols - bCols, Math.floor((n - region.left) / bCols) * bCols);
    const eff = effectiveKernel(g);
    const inTop = g.stride[0] * bTop - g.padding[0];
    const inLeft = g.stride[1] * bLeft - g.padding[1];
    const rowsIn = g.stride[0] * (bRows - 1) + eff[0];
    const colsIn = g.stride[1] * (bCols - 1) + eff[1];
    const dec = this.decimate.checked;
    const g1 = { ...g, stride: [1, 1] };
    const outRows = dec ? g.stride[0] * (bRows - 1) + 1 : bRows;
    const outCols = dec ? g.stride[1] * (bCols - 1) + 1 : bCols;
    const room = Math.max(240, (this.root.clientWidth || 600) - 16);
    const vertical = room < 560;
    const cell = Math.max(6, vertical ? integerScale(Math.max(colsIn, outCols), room, 44)
      : Math.min(44, integerScale(colsIn + outCols + 2, room, 44)));
    const gap = cell * 2;
    const top = 18;
    const width = vertical ? Math.max(colsIn, outCols) * cell + 2 : (colsIn + outCols) * cell + gap + 2;
    const height = vertical ? (rowsIn + outRows) * cell + 2 * top + 8 : Math.max(rowsIn, outRows) * cell + top + 4;
    const ctx = sizeCanvas(this.canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    const big = cell >= 30;
    ctx.font = `${Math.max(8, Math.floor(cell * 0.28))}px system-ui, sans-serif`;
    for (let r = 0; r < rowsIn; r++) {
      for (let q = 0; q < colsIn; q++) {
        const ir = inTop + r;
        const iq = inLeft + q;
        const inside = ir >= 0 && ir < md.h && iq >= 0 && iq < md.w;
        const px = inside ? md.planes.map((p) => p[ir * md.w + iq]) : [0];
        const rgb = px.length === 3 ? px.map((v) => Math.round(v * 255)) : [0, 0, 0].map(() => Math.round(px[0] * 255));
        ctx.fillStyle = inside ? css(rgb) : '#d9d9d9';
        ctx.fillRect(q * cell, top + r * cell, cell - 1, cell - 1);
        const light = rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114 > 128;
        if (!inside && cell >= 10) {
          ctx.fillStyle = '#888';
          ctx.fillText('0', q * cell + cell / 2, top + r * cell + cell / 2);
        } else if (big && px.length === 1) {
          ctx.fillStyle = light ? '#000' : '#fff';
          ctx.fillText(formatNumber(px[0], 2), q * cell + cell / 2, top + r * cell + cell / 2);
        }
      }
    }
    // Window and taps of the current unit.
    const wx = (g.stride[1] * n - g.padding[1] - inLeft) * cell;
    const wy = top + (g.stride[0] * m - g.padding[0] - inTop) * cell;
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 2;
    ctx.strokeRect(wx - 1, wy - 1, eff[1] * cell + 1, eff[0] * cell + 1);
    ctx.fillStyle = 'rgba(228, 87, 46, 0.7)';
    for (let u = 0; u < g.kernel[0]; u++) {
      for (let v = 0; v < g.kernel[1]; v++) {
        ctx.beginPath();
        ctx.arc(wx + (g.dilation[1] * v + (big ? 0.82 : 0.5)) * cell, wy + (g.dilation[0] * u + (big ? 0.18 : 0.5)) * cell, Math.max(2, cell * (big ? 0.1 : 0.18)), 0, Math.PI * 2);
        ctx.fill();
      }
    }
    // Output cells, with their values.
    const ox = vertical ? 0 : colsIn * cell + gap;
    const oy = vertical ? top + rowsIn * cell + top + 8 : top;
    ctx.textAlign = 'left';
    ctx.fillStyle = '#333';
    ctx.fillText(dec ? 'stride-1 outputs; the layer keeps the outlined ones' : `outputs (${bTop}…${bTop + bRows - 1}, ${bLeft}…${bLeft + bCols - 1})`, ox, oy - 9);
    ctx.fillText(`input rows ${inTop}…${inTop + rowsIn - 1}, columns ${inLeft}…${inLeft + colsIn - 1}`, 0, 9);
    ctx.textAlign = 'center';
    const current = (m - bTop) * bCols + (n - bLeft);
    for (let r = 0; r < outRows; r++) {
      for (let q = 0; q < outCols; q++) {
        const kept = !dec || (r % g.stride[0] === 0 && q % g.stride[1] === 0);
        const om = dec ? r / g.stride[0] : r;
        const on = dec ? q / g.stride[1] : q;
        const order = kept ? om * bCols + on : -1;
        const done = kept && order <= current;
        const v = dec ? this.value(g1, g.stride[0] * bTop + r, g.stride[1] * bLeft + q) : this.value(g, bTop + r, bLeft + q);
        const x = ox + q * cell;
        const y = oy + r * cell;
        if (done || (dec && !kept)) {
          const rgb = colourFor(v, md.lo, md.hi);
          ctx.fillStyle = css(rgb);
          ctx.globalAlpha = kept ? 1 : 0.35;
          ctx.fillRect(x, y, cell - 1, cell - 1);
          ctx.globalAlpha = 1;
          if (big) {
            ctx.fillStyle = rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114 > 140 ? '#000' : '#fff';
            ctx.fillText(formatNumber(v, 2), x + cell / 2, y + cell / 2);
          }
        } else {
          ctx.strokeStyle = '#ccc';
          ctx.lineWidth = 1;
          ctx.strokeRect(x + 0.5, y + 0.5, cell - 2, cell - 2);
        }
        if (dec && kept) {
          ctx.strokeStyle = '#111';
          ctx.lineWidth = 1.5;
          ctx.strokeRect(x + 0.75, y + 0.75, cell - 2.5, cell - 2.5);
        }
      }
    }
    const cx = dec ? (n - bLeft) * g.stride[1] : n - bLeft;
    const cy = dec ? (m - bTop) * g.stride[0] : m - bTop;
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 3;
    ctx.strokeRect(ox + cx * cell - 1, oy + cy * cell - 1, cell + 1, cell + 1);
    const value = this.value(g, m, n);
    Object.assign(this.info.dataset, { m: String(m), n: String(n), j: String(md.j), value: String(value) });
    this.caption.textContent = `Kernel ${md.j} (${md.fmap.name})${md.color === 'rgb' ? ': cells show the RGB pixels; the lens lists each channel' : ': cells show the gray value the layer reads'}. Sweeping ${this.sweep.value === 'region' ? `the ${region.rows}×${region.cols} block around the pinned unit` : `the whole ${md.ho}×${md.wo} output`}: ${md.steps} steps.`;
    this.info.textContent = `Step ${this.step + 1} of ${md.steps}: output (${m}, ${n}) = ${formatNumber(activate(value, 'none'))}. `
      + `The window's top-left is at input (s·m − p, s·n − p) = (${g.stride[0]}·${m} − ${g.padding[0]}, ${g.stride[1]}·${n} − ${g.padding[1]}) = (${g.stride[0] * m - g.padding[0]}, ${g.stride[1] * n - g.padding[1]}).`
      + (dec ? ` At stride 1 this block would have ${outRows}×${outCols} outputs; stride ${g.stride.join('×')} keeps ${every(g.stride[0], 'row')} and ${every(g.stride[1], 'column')} of them.` : '');
    const app = this.getApp();
    this.lens.show({ result: app.result, pixels: app.pixels, img: app.inputImage }, [m, n], md.j);
  }
}
