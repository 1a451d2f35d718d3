// The Learn tab's results, once training is done: both layers' losses on the training image, the
// shifted one and a new one, a sentence comparing them, and each layer's output maps beside the
// target's.

import { clear, colourBar, el } from '../dom.js';
import { formatInt, formatNumber, numberInWords } from '../format.js';

/** How many times a loss grew: "×1.7", "×3,200", "×13 million". */
function times(ratio) {
  return ratio >= 1e6 ? `×${numberInWords(Math.round(ratio))}` : `×${formatNumber(ratio, 2)}`;
}

/** The same in words: "1.7 times", "13 million times". */
function timesWords(ratio) {
  return `${ratio >= 1e6 ? numberInWords(Math.round(ratio)) : formatNumber(ratio, 2)} times`;
}

/**
 * One column per layer, one row per measure: it fits a phone.
 * @param {HTMLTableElement} table #learn-table
 * @param {object} done the stream's last line
 * @param {string} second the new image's name
 */
export function drawLossTable(table, done, second) {
  const [dy, dx] = done.shift;
  const layers = [['shared', done.shared], ['untied', done.untied]].filter(([, l]) => l);
  clear(table);
  table.append(el('thead', {}, el('tr', {}, el('th', { text: 'loss' }),
    ...layers.map(([name]) => el('th', { className: name, text: name === 'shared' ? 'Shared' : 'Untied' })))));
  const loss = (l, key) => {
    const v = l.test_loss[key];
    if (v === undefined) return el('td', { text: '–' });
    return el('td', { dataset: { loss: String(v) } }, formatNumber(v, 3),
      l.train_loss > 0 ? el('span', { className: 'ratio', text: `${times(v / l.train_loss)} its training loss` }) : null);
  };
  const rows = [
    ['parameters', (l) => el('td', { text: formatInt(l.parameters) })],
    ['training image', (l) => el('td', { text: formatNumber(l.train_loss, 3) })],
    [`shifted ${dy}↓ ${dx}→`, (l) => loss(l, 'shifted')],
    [`new image (${second})`, (l) => loss(l, 'second')],
  ];
  const tbody = el('tbody');
  for (const [what, cell] of rows) {
    tbody.append(el('tr', {}, el('th', { text: what }), ...layers.map(([name, l]) => {
      const td = cell(l);
      td.classList.add(name);
      return td;
    })));
  }
  table.append(tbody);
}

/** The sentence under the table: what the shift did to each layer's loss. */
export function verdict(done) {
  const [dy, dx] = done.shift;
  const s = done.shared;
  return done.untied
    ? `On the image shifted by ${dy} and ${dx} pixels, the shared layer's loss is ${timesWords(s.test_loss.shifted / s.train_loss)} its training loss: one kernel, applied everywhere, still fits. The untied layer's is ${timesWords(done.untied.test_loss.shifted / done.untied.train_loss)} its own: ${formatInt(done.untied.parameters)} weights fitted to the pixels each position saw, and wrong as soon as the pixels move.`
    : `On the image shifted by ${dy} and ${dx} pixels, the shared layer's loss is ${timesWords(s.test_loss.shifted / s.train_loss)} its training loss. Train the untied layer too to see it fail there.`;
}

/**
 * One row per image: the target's map, the shared layer's and the untied layer's, and their scale.
 * @param {HTMLElement} box #learn-maps
 * @param {object[]} maps the last line's maps
 * @param {string} second the new image's name
 * @param {number[]} shift [dy, dx] of the shifted image
 */
export function drawMaps(box, maps, second, [dy, dx]) {
  clear(box);
  const names = { train: 'Training image', shifted: `Shifted ${dy}↓ ${dx}→`, second: `New image (${second})` };
  box.append(el('div', { className: 'learn-maps-head' }, el('span'), el('strong', { text: 'target' }),
    el('strong', { text: 'shared' }), el('strong', { text: 'untied' }), el('span')));
  for (const m of maps) {
    const cell = (src, what) => (src ? el('img', { className: 'pixelated', src, alt: `${what} on the ${names[m.image].toLowerCase()}` }) : el('span', { className: 'muted', text: '–' }));
    box.append(el('div', { className: 'learn-maps-row' }, el('span', { className: 'learn-maps-name', text: names[m.image] }),
      cell(m.target, 'the target'), cell(m.shared, 'the shared layer\'s output'), cell(m.untied, 'the untied layer\'s output'),
      colourBar(m.min, m.max, 'output')));
  }
}
