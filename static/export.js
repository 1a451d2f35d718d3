// "Copy as PyTorch": torch.nn.Conv2d with this layer's arguments, and its weights and bias as a
// tensor literal, or as a .npy file (written here, in the browser) when the literal is too long.

import { clear, el } from './dom.js';

/** Longest tensor literal put in the snippet; longer weights go in a .npy file. */
const MAX_LITERAL = 6000;

/** A nested list of numbers as a Python literal (JS shortest round-trip decimals). */
export function pyList(x) {
  if (Array.isArray(x)) return `[${x.map(pyList).join(', ')}]`;
  const s = String(x);
  return /[.e]/.test(s) || !Number.isFinite(x) ? s : `${s}.0`;
}

/** "(3, 3)" for a pair. */
const tuple = (p) => `(${p[0]}, ${p[1]})`;

/**
 * A little-endian float32 .npy file of a nested array of the given shape.
 * @param {number[]} shape
 * @param {ArrayLike<number>} flat row-major values
 * @returns {Uint8Array}
 */
export function npyBytes(shape, flat) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = `${header}${' '.repeat(pad % 64)}\n`;
  const out = new Uint8Array(10 + header.length + flat.length * 4);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const body = new DataView(out.buffer, 10 + header.length);
  for (let i = 0; i < flat.length; i++) body.setFloat32(i * 4, flat[i], true);
  return out;
}

/**
 * The snippet for a /api/convolve answer.
 * @param {any} data
 * @returns {{text: string, weights: number[][][][], bias: number[], literal: boolean}}
 */
export function pytorchSnippet(data) {
  const L = data.layer;
  const weights = data.maps.map((m) => m.weights);
  const bias = data.maps.map((m) => m.bias || 0);
  const [c, h, w] = data.input_shape;
  const shape = [weights.length, weights[0].length, L.kernel_size[0], L.kernel_size[1]];
  const wText = pyList(weights);
  const literal = wText.length <= MAX_LITERAL;
  const act = { relu: 'torch.relu(y)', sigmoid: 'torch.sigmoid(y)', tanh: 'torch.tanh(y)' }[L.activation];
  const lines = [
    'import torch',
    ...(literal ? [] : ['import numpy']),
    '',
    `conv = torch.nn.Conv2d(in_channels=${c}, out_channels=${weights.length}, kernel_size=${tuple(L.kernel_size)}, `
      + `stride=${tuple(L.stride)}, padding=${tuple(L.padding)}, dilation=${tuple(L.dilation)}, groups=${L.groups || 1}, bias=True)`,
    'with torch.no_grad():',
    literal ? `    conv.weight.copy_(torch.tensor(${wText}))  # ${shape.join('×')}`
      : `    conv.weight.copy_(torch.from_numpy(numpy.load("weights.npy")))  # ${shape.join('×')}, the file linked below`,
    `    conv.bias.copy_(torch.tensor(${pyList(bias)}))`,
    '',
    `# x: the ${L.color === 'rgb' ? 'RGB' : 'gray (luma)'} image, shape (1, ${c}, ${h}, ${w}), values in [0, 1]`,
    act ? `y = conv(x); y = ${act}  # σ = ${L.activation}` : 'y = conv(x)  # σ = none',
  ];
  return { text: lines.join('\n'), weights, bias, literal, shape };
}

/**
 * Fill the export box.
 * @param {any} data
 * @param {HTMLElement} root #export
 */
export function renderExport(data, root) {
  const snip = pytorchSnippet(data);
  clear(root);
  const pre = el('pre', { className: 'export-code', id: 'export-code', tabindex: '0', text: snip.text });
  const status = el('span', { className: 'muted small', 'aria-live': 'polite' });
  const copy = el('button', { type: 'button', id: 'export-copy', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(snip.text);
      status.textContent = 'Copied.';
    } catch {
      window.getSelection().selectAllChildren(pre);
      status.textContent = 'Selected: press Ctrl+C (⌘C) to copy.';
    }
  });
  const row = el('div', { className: 'export-row' }, copy, status);
  if (!snip.literal) {
    const blob = new Blob([npyBytes(snip.shape, snip.weights.flat(3))], { type: 'application/octet-stream' });
    row.append(el('a', { href: URL.createObjectURL(blob), download: 'weights.npy', id: 'export-npy', text: 'weights.npy' }));
  }
  row.append(el('a', { href: data.npy, id: 'export-output', text: 'the output as .npy' }));
  root.append(row, pre);
}
