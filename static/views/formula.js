// The Formula tab: the layer's formula with the current numbers, and the output-size arithmetic
// worked for each axis in MathML. Drawing only.

import { clear, el, mi, mml, mn, mo, mrow, msub } from '../dom.js';
import { describeLines, formatInt } from '../format.js';

/**
 * A formula as a row of <math> pieces that wraps between pieces on a narrow screen (MathML has
 * no line breaking of its own in browsers), read as one formula by assistive technology.
 * @param {string} label the whole formula in words
 * @param {...Element} pieces mrow contents of each piece
 * @returns {HTMLElement}
 */
function wrapping(label, ...pieces) {
  return el('div', { className: 'math-wrap', role: 'math', 'aria-label': label },
    ...pieces.map((p) => { const m = mml('math', p); m.setAttribute('aria-hidden', 'true'); return m; }));
}

/**
 * One axis of the output-size formula with its numbers, as MathML.
 * @param {any} a an `arithmetic` entry of /api/convolve
 * @returns {Element}
 */
function axisMath(a) {
  const numer = mrow(
    mn(a.size), mo('+'), mn(2), mo('·'), mn(a.padding, 'sym-p'), mo('−'), mn(a.dilation, 'sym-d'), mo('·'),
    mo('('), mn(a.kernel, 'sym-k'), mo('−'), mn(1), mo(')'), mo('−'), mn(1),
  );
  const frac = mml('mfrac', numer, mn(a.stride, 'sym-s'));
  const name = a.axis === 'rows' ? 'H' : 'W';
  return wrapping(
    `${name} out = floor((${a.size} + 2·${a.padding} − ${a.dilation}·(${a.kernel} − 1) − 1) / ${a.stride}) + 1 = floor(${a.span} / ${a.stride}) + 1 = ${a.quotient} + 1 = ${a.output}`,
    mrow(msub(mi(name), mi('out')), mo('='), mo('⌊'), frac, mo('⌋'), mo('+'), mn(1)),
    mrow(mo('='), mo('⌊'), mml('mfrac', mn(a.span), mn(a.stride, 'sym-s')), mo('⌋'), mo('+'), mn(1)),
    mrow(mo('='), mn(a.quotient), mo('+'), mn(1), mo('='), mn(a.output)),
  );
}

/**
 * The layer's formula for output (m, n) of kernel j with k, s, p, d filled in.
 * @param {any} data /api/convolve JSON
 * @returns {Element}
 */
function numbersMath(data) {
  const { kernel_size: k, stride: s, padding: p, dilation: d, activation } = data.layer;
  const sigma = activation === 'none' ? null : mi(activation === 'relu' ? 'ReLU' : activation);
  const index = (axis, idx) => mrow(
    mn(s[axis], 'sym-s'), mo('·'), mi(idx), mo('+'), mn(d[axis], 'sym-d'), mo('·'), mi(axis ? 'v' : 'u'),
    mo('−'), mn(p[axis], 'sym-p'),
  );
  const sum = (v, top) => mml('munderover', mo('∑'), mrow(mi(v), mo('='), mn(0)), mn(top, 'sym-k'));
  // Two pieces, so a narrow screen breaks the line before x: "y = σ(b + Σ Σ Σ W ·" and "x[…])".
  // With groups, kernel j sees only the C/g channels of its group, ⌊j / (J/g)⌋.
  const groups = data.layer.groups || 1;
  const perGroup = data.input_shape[0] / groups;
  const kernelsPerGroup = data.output_shape[0] / groups;
  const channel = groups === 1 ? mi('c') : mrow(
    mo('⌊'), mi('j'), mo('/'), mn(kernelsPerGroup), mo('⌋'), mo('·'), mn(perGroup), mo('+'), mi('c'));
  const first = mrow(
    msub(mi('y'), mi('j')), mo('['), mi('m'), mo(','), mi('n'), mo(']'), mo('='),
    ...(sigma ? [sigma, mo('(')] : []),
    msub(mi('b'), mi('j')), mo('+'),
    mml('munderover', mo('∑'), mrow(mi('c'), mo('='), mn(0)), mn(perGroup - 1)),
    sum('u', k[0] - 1), sum('v', k[1] - 1),
    msub(mi('W'), mi('j')), mo('['), mi('c'), mo(','), mi('u'), mo(','), mi('v'), mo(']'), mo('·'),
  );
  const second = mrow(
    msub(mi('x'), channel), mo('['), index(0, 'm'), mo(','), index(1, 'n'), mo(']'), ...(sigma ? [mo(')')] : []),
  );
  const act = sigma ? `${activation}(` : '';
  const xName = groups === 1 ? 'x c' : `x of channel floor(j / ${kernelsPerGroup}) · ${perGroup} + c`;
  const label = `y j of m, n = ${act}b j + sum over c from 0 to ${perGroup - 1}, u from 0 to ${k[0] - 1}, `
    + `v from 0 to ${k[1] - 1} of W j of c, u, v times ${xName} at ${s[0]}·m + ${d[0]}·u − ${p[0]}, `
    + `${s[1]}·n + ${d[1]}·v − ${p[1]}${sigma ? ')' : ''}`;
  return wrapping(label, first, second);
}

/** "row" or "column": what one input line of an `arithmetic` entry is. */
function lineNoun(a) {
  return a.axis === 'rows' ? 'row' : 'column';
}

/**
 * Fill the Formula tab from a /api/convolve answer.
 * @param {any} data
 * @param {{numbers: HTMLElement, arithmetic: HTMLElement, unused: HTMLElement}} nodes
 */
export function renderFormula(data, nodes) {
  clear(nodes.numbers);
  const [ho, wo] = data.output_shape.slice(1);
  nodes.numbers.append(
    el('p', { className: 'muted', text: `With this layer's numbers (m = 0…${ho - 1}, n = 0…${wo - 1}, j = 0…${data.output_shape[0] - 1}):` }),
    numbersMath(data),
  );
  nodes.numbers.hidden = false;
  clear(nodes.arithmetic);
  for (const a of data.arithmetic) {
    // The engine's steps, then the never-read lines in words, from `unused` (the data, not a line
    // of text). An older server without `formula_steps` has the same five steps first.
    const steps = a.formula_steps || a.steps.slice(0, 5);
    const unread = a.unused.length ? [`input ${describeLines(a.unused, lineNoun(a))} never read`] : [];
    nodes.arithmetic.append(el('div', { className: 'axis-card' },
      el('h4', { text: `${a.axis}: n = ${formatInt(a.size)} → ${formatInt(a.output)}` }),
      axisMath(a),
      el('ol', {}, ...steps.concat(unread).map((line) => el('li', { text: line })))));
  }
  const parts = data.arithmetic.filter((a) => a.unused.length)
    .map((a) => `input ${describeLines(a.unused, lineNoun(a))}`);
  nodes.unused.textContent = parts.length
    ? `Never read by any output (hatched pink on the input): ${parts.join('; ')}. No tap of any window lands on them: the stride stops short of them or steps over them, or the dilation's gaps do.`
    : 'Every input row and column is read by at least one output.';
}
