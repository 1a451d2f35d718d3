// The answer strip on the first screen: the question's two answers with this layer's numbers
// (where k, s, p and d are; one parameter per weight, used at every position, one summed update),
// links to the views that show them, and the question's notation mapped to ours. DOM only.

import { el, clear } from './dom.js';
import { counted, formatInt } from './format.js';

/** "3" or "3×5" for a pair. */
const pair = (p) => (p[0] === p[1] ? `${p[0]}` : `${p[0]}×${p[1]}`);

/** A link to a tab (the page's wiring switches tabs on a[data-tab]). */
function tabLink(tab, text) {
  return el('a', { href: `#tab-${tab}`, dataset: { tab }, className: 'tab-link', text });
}

/**
 * Fill the strip from a /api/convolve answer.
 * @param {any} data
 * @param {HTMLElement} root #answer
 */
export function renderAnswer(data, root) {
  const { kernel_size: k, stride: s, padding: p, dilation: d } = data.layer;
  const n = data.parameters.conv_weights;
  const m = data.parameters.positions;
  clear(root);
  root.append(
    el('div', { className: 'answer-part' },
      el('h2', { text: 'Where are k, s, p and d?' }),
      el('p', { id: 'answer-geometry' },
        el('b', { className: 'sym-k', text: `k = ${pair(k)}` }), ` bounds u and v (u = 0…${k[0] - 1}, v = 0…${k[1] - 1}); `,
        el('b', { className: 'sym-s', text: `s = ${pair(s)}` }), ` multiplies m and n (x[${s[0]}·m + …]); `,
        el('b', { className: 'sym-p', text: `p = ${pair(p)}` }), ' shifts the window into the zeros (− p); ',
        el('b', { className: 'sym-d', text: `d = ${pair(d)}` }), ' spaces the taps (d·u). ',
        tabLink('formula', 'See them in the formula'), ' · ', tabLink('sliding', 'watch the window slide'))),
    el('div', { className: 'answer-part' },
      el('h2', { text: 'One unit, or one per position?' }),
      el('p', { id: 'answer-sharing', dataset: { weights: String(n), positions: String(m) } },
        `Each of the ${counted(n, 'weight')} is one parameter used at ${counted(m, 'position')}: `,
        `its one update is the sum of ${formatInt(m)} contributions. `,
        tabLink('sharing', 'Weight sharing'), ' · ', tabLink('gradients', 'Gradients: apply a step'), ' · ',
        tabLink('dense', 'the same layer as v = σ(Mu + b)'))),
  );
}
