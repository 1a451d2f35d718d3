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

/** What each pair field is, in a learner's words. */
const PAIR_WORDS = {
  kernel_size: ['kernel size', 'like "3" or "3,5" (rows,columns)'],
  stride: ['stride', 'like "2" or "1,2" (rows,columns)'],
  padding: ['padding', 'like "1", "1,2" (rows,columns) or "same"'],
  dilation: ['dilation', 'like "2" or "2,1" (rows,columns)'],
};

/**
 * Check the geometry fields and the bias before anything is sent, and say what is wrong next to
 * each one in words a learner understands (an empty field is an error, never a silent default).
 * The bounds are the data-min and data-max the server rendered from its Settings.
 * @param {HTMLFormElement} form
 * @returns {boolean} whether a field was bad
 */
export function markBadFields(form) {
  let bad = false;
  const say = (name, text) => {
    bad = true;
    const input = form.elements.namedItem(name);
    input.setAttribute('aria-invalid', 'true');
    const node = document.getElementById(`error-${name}`);
    if (node) node.textContent = text;
  };
  for (const [name, [noun, like]] of Object.entries(PAIR_WORDS)) {
    const input = form.elements.namedItem(name);
    if (!input) continue;
    const text = input.value.trim();
    input.removeAttribute('aria-invalid');
    const node = document.getElementById(`error-${name}`);
    if (node && node.dataset.client) { node.textContent = ''; delete node.dataset.client; }
    const min = Number(input.dataset.min);
    const max = input.dataset.max ? Number(input.dataset.max) : Infinity;
    const pair = parsePair(text);
    let msg = '';
    if (!text) msg = `Type a ${noun}: a whole number ${like}.`;
    else if (name === 'padding' && text.toLowerCase() === 'same') msg = '';
    else if (!pair) msg = `The ${noun} must be a whole number, or two separated by a comma, ${like}.`;
    else if (pair.some((v) => v < min)) msg = `The ${noun} must be at least ${min}${name === 'stride' ? ': the window moves by at least one pixel' : ''}.`;
    else if (pair.some((v) => v > max)) msg = `The ${noun} can be at most ${max} here.`;
    if (msg) {
      say(name, msg);
      if (node) node.dataset.client = '1';
    }
  }
  const bias = form.elements.namedItem('bias');
  const parts = bias.value.split(',').map((t) => t.trim());
  if (!bias.value.trim()) say('bias', 'Type a bias: a number such as 0 or 0.5 (or one per kernel, "0,1").');
  else if (parts.some((t) => t === '' || !Number.isFinite(Number(t)))) say('bias', 'The bias must be a number such as 0.5, or one number per kernel separated by commas.');
  return bad;
}

/** The server's notice that a shared link's image expired: kept until another image is chosen. */
export function showExpired(text) {
  const node = $('#error-image');
  if (!text || !node) return;
  node.dataset.expired = text;
  node.textContent = text;
}

export function clearExpired() {
  const node = $('#error-image');
  if (node) delete node.dataset.expired;
}

export function clearErrors() {
  for (const node of document.querySelectorAll('.field-error')) node.textContent = node.dataset.expired || '';
  for (const node of document.querySelectorAll('[aria-invalid="true"]')) node.removeAttribute('aria-invalid');
}

/** @param {string} field */
export function clearFieldError(field) {
  const node = document.getElementById(`error-${field}`);
  if (node) node.textContent = '';
}

/**
 * A failed upload in a learner's words, from the HTTP status (the server's detail is kept after it).
 * @param {ApiError} err
 * @returns {string}
 */
function uploadWords(err) {
  if (err.status === 413) return 'That file is too large for this server: try a smaller image (for example under 20 megapixels).';
  if (err.status === 415) return 'That file is not an image the page can read, or it is damaged or cut short: choose a PNG, JPEG, WebP or GIF file. The last image stays.';
  return err.message;
}

/**
 * Show an API error next to the control it names (or in the general slot), and in the status.
 * @param {HTMLFormElement} form
 * @param {ApiError|Error} err
 */
export function showError(form, err) {
  const field = err instanceof ApiError && err.field ? err.field : 'general';
  if (field === 'image' && err.status >= 400) err = new ApiError(err.status, uploadWords(err), field);
  const own = document.getElementById(`error-${field}`);
  const target = own || $('#error-general');
  // Next to its own control the message need not start with the field's name.
  const text = err.message.replace(/`/g, '');
  target.textContent = own && text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text;
  const input = form.elements.namedItem(field);
  if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
  // A file that could not be read leaves the layer on screen as it was: only its own slot says so.
  if (field === 'image' || field === 'image_id') return;
  $('#status').textContent = `The layer cannot be computed: ${text}`;
}
