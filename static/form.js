// The controls form: the state in and out of its fields, the +/- steppers within the bounds the
// server rendered, and errors shown next to the control they name. DOM only; no requests.

import { ApiError } from './api.js';
import { parsePair } from './convmath.js';

const $ = (sel) => document.querySelector(sel);
const FIELDS = ['kernel_size', 'stride', 'padding', 'dilation', 'groups', 'bias', 'activation', 'seed'];

/**
 * The form's values over a copy of the state (the view fields are kept).
 * @param {HTMLFormElement} form
 * @param {Record<string, string>} state
 * @param {import('./kernel-editor.js').KernelEditor} kernels
 * @returns {Record<string, string>}
 */
export function readForm(form, state, kernels) {
  const data = new FormData(form);
  const next = { ...state };
  for (const key of [...FIELDS, 'color']) next[key] = String(data.get(key) ?? '').trim();
  next.kernels = kernels.names().join(',');
  next.weights = String(data.get('weights') || '');
  if (next.weights && next.kernel_size !== state.kernel_size) {
    // Your own weights fix the kernel size; a new size means the presets at that size.
    next.weights = '';
    kernels.clearWeights();
  }
  return next;
}

/**
 * Put a state into the form's controls.
 * @param {HTMLFormElement} form
 * @param {Record<string, string>} state
 * @param {import('./kernel-editor.js').KernelEditor} kernels
 */
export function writeForm(form, state, kernels) {
  for (const key of FIELDS) {
    const input = form.elements.namedItem(key);
    if (input) input.value = state[key];
  }
  for (const radio of form.querySelectorAll('input[name="color"]')) radio.checked = radio.value === state.color;
  kernels.show(state);
  $('#image_id').value = state.image_id;
  $('#sample').value = state.sample || '';
  $('#tab-field').value = state.tab;
}

/**
 * +/- buttons: step each number of a pair field by delta, within its data-min and data-max (the
 * server renders data-max from Settings), keeping "same" and pairs sensible.
 * @param {HTMLInputElement} input
 * @param {number} delta
 * @param {{padding: [number, number]|null, oddOnly: boolean}} opts the padding "same" resolves to,
 *   and whether the kernel size must stay odd (presets such as sobel need a centre tap)
 */
export function stepField(input, delta, opts) {
  let pair = parsePair(input.value);
  if (!pair && input.value.trim().toLowerCase() === 'same') pair = opts.padding;
  if (!pair) pair = [0, 0];
  const min = Number(input.dataset.min) || 0;
  const max = input.dataset.max ? Number(input.dataset.max) : Infinity;
  const next = pair.map((x) => {
    let v = x + delta;
    if (opts.oddOnly && v % 2 === 0) v += delta;
    return Math.max(min, Math.min(max, v));
  });
  input.value = next[0] === next[1] ? String(next[0]) : `${next[0]},${next[1]}`;
}

/**
 * Name every number field that holds something not a number (the browser reports it as empty).
 * @param {HTMLFormElement} form
 * @returns {boolean} whether there was one
 */
export function markBadNumbers(form) {
  const bad = [...form.querySelectorAll('input[type="number"]')].filter((i) => i.validity && i.validity.badInput);
  for (const input of bad) {
    const node = document.getElementById(`error-${input.name}`);
    if (node) node.textContent = `${input.labels?.[0]?.textContent?.trim() || input.name}: type a whole number`;
    input.setAttribute('aria-invalid', 'true');
  }
  return bad.length > 0;
}

export function clearErrors() {
  for (const node of document.querySelectorAll('.field-error')) node.textContent = '';
  for (const node of document.querySelectorAll('[aria-invalid="true"]')) node.removeAttribute('aria-invalid');
}

/** @param {string} field */
export function clearFieldError(field) {
  const node = document.getElementById(`error-${field}`);
  if (node) node.textContent = '';
}

/**
 * Show an API error next to the control it names (or in the general slot), and in the status.
 * @param {HTMLFormElement} form
 * @param {ApiError|Error} err
 */
export function showError(form, err) {
  const field = err instanceof ApiError && err.field ? err.field : 'general';
  const own = document.getElementById(`error-${field}`);
  const target = own || $('#error-general');
  // Next to its own control the message need not start with the field's name.
  const text = err.message.replace(/`/g, '');
  target.textContent = own && text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text;
  const input = form.elements.namedItem(field);
  if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
  $('#status').textContent = `The layer cannot be computed: ${text}`;
}
