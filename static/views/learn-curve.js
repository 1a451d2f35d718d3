// The Learn tab's loss curve: the shared and the untied layer's loss per step, on a log scale, as
// SVG (the path arithmetic is curvePath and logRange in train.js).

import { clear } from '../dom.js';
import { formatInt } from '../format.js';
import { curvePath, logRange } from '../train.js';

const SVG = 'http://www.w3.org/2000/svg';
const HEIGHT = 200;
const LEFT = 44; // room for the tick labels of the loss
const BOTTOM = 22; // room for the tick labels of the steps

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/** 10^e as text: "10⁻³". */
function power(e) {
  const sup = String(e).replace('-', '⁻').replace(/\d/g, (d) => '⁰¹²³⁴⁵⁶⁷⁸⁹'[Number(d)]);
  return `10${sup}`;
}

/**
 * Draw the losses of `run` so far (empty axes before a run).
 * @param {SVGSVGElement} box #learn-curve
 * @param {{steps: number, shared: number[][], untied: number[][]}|null} run [step, loss] pairs
 */
export function drawCurve(box, run) {
  const width = Math.max(240, Math.round(box.clientWidth || 480));
  box.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`);
  clear(box);
  const w = width - LEFT - 8;
  const h = HEIGHT - BOTTOM - 8;
  const points = run ? [...run.shared, ...run.untied].map((p) => p[1]) : [];
  const range = logRange(points);
  const plot = svg('g', { transform: `translate(${LEFT},8)` });
  for (let e = range[0]; e <= range[1]; e++) {
    const y = h - ((e - range[0]) / (range[1] - range[0])) * h;
    plot.append(svg('line', { x1: 0, x2: w, y1: y, y2: y, class: 'grid' }));
    const label = svg('text', { x: -6, y: y + 4, 'text-anchor': 'end', class: 'tick' });
    label.textContent = power(e);
    plot.append(label);
  }
  const steps = run ? run.steps : 1;
  for (const [x, anchor] of [[0, 'start'], [steps, 'end']]) {
    const label = svg('text', { x: (x / Math.max(1, steps)) * w, y: h + 16, 'text-anchor': anchor, class: 'tick' });
    label.textContent = `step ${formatInt(x)}`;
    plot.append(label);
  }
  if (run) {
    const shared = svg('path', { d: curvePath(run.shared, steps, range, w, h), class: 'loss shared' });
    shared.dataset.points = String(run.shared.length);
    const untied = svg('path', { d: curvePath(run.untied, steps, range, w, h), class: 'loss untied' });
    untied.dataset.points = String(run.untied.length);
    plot.append(untied, shared);
  }
  box.append(plot);
  box.dataset.points = String(run ? run.shared.length : 0);
}
