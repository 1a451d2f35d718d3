// The Network tab's answer drawn: each layer's maps in a row (the first few, then "+N more"), and
// a table of every layer's receptive field and parameters.

import { fitScale } from '../convmath.js';
import { clear, el } from '../dom.js';
import { formatInt, formatNumber, numberInWords } from '../format.js';
import { describe, pairText } from './network-layers.js';

const MAPS_SHOWN = 4;
const THUMB = 112; // css px of the longest side of a map thumbnail

/**
 * Each layer's maps in a row, with its shape; the pointer on a map reports its unit.
 * @param {HTMLElement} rows #net-rows
 * @param {object} data the /api/network answer
 * @param {{onMove: Function, onPick: Function, onLeave: Function}} on (img, event) on a map thumbnail
 */
export function drawRows(rows, data, on) {
  clear(rows);
  data.layers.forEach((layer, i) => {
    const [c, h, w] = layer.output_shape;
    const scale = fitScale(w, h, THUMB, THUMB, 8);
    const maps = layer.maps.slice(0, MAPS_SHOWN).map((m) => {
      const img = el('img', {
        className: `net-map${scale >= 1 ? ' pixelated' : ''}`, src: m.png, alt: `layer ${i + 1}, map ${m.index} (${m.name})`,
        width: Math.max(1, Math.round(w * scale)), height: Math.max(1, Math.round(h * scale)),
        dataset: { layer: String(i), channel: String(m.index) }, title: `${m.name}: ${formatNumber(m.min)} … ${formatNumber(m.max)}`,
      });
      img.addEventListener('mousemove', (e) => on.onMove(img, e));
      img.addEventListener('click', (e) => on.onPick(img, e));
      img.addEventListener('mouseleave', () => on.onLeave());
      return el('figure', { className: 'net-map-fig' }, img, el('figcaption', { className: 'muted small', text: `${m.index} · ${m.name}` }));
    });
    const more = layer.maps.length > MAPS_SHOWN ? el('span', { className: 'net-more', text: `+${layer.maps.length - MAPS_SHOWN} more` }) : null;
    rows.append(el('section', { className: 'net-row', dataset: { layer: String(i) } },
      el('h3', {}, `${i + 1} · ${describe(layer)} `, el('span', { className: 'muted', text: `→ ${c}×${h}×${w}` })),
      el('div', { className: 'net-maps' }, ...maps, more)));
  });
}

/**
 * The receptive field and parameters of every layer, one row each, and the whole stack's totals.
 * @param {HTMLElement} table #net-table tbody
 * @param {object} d the /api/network answer
 */
export function drawTable(table, d) {
  clear(table);
  const cell = (text) => el('td', { text });
  d.layers.forEach((layer, i) => {
    const rf = layer.receptive_field;
    const p = layer.parameters;
    table.append(el('tr', { dataset: { layer: String(i) } },
      el('th', { scope: 'row', text: String(i + 1) }), cell(describe(layer)), cell(layer.output_shape.join('×')),
      cell(rf ? pairText(rf.size) : '—'), cell(rf ? pairText(rf.jump) : '—'), cell(rf ? rf.start.join(', ') : '—'),
      cell(formatInt(p.weights)), cell(formatInt(p.biases)), cell(formatInt(p.multiply_adds))));
  });
  table.append(el('tr', { className: 'net-total' }, el('th', { scope: 'row', text: '' }), cell('whole stack'),
    cell(d.output_shape.join('×')), cell(''), cell(''), cell(''),
    el('td', { colspan: '2', text: `${formatInt(d.parameters)} parameters` }),
    cell(`${formatInt(d.multiply_adds)}${d.multiply_adds >= 1e6 ? ` (${numberInWords(d.multiply_adds)})` : ''}`)));
  if (d.layers.some((l) => !l.receptive_field)) {
    table.append(el('tr', {}, el('td', { colspan: '9', className: 'muted', text: 'From a transposed conv on, neighbouring units are a fraction of an input pixel apart: there is no whole-pixel size and jump, but each unit still has its box (hover it).' })));
  }
}
