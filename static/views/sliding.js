// The Sliding tab: the top-left corner of the input as a grid of cells, the kernel window moving
// by the stride over it, and the layer's outputs there filling in. "Stride = decimation" shows the
// stride-1 outputs with the kept cells marked. Values come from convmath's conv2d on the corner,
// padded only where the image really ends, so every value shown is the layer's own output there.

import { activateAll, conv2d, effectiveKernel, geometryOf, integerScale, lumaPlane, planesFromRgba, receptiveField } from '../convmath.js';
import { formatNumber, ordinal } from '../format.js';
import { colourFor, css } from '../colormap.js';
import { sizeCanvas } from '../dom.js';

const ACCENT = '#e4572e';
const CROP = 8;
const WHOLE = 12;

/** "every row", "every 2nd column". */
function every(step, noun) {
  return step === 1 ? `every ${noun}` : `every ${ordinal(step)} ${noun}`;
}

export class SlidingView {
  /**
   * @param {HTMLElement} root #tab-sliding
   * @param {() => {state: any, result: any, inputImage: HTMLImageElement, setState: Function}} getApp
   */
  constructor(root, getApp) {
    this.root = root;
    this.getApp = getApp;
    this.canvas = root.querySelector('#slide-canvas');
    this.play = root.querySelector('#slide-play');
    this.pos = root.querySelector('#slide-pos');
    this.speed = root.querySelector('#slide-speed');
    this.decimate = root.querySelector('#slide-decimate');
    this.info = root.querySelector('#slide-info');
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
  }

  /** Build the crop model for the current layer and draw the current step. */
  render(app) {
    const { result, state } = app;
    this.decimate.checked = state.decimate === '1';
    const model = this.buildModel(result, state);
    this.model = model;
    if (!model) {
      this.info.textContent = 'The kernel does not fit this crop: make the kernel or dilation smaller to see it slide.';
      return;
    }
    this.pos.max = String(model.steps - 1);
    const step = Math.min(Number(state.step) || 0, model.steps - 1);
    this.goto(step);
  }

  /** The crop's pixel values, the kernel and the outputs (stride s and stride 1). */
  buildModel(result, state) {
    const img = this.getApp().inputImage;
    if (!img.naturalWidth) return null;
    const [c, h, w] = result.input_shape;
    const g = geometryOf(result.layer);
    const eff = effectiveKernel(g);
    // A small image (up to WHOLE on a side) is shown whole, padding on every side.
    const side = (n, a) => (n <= WHOLE ? n : Math.min(n, Math.max(CROP, eff[a] - g.padding[a] + 2 * g.stride[a], 4), 20));
    const ch = side(h, 0);
    const cw = side(w, 1);
    // Zero padding after the corner only where it reaches the image's last row or column; elsewhere
    // the image goes on, and only outputs whose windows fit inside the corner are shown.
    const padEnd = [ch === h ? g.padding[0] : 0, cw === w ? g.padding[1] : 0];
    const canvas = document.createElement('canvas');
    canvas.width = cw;
    canvas.height = ch;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(img, 0, 0, cw, ch, 0, 0, cw, ch);
    const planes = planesFromRgba(ctx.getImageData(0, 0, cw, ch).data, cw, ch, c);
    const weightIndex = (state.weight || '0').split(',').map(Number);
    const j = Math.min(Math.max(weightIndex[0] || 0, 0), result.maps.length - 1);
    const fmap = result.maps[j];
    // Kernel j sees the C/g channels of its own group only.
    const groups = result.layer.groups || 1;
    const perGroup = c / groups;
    const group = Math.floor(j / (result.maps.length / groups));
    const x = planes.slice(group * perGroup, (group + 1) * perGroup);
    const opts = { bias: [fmap.bias || 0], padding: g.padding, dilation: g.dilation, paddingEnd: padEnd };
    const act = result.layer.activation;
    const out = activateAll(conv2d(x, [fmap.weights], { ...opts, stride: g.stride })[0], act);
    if (!out.length || !out[0].length) return null;
    const full = activateAll(conv2d(x, [fmap.weights], { ...opts, stride: [1, 1] })[0], act);
    const [ho, wo] = [out.length, out[0].length];
    const all = out.flat().concat(full.flat());
    return {
      g, ch, cw, ho, wo, j, name: fmap.name, out, full,
      rowsIn: g.padding[0] + ch + padEnd[0],
      colsIn: g.padding[1] + cw + padEnd[1],
      continues: [ch < h, cw < w],
      lo: Math.min(...all), hi: Math.max(...all), steps: ho * wo,
      gray: lumaPlane(planes),
    };
  }

  /** Jump to step i (0-based, row-major over the outputs). */
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

  /** Follow a unit pinned elsewhere when it lies inside the crop's output. */
  follow(unit) {
    if (!unit || !this.model) return;
    if (unit[0] < this.model.ho && unit[1] < this.model.wo) this.goto(unit[0] * this.model.wo + unit[1]);
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

  /** Draw the padded crop, the window with its taps, and the output grid. */
  draw() {
    const md = this.model;
    if (!md) return;
    const { g, ch, cw, ho, wo, rowsIn, colsIn } = md;
    const [ph, pw] = g.padding;
    const dec = this.decimate.checked;
    const outRows = dec ? md.full.length : ho;
    const outCols = dec ? md.full[0].length : wo;
    const room = Math.max(240, (this.root.clientWidth || 600) - 16);
    // Narrow screens: the output goes under the input, so the cells can be larger.
    const vertical = room < 520;
    const cell = vertical ? integerScale(Math.max(colsIn, outCols), room, 40)
      : Math.min(40, integerScale(colsIn + outCols + 2, room, 40));
    const gap = cell * 2;
    const top = 20;
    const width = vertical ? Math.max(colsIn, outCols) * cell + 2 : (colsIn + outCols) * cell + gap + 2;
    const height = vertical ? (rowsIn + outRows) * cell + 2 * top + 8 : Math.max(rowsIn, outRows) * cell + 24;
    const ctx = sizeCanvas(this.canvas, width, height);
    ctx.clearRect(0, 0, width, height);
    ctx.font = `${Math.max(8, Math.floor(cell * 0.3))}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    // Input cells.
    for (let r = 0; r < rowsIn; r++) {
      for (let q = 0; q < colsIn; q++) {
        const ir = r - ph;
        const iq = q - pw;
        const inside = ir >= 0 && ir < ch && iq >= 0 && iq < cw;
        const v = inside ? md.gray[ir][iq] : 0;
        const shade = Math.round(v * 255);
        ctx.fillStyle = inside ? `rgb(${shade}, ${shade}, ${shade})` : '#d9d9d9';
        ctx.fillRect(q * cell, top + r * cell, cell - 1, cell - 1);
        if (!inside && cell >= 10) {
          ctx.fillStyle = '#999';
          ctx.fillText('0', q * cell + cell / 2, top + r * cell + cell / 2);
        } else if (cell >= 28) {
          ctx.fillStyle = shade > 128 ? '#000' : '#fff';
          ctx.fillText(formatNumber(v, 2), q * cell + cell / 2, top + r * cell + cell / 2);
        }
      }
    }
    const m = Math.floor(this.step / wo);
    const n = this.step % wo;
    const rf = receptiveField(g, m, n, ch, cw);
    // Window and taps.
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 2;
    ctx.strokeRect((rf.left + pw) * cell - 1, top + (rf.top + ph) * cell - 1, rf.width * cell + 1, rf.height * cell + 1);
    ctx.fillStyle = 'rgba(228, 87, 46, 0.55)';
    // With numbers in the cells, each tap's dot sits in its cell's top-right corner, off the number.
    const labelled = cell >= 28;
    for (const t of rf.taps) {
      const cx = (t.col + pw) * cell + (labelled ? cell * 0.8 : cell / 2);
      const cy = top + (t.row + ph) * cell + (labelled ? cell * 0.2 : cell / 2);
      ctx.beginPath();
      ctx.arc(cx, cy, Math.max(2, cell * (labelled ? 0.12 : 0.18)), 0, Math.PI * 2);
      ctx.fill();
    }
    // Output grid.
    const ox = vertical ? 0 : colsIn * cell + gap;
    const oy = vertical ? top + rowsIn * cell + top + 8 : top;
    ctx.fillStyle = '#333';
    ctx.textAlign = 'left';
    ctx.fillText(dec ? 'stride-1 output, kept cells outlined' : `output ${ho}×${wo}`, ox, oy - 10);
    const more = [md.continues[1] ? 'right' : '', md.continues[0] ? 'down' : ''].filter(Boolean).join(' and ');
    ctx.fillText(`input's top-left ${ch}×${cw}, padding grey${more ? `; the image goes on ${more}` : ''}`, 0, 10);
    ctx.textAlign = 'center';
    for (let r = 0; r < outRows; r++) {
      for (let q = 0; q < outCols; q++) {
        const kept = !dec || (r % g.stride[0] === 0 && q % g.stride[1] === 0);
        const om = dec ? r / g.stride[0] : r;
        const on = dec ? q / g.stride[1] : q;
        const done = kept && (om * wo + on <= this.step);
        const v = dec ? md.full[r][q] : md.out[r][q];
        const x = ox + q * cell;
        const y = oy + r * cell;
        if (done || (dec && !kept)) {
          ctx.fillStyle = css(colourFor(v, md.lo, md.hi));
          ctx.globalAlpha = kept ? 1 : 0.3;
          ctx.fillRect(x, y, cell - 1, cell - 1);
          ctx.globalAlpha = 1;
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
    const cx = dec ? n * g.stride[1] : n;
    const cy = dec ? m * g.stride[0] : m;
    ctx.strokeStyle = ACCENT;
    ctx.lineWidth = 3;
    ctx.strokeRect(ox + cx * cell - 1, oy + cy * cell - 1, cell + 1, cell + 1);
    const value = md.out[m][n];
    Object.assign(this.info.dataset, { m: String(m), n: String(n), j: String(md.j), value: String(value) });
    this.info.textContent = `Step ${this.step + 1} of ${md.steps}: output (${m}, ${n}) of kernel ${md.j} (${md.name}) = ${formatNumber(value)}. `
      + `The window's top-left is at input (${rf.top}, ${rf.left}) = (s·m − p, s·n − p) = (${g.stride[0]}·${m} − ${g.padding[0]}, ${g.stride[1]}·${n} − ${g.padding[1]}).`
      + (dec ? ` At stride 1 there would be ${md.full.length}×${md.full[0].length} outputs here; stride ${g.stride.join('×')} keeps ${every(g.stride[0], 'row')} and ${every(g.stride[1], 'column')} of them.` : '');
  }
}
