// ConvLens page controller: reads the form, keeps the state in the URL, asks the API, and hands
// the answers to the views. The maths lives in convmath.js, the drawing in views/.

import { ApiError, Channel, Stale, onBusy, postBinary, postJson, uploadImage } from './api.js';
import { counted, formatInt, parsePair, receptiveField } from './convmath.js';
import { clear, el } from './dom.js';
import { DEFAULTS, TABS, fromQuery, layerChanged, layerParams, toQuery } from './state.js';
import { renderFormula } from './views/formula.js';
import { InputView } from './views/input.js';
import { MapsView } from './views/maps.js';
import { SlidingView } from './views/sliding.js';
import { SharingView } from './views/sharing.js';
import { DenseView } from './views/dense.js';
import { GradientsView } from './views/gradients.js';
import { KernelList } from './views/kernels.js';
import { FormulaPicture } from './views/formulapic.js';

const $ = (sel) => document.querySelector(sel);
const DEBOUNCE_MS = 150;
const BUSY_AFTER_MS = 200;

const form = $('#controls');
const workspace = $('#workspace');

/** The current state (see state.js) and what the server answered for it. */
let state = fromQuery(location.search);
let layer = null; // last /api/convolve answer for `state`
let hoverUnit = null; // [row, col] under the pointer
let imageBlob = null; // the user's file, kept to upload again after a 404
let debounce = 0;
let layerFailed = false; // the current settings have no answer: tabs wait for a valid layer
let renders = 0; // completed renders, for tests and the curious (body[data-rendered])

const convolveChannel = new Channel();
const inputView = new InputView($('#input-view'));
const mapsView = new MapsView($('#maps'), {
  onHover: (unit) => { hoverUnit = unit; showUnit(); },
  onPick: (unit) => pinUnit(unit),
});
const views = {};
const formulaPicture = new FormulaPicture($('#formula-pic'), $('#formula-pic-text'));
let symbol = null; // 'k' | 's' | 'p' | 'd' hovered in the Formula tab
let stickySymbol = null; // the same, chosen with a button (touch and keyboard)
const kernelList = new KernelList($('#kernel-list'), {
  presets: [...$('#kernel-add').options].map((o) => o.value).filter(Boolean),
  onChange: (change) => onKernelChange(change),
});

// ------------------------------------------------------------------ state ⇄ form

/** Read the form into a copy of the state (the view fields are kept). */
function readForm() {
  const data = new FormData(form);
  const next = { ...state };
  for (const key of ['kernel_size', 'stride', 'padding', 'dilation', 'groups', 'bias', 'activation', 'color', 'seed']) {
    next[key] = String(data.get(key) ?? '').trim();
  }
  next.kernels = kernelNames().join(',');
  next.weights = String(data.get('weights') || '');
  if (next.weights && next.kernel_size !== state.kernel_size) {
    // Your own weights fix the kernel size; a new size means the presets at that size.
    next.weights = '';
    $('#weights').value = '';
  }
  return next;
}

/** Put a state into the form controls. */
function writeForm(s) {
  for (const key of ['kernel_size', 'stride', 'padding', 'dilation', 'groups', 'bias', 'activation', 'seed']) {
    const input = form.elements.namedItem(key);
    if (input) input.value = s[key];
  }
  for (const radio of form.querySelectorAll('input[name="color"]')) radio.checked = radio.value === s.color;
  const names = s.kernels.split(',').map((n) => n.trim()).filter(Boolean);
  kernelList.render(names, Number(s.seed) || 0, Boolean(s.weights));
  $('#weights').value = s.weights;
  $('#image_id').value = s.image_id;
  $('#sample').value = s.sample || '';
  updateKernelCount();
  $('#tab-field').value = s.tab;
}

// ------------------------------------------------------------------ the kernel list

/** The kernel names in the list, in order. */
function kernelNames() {
  return [...form.querySelectorAll('#kernel-list select[name="kernels"]')].map((s) => s.value).filter(Boolean);
}

function updateKernelCount() {
  $('#kernels-count').textContent = `${kernelNames().length} of ${kernelList.max}`;
}

/** Each kernel's weights as J×kh×kw, in the sense of the API's `weights` (summed over channels). */
function planesOf(data) {
  return data.maps.map((m) => m.weights[0].map((row, u) => row.map((_, v) => m.weights.reduce((acc, plane) => acc + plane[u][v], 0))));
}

/**
 * Which kernels of your own weights differ from the preset they started as (the k-th kernel of
 * the list is its preset at seed + k, as the API builds them). True where unsure.
 * @returns {Promise<boolean[]>}
 */
async function editedKernels(names, seed) {
  const own = ownWeights() || [];
  return Promise.all(names.map(async (name, k) => {
    const mine = own[k];
    if (!mine || !Array.isArray(mine[0]) || Array.isArray(mine[0][0])) return true;
    try {
      const ref = await presetPlane(name, seed + k);
      return mine.some((row, u) => row.some((v, q) => Math.abs(v - ref[u][q]) > 1e-6 * Math.max(1, Math.abs(ref[u][q]))));
    } catch {
      return true;
    }
  }));
}

/** The user's own weights (the hidden field) as a nested list, or null. */
function ownWeights() {
  const text = $('#weights').value;
  if (!text) return null;
  try {
    const w = JSON.parse(text);
    return Array.isArray(w) ? w : null;
  } catch {
    return null;
  }
}

const presetCache = new Map();

/**
 * One preset's kh×kw weights at the layer's kernel size (for adding a kernel to your own weights).
 * @param {string} name
 * @param {number} seed
 * @returns {Promise<number[][]>}
 */
async function presetPlane(name, seed) {
  const size = layer ? layer.layer.kernel_size.join(',') : state.kernel_size;
  const key = `${size}|${seed}`;
  if (!presetCache.has(key)) {
    const res = await fetch(`/api/presets?size=${encodeURIComponent(size)}&seed=${seed}`);
    if (!res.ok) throw new ApiError(res.status, 'the presets could not be loaded', 'kernels');
    presetCache.set(key, await res.json());
  }
  const p = presetCache.get(key).presets.find((q) => q.name === name);
  if (!p || !p.weights) throw new ApiError(422, `${name} has no ${size.replace(',', '×')} version`, 'kernels');
  return p.weights;
}

/** A plane shaped like the entries of `w` (J×kh×kw, or J×C×kh×kw spread over C). */
function likeEntries(w, plane) {
  if (!w.length || !Array.isArray(w[0][0][0])) return plane;
  const c = w[0].length;
  return Array.from({ length: c }, () => plane.map((row) => row.map((x) => x / c)));
}

function kernelMessage(text) {
  $('#error-kernels').textContent = text;
}

/**
 * The user changed the kernel list: add, remove, another preset, or a weight in a grid.
 * @param {{kind: string, index: number, name?: string}} change
 */
async function onKernelChange(change) {
  const names = kernelNames();
  kernelMessage('');
  const own = ownWeights();
  const seed = Number(state.seed) || 0;
  try {
    if (change.kind === 'weights') {
      const base = layer ? planesOf(layer) : [];
      $('#weights').value = JSON.stringify(kernelList.readGrids(base));
    } else if (change.kind === 'remove') {
      if (names.length <= 1) {
        kernelMessage('A layer needs at least one kernel.');
        return;
      }
      names.splice(change.index, 1);
      if (own) {
        own.splice(change.index, 1);
        $('#weights').value = JSON.stringify(own);
      }
    } else if (change.kind === 'add') {
      if (names.length >= kernelList.max) {
        kernelMessage(`A layer here holds at most ${kernelList.max} kernels: remove one to add ${change.name}.`);
        return;
      }
      if (own) own.push(likeEntries(own, await presetPlane(change.name, seed + names.length)));
      names.push(change.name);
      if (own) $('#weights').value = JSON.stringify(own);
    } else if (change.kind === 'preset') {
      if (own) {
        own[change.index] = likeEntries(own, await presetPlane(change.name, seed + change.index));
        $('#weights').value = JSON.stringify(own);
      }
      names[change.index] = change.name;
    }
  } catch (err) {
    kernelMessage(err.message);
    return;
  }
  if (change.kind !== 'weights') {
    kernelList.render(names, seed, Boolean($('#weights').value));
    updateKernelCount();
  }
  schedule();
}

/**
 * Record the state in the URL: push a history entry for a deliberate change, replace it while
 * the user is still typing or hovering.
 * @param {boolean} push
 */
function saveUrl(push) {
  const query = toQuery(state);
  if (query === location.search) return;
  if (push) history.pushState(null, '', query);
  else history.replaceState(null, '', query);
}

// ------------------------------------------------------------------ errors and busy

function clearErrors() {
  for (const node of document.querySelectorAll('.field-error')) node.textContent = '';
  for (const node of document.querySelectorAll('[aria-invalid="true"]')) node.removeAttribute('aria-invalid');
}

/**
 * Show an API error next to the control it names (or in the general slot).
 * @param {ApiError|Error} err
 */
function showError(err) {
  const field = err instanceof ApiError && err.field ? err.field : 'general';
  const own = document.getElementById(`error-${field}`);
  const target = own || $('#error-general');
  // Next to its own control the message need not start with the field's name.
  const text = err.message.replace(/`/g, '');
  target.textContent = own && text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text;
  const input = form.elements.namedItem(field);
  if (input && input.setAttribute) input.setAttribute('aria-invalid', 'true');
  $('#status').textContent = `The layer cannot be computed: ${err.message.replace(/`/g, '')}`;
}

let busyTimer = 0;
onBusy((count) => {
  const bar = $('#progress');
  if (count > 0 && !busyTimer && bar.hidden) {
    busyTimer = window.setTimeout(() => { bar.hidden = false; busyTimer = 0; }, BUSY_AFTER_MS);
  } else if (count === 0) {
    window.clearTimeout(busyTimer);
    busyTimer = 0;
    bar.hidden = true;
  }
  document.body.toggleAttribute('data-busy', count > 0);
});

// ------------------------------------------------------------------ the image

/** Upload the user's file (or a sample fetched from /static) and switch the state to it. */
async function useFile(file) {
  clearErrors();
  try {
    const info = await uploadImage(file);
    imageBlob = file;
    state = { ...state, image_id: info.id, sample: '', unit: '', crop: '' };
    writeForm(state);
    await refresh(true);
  } catch (err) {
    if (!(err instanceof Stale)) showError(err instanceof ApiError ? err : new ApiError(0, String(err), 'image'));
  }
}

/** Make sure the server has the image again after a 404 (the cache forgot it). */
async function reupload() {
  let blob = imageBlob;
  if (!blob && state.sample) {
    const res = await fetch(`/static/samples/${encodeURIComponent(state.sample)}.png`);
    if (!res.ok) throw new ApiError(404, 'the sample image is missing', 'image');
    blob = await res.blob();
  }
  if (!blob) throw new ApiError(404, 'This image is no longer on the server: please upload it again.', 'image');
  const info = await uploadImage(blob, 'image.png');
  state = { ...state, image_id: info.id };
  $('#image_id').value = info.id;
  saveUrl(false);
}

/**
 * POST to the API with the image and layer fields; after a 404 for the image, upload it again
 * (if this page still has it) and retry once.
 * @param {string} path
 * @param {Record<string, string>} extra
 * @param {AbortSignal} [signal]
 */
async function callApi(path, extra = {}, signal = undefined, raw = false) {
  const attempt = () => {
    const body = layerParams(state);
    body.set('image_id', state.image_id);
    for (const [k, v] of Object.entries(extra)) {
      if (v === null) body.delete(k);
      else body.set(k, v);
    }
    return raw ? postBinary(path, body, signal) : postJson(path, body, signal);
  };
  try {
    return await attempt();
  } catch (err) {
    if (err instanceof ApiError && err.status === 404 && (imageBlob || state.sample)) {
      await reupload();
      return attempt();
    }
    throw err;
  }
}

// ------------------------------------------------------------------ geometry helpers

/** The layer's geometry as numbers, from the last answer. */
function geometry() {
  if (!layer) return null;
  return {
    kernel: layer.layer.kernel_size,
    stride: layer.layer.stride,
    padding: layer.layer.padding,
    dilation: layer.layer.dilation,
  };
}

/** The pinned unit from the state, or null. */
function pinned() {
  const p = parsePair(state.unit);
  if (!p || !layer) return null;
  const [, ho, wo] = layer.output_shape;
  return [Math.min(Math.max(p[0], 0), ho - 1), Math.min(Math.max(p[1], 0), wo - 1)];
}

/** Draw the current unit (hovered, else pinned) on the input and on every map. */
function showUnit() {
  const g = geometry();
  const sym = symbol || stickySymbol;
  // A formula symbol with no unit chosen shows output (0, 0), where padding is visible.
  const unit = hoverUnit || pinned() || (sym && layer ? [0, 0] : null);
  if (!g || !unit) {
    inputView.showField(null);
    mapsView.mark(null, false);
    $('#rf-info').textContent = 'Hover a pixel of a feature map (or of the input) to see which input pixels it reads; click to pin it.';
    return;
  }
  const [, h, w] = layer.input_shape;
  const rf = receptiveField(g, unit[0], unit[1], h, w);
  const next = sym === 's' && unit[1] + 1 < layer.output_shape[2] ? receptiveField(g, unit[0], unit[1] + 1, h, w) : null;
  inputView.showField(rf, { symbol: sym, next });
  mapsView.mark(unit, !hoverUnit && Boolean(pinned()));
  const onPad = rf.taps.filter((t) => t.padding).length;
  const isPinned = Boolean(pinned()) && (!hoverUnit || (hoverUnit[0] === pinned()[0] && hoverUnit[1] === pinned()[1]));
  $('#rf-info').textContent = `Output (${unit[0]}, ${unit[1]}) reads rows ${rf.top}…${rf.top + rf.height - 1}, columns ${rf.left}…${rf.left + rf.width - 1}: ${rf.taps.length} taps, ${onPad} on padding.${isPinned ? ' Pinned: arrow keys move it, Escape unpins.' : ''}`;
}

/** Pin a unit (click), or unpin with null. */
function pinUnit(unit) {
  state = { ...state, unit: unit ? `${unit[0]},${unit[1]}` : '' };
  saveUrl(false);
  showUnit();
  views.sliding?.follow(unit);
  views.gradients?.mark(pinned());
}

// ------------------------------------------------------------------ rendering

/** The one-line answer: shapes and sharing as a sentence. */
function statusSentence(data) {
  const p = data.parameters;
  const weights = formatInt(p.conv_weights);
  return `${data.input_shape.join('×')} input → ${data.output_shape.join('×')} output · ${weights} weights shared across ${counted(p.positions, 'position')}`;
}

/** Redraw the input panel (padding and unused lines) for the current answer. */
function drawInput() {
  if (!layer) return;
  const g = geometry();
  const unused = {
    rows: layer.arithmetic[0].unused,
    cols: layer.arithmetic[1].unused,
  };
  inputView.draw(g, unused);
  const [c, h, w] = layer.input_shape;
  $('#input-caption').textContent = `${c}×${h}×${w}${g.padding[0] || g.padding[1] ? `, padding ${g.padding[0]}×${g.padding[1]} drawn grey` : ''}`
    + ($('#input-view').classList.contains('scrolls') ? ' · 1:1, scroll to pan' : '');
  showUnit();
}

/**
 * Ask the API for the layer and redraw everything. Late answers for old settings are dropped.
 * @param {boolean} push record a history entry
 */
async function refresh(push = false) {
  saveUrl(push);
  let data;
  try {
    data = await convolveChannel.run((signal) => callApi('/api/convolve', {}, signal));
  } catch (err) {
    if (err instanceof Stale) return;
    clearErrors();
    showError(err);
    layerFailed = true;
    // What is still on screen belongs to the last layer that worked: dim it and say so.
    document.body.classList.add('stale');
    $('#maps-caption').dataset.stale = 'the last layer that worked';
    return;
  }
  layerFailed = false;
  document.body.classList.remove('stale');
  delete $('#maps-caption').dataset.stale;
  clearErrors();
  layer = data;
  saveUrl(false); // the image id may have changed after a re-upload
  $('#status').textContent = statusSentence(data);
  $('#maps-caption').textContent = `${data.output_shape[1]}×${data.output_shape[2]} each`;
  $('#image-info').textContent = `${data.image.width}×${data.image.height} px working size${data.image.downscaled ? ` (from ${data.image.original_width}×${data.image.original_height})` : ''}`;
  if (state.weights) {
    const names = state.kernels.split(',').filter(Boolean);
    const edited = await editedKernels(names, Number(state.seed) || 0);
    if (names.length === data.maps.length) data.maps.forEach((m, j) => { if (edited[j]) m.name = `${names[j]} (edited)`; });
  }
  mapsView.render(data);
  try {
    await inputView.load(`/image/${encodeURIComponent(state.image_id)}.png`);
  } catch {
    // drawn without the picture; the maps still show
  }
  drawInput();
  renderFormula(data, { numbers: $('#formula-numbers'), arithmetic: $('#arithmetic'), unused: $('#unused') });
  formulaPicture.setLayer(data, $('#input-img'));
  updateWeightsEditor(data);
  renderTab();
  renders += 1;
  document.body.dataset.rendered = String(renders);
}

/** Render the active tab (each view fetches what it needs and drops stale answers). */
function renderTab() {
  if (!layer || layerFailed) return;
  // `state` is read live: a view that calls setState and renders again must see the new state.
  const ctx = {
    get state() { return state; },
    layer, callApi, showError, clearFieldError, setState, geometry: geometry(), pinned,
  };
  const view = views[state.tab];
  if (view) view.render(ctx);
}

function clearFieldError(field) {
  const node = document.getElementById(`error-${field}`);
  if (node) node.textContent = '';
}

/** Views change view fields (weight, crop, step) through here. */
function setState(patch, push = false) {
  state = { ...state, ...patch };
  saveUrl(push);
}

/** Number fields holding something that is not a number (the browser reports it as empty). */
function badNumbers() {
  return [...form.querySelectorAll('input[type="number"]')].filter((i) => i.validity && i.validity.badInput);
}

function schedule() {
  window.clearTimeout(debounce);
  debounce = window.setTimeout(() => {
    const bad = badNumbers();
    if (bad.length) {
      for (const input of bad) {
        const node = document.getElementById(`error-${input.name}`);
        if (node) node.textContent = `${input.labels?.[0]?.textContent?.trim() || input.name}: type a whole number`;
        input.setAttribute('aria-invalid', 'true');
      }
      return;
    }
    const next = readForm();
    const changed = layerChanged(state, next);
    state = next;
    // Every settled change of the layer is a history entry, so back/forward step through them.
    if (changed) refresh(true);
  }, DEBOUNCE_MS);
}

// ------------------------------------------------------------------ tabs

function selectTab(name, push) {
  state = { ...state, tab: name };
  $('#tab-field').value = name;
  for (const btn of document.querySelectorAll('[role="tab"]')) {
    const on = btn.dataset.tab === name;
    btn.setAttribute('aria-selected', String(on));
    btn.tabIndex = on ? 0 : -1;
  }
  for (const panel of document.querySelectorAll('[role="tabpanel"]')) panel.hidden = panel.id !== `tab-${name}`;
  saveUrl(push);
  if (name !== 'sliding') views.sliding?.pause();
  renderTab();
}

// ------------------------------------------------------------------ the weights editor

/** Fill the kernels' grids from the answer and say whether the presets or your weights apply. */
function updateWeightsEditor(data) {
  if (!$('#kernel-list').contains(document.activeElement)) {
    kernelList.render(state.kernels.split(',').filter(Boolean), Number(state.seed) || 0, Boolean(state.weights));
    updateKernelCount();
  }
  kernelList.fillGrids(planesOf(data));
  $('#weights-mode').textContent = state.weights
    ? `Using your own ${data.layer.kernel_size.join('×')} weights. A new kernel size goes back to the presets.`
    : 'Open a kernel\'s weights to edit them; the layer then uses your numbers.';
  $('#weights-reset').hidden = !state.weights;
}

// ------------------------------------------------------------------ keyboard

function onKey(e) {
  const tag = (e.target.tagName || '').toLowerCase();
  const typing = tag === 'input' || tag === 'select' || tag === 'textarea';
  if (e.key === 'Escape' && state.unit) {
    hoverUnit = null;
    pinUnit(null);
    return;
  }
  if (typing) return;
  if (e.key === ' ' && state.tab === 'sliding' && tag !== 'button') {
    e.preventDefault();
    views.sliding?.toggle();
    return;
  }
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  const unit = pinned();
  if (moves[e.key] && unit && tag !== 'button' && !e.target.closest('[role="tablist"]')) {
    e.preventDefault();
    hoverUnit = null;
    const [dr, dc] = moves[e.key];
    pinUnit([unit[0] + dr, unit[1] + dc].map((x, i) => Math.min(Math.max(x, 0), layer.output_shape[i + 1] - 1)));
  }
}

// ------------------------------------------------------------------ wiring

function wire() {
  for (const node of document.querySelectorAll('.js-only')) node.hidden = false;
  // These show once a layer has been drawn (and the reset only for your own weights).
  $('#formula-numbers').hidden = true;
  $('#weights-reset').hidden = !state.weights;
  document.body.classList.add('js');

  form.addEventListener('input', (e) => {
    if (e.target.closest('#kernel-list') || e.target.id === 'kernel-add') return;
    if (e.target.name === 'image' || e.target.name === 'sample') return;
    schedule();
  });
  form.addEventListener('change', (e) => {
    if (e.target.name === 'image') {
      const file = e.target.files && e.target.files[0];
      if (file) useFile(file);
      return;
    }
    if (e.target.name === 'sample') {
      if (!e.target.value) return;
      imageBlob = null;
      state = { ...state, sample: e.target.value, image_id: '', unit: '', crop: '' };
      loadSample(true);
      return;
    }
    if (e.target.id === 'kernel-add') {
      const name = e.target.value;
      e.target.value = '';
      if (name) onKernelChange({ kind: 'add', index: -1, name });
      return;
    }
    schedule();
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    window.clearTimeout(debounce);
    state = readForm();
    refresh(true);
  });
  $('#weights-reset').addEventListener('click', () => {
    $('#weights').value = '';
    kernelList.render(kernelNames(), Number(state.seed) || 0, false);
    schedule();
  });
  for (const btn of form.querySelectorAll('button.step')) {
    btn.addEventListener('click', () => stepField(btn.dataset.target, Number(btn.dataset.delta)));
  }

  // Drag and drop onto the input, paste anywhere.
  const view = $('#input-view');
  view.addEventListener('dragover', (e) => { e.preventDefault(); $('#drop-hint').hidden = false; });
  view.addEventListener('dragleave', () => { $('#drop-hint').hidden = true; });
  view.addEventListener('drop', (e) => {
    e.preventDefault();
    $('#drop-hint').hidden = true;
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) useFile(file);
  });
  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith('image/'));
    if (item) useFile(item.getAsFile());
  });

  // Hovering the input previews the unit whose window is centred nearest.
  view.addEventListener('mousemove', (e) => {
    const px = inputView.pixelAt(e);
    const g = geometry();
    if (!px || !g || !layer) return;
    const unit = [0, 1].map((a) => {
      const eff = g.dilation[a] * (g.kernel[a] - 1) + 1;
      const pos = a === 0 ? px.row : px.col;
      const m = Math.round((pos + g.padding[a] - (eff - 1) / 2) / g.stride[a]);
      return Math.min(Math.max(m, 0), layer.output_shape[a + 1] - 1);
    });
    hoverUnit = unit;
    showUnit();
  });
  view.addEventListener('mouseleave', () => { hoverUnit = null; showUnit(); });
  view.addEventListener('click', () => { if (hoverUnit) pinUnit(hoverUnit); });
  view.addEventListener('keydown', (e) => {
    // From the keyboard: Enter pins the centre unit, then the arrow keys move it.
    if (e.key === 'Enter' && layer && !state.unit) {
      e.preventDefault();
      pinUnit([Math.floor(layer.output_shape[1] / 2), Math.floor(layer.output_shape[2] / 2)]);
    }
  });

  for (const btn of document.querySelectorAll('[role="tab"]')) {
    btn.addEventListener('click', () => selectTab(btn.dataset.tab, true));
    btn.addEventListener('keydown', (e) => {
      const i = TABS.indexOf(btn.dataset.tab);
      const j = e.key === 'ArrowRight' ? i + 1 : e.key === 'ArrowLeft' ? i - 1 : null;
      if (j === null) return;
      const next = TABS[(j + TABS.length) % TABS.length];
      selectTab(next, true);
      document.getElementById(`tabbtn-${next}`).focus();
    });
  }
  document.addEventListener('keydown', onKey);
  // Hovering k, s, p or d in a formula (or its button) highlights its control, every copy of
  // the symbol, and its place in the pictures.
  const tab = $('#tab-formula');
  tab.addEventListener('mouseover', (e) => {
    const node = e.target.closest ? e.target.closest('.sym-k, .sym-s, .sym-p, .sym-d, [data-sym]') : null;
    setSymbol(node ? node.dataset?.sym || symbolOf(node) : null);
  });
  tab.addEventListener('mouseleave', () => setSymbol(null));
  for (const btn of tab.querySelectorAll('.sym-btn')) {
    btn.addEventListener('focus', () => setSymbol(btn.dataset.sym));
    btn.addEventListener('blur', () => setSymbol(null));
    btn.addEventListener('click', () => {
      stickySymbol = stickySymbol === btn.dataset.sym ? null : btn.dataset.sym;
      for (const b of tab.querySelectorAll('.sym-btn')) b.setAttribute('aria-pressed', String(b.dataset.sym === stickySymbol));
      setSymbol(symbol);
    });
  }
  window.addEventListener('popstate', () => {
    const next = fromQuery(location.search);
    const changed = layerChanged(state, next);
    state = next;
    writeForm(state);
    selectTab(state.tab, false);
    if (changed) refresh(false);
    else showUnit();
  });
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => { if (layer) { mapsView.render(layer); drawInput(); renderTab(); } }, 150);
  });
}

const SYMBOL_FIELDS = { k: 'kernel_size', s: 'stride', p: 'padding', d: 'dilation' };

/** The symbol ('k', 's', 'p' or 'd') a formula node stands for. */
function symbolOf(node) {
  const cls = (node.getAttribute('class') || '').split(/\s+/).find((c) => /^sym-[kspd]$/.test(c));
  return cls ? cls.slice(4) : null;
}

/**
 * Show one symbol everywhere: its control, its copies in the formulas, and its place in the
 * Formula tab's picture and on the input. null (with no button pressed) clears it.
 * @param {'k'|'s'|'p'|'d'|null} sym
 */
function setSymbol(sym) {
  symbol = sym;
  const shown = sym || stickySymbol;
  for (const row of form.querySelectorAll('.num-row.hl')) row.classList.remove('hl');
  for (const node of document.querySelectorAll('#tab-formula .sym-on')) node.classList.remove('sym-on');
  if (shown) {
    form.querySelector(`.num-row[data-field="${SYMBOL_FIELDS[shown]}"]`)?.classList.add('hl');
    for (const node of document.querySelectorAll(`#tab-formula math .sym-${shown}`)) node.classList.add('sym-on');
  }
  formulaPicture.show(shown);
  showUnit();
}

/** +/- buttons: step the first number of a field, keeping "same" and pairs sensible. */
/** True when a kernel in the list is a preset defined for odd sizes only (sobel, laplacian, ...). */
function oddSizesOnly() {
  if (ownWeights()) return false;
  const odd = new Set([...$('#kernel-add').options].filter((o) => o.dataset.odd).map((o) => o.value));
  return kernelNames().some((name) => odd.has(name));
}

function stepField(name, delta) {
  const input = form.elements.namedItem(name);
  let pair = parsePair(input.value);
  if (!pair && input.value.trim().toLowerCase() === 'same' && layer) pair = layer.layer.padding;
  if (!pair) pair = [0, 0];
  const min = name === 'padding' ? 0 : 1;
  // Presets such as sobel need a centre tap: the kernel size steps from odd to odd.
  const odd = name === 'kernel_size' && oddSizesOnly();
  const next = pair.map((x) => {
    let v = x + delta;
    if (odd && v % 2 === 0) v += delta;
    return Math.max(min, Math.min(31, v));
  });
  input.value = next[0] === next[1] ? String(next[0]) : `${next[0]},${next[1]}`;
  schedule();
}

/** Load a built-in sample: the server stores it and gives the id. */
async function loadSample(push) {
  try {
    const res = await fetch(`/static/samples/${encodeURIComponent(state.sample)}.png`);
    if (!res.ok) throw new ApiError(404, 'that sample does not exist', 'image');
    const blob = await res.blob();
    const info = await uploadImage(blob, `${state.sample}.png`);
    state = { ...state, image_id: info.id };
    writeForm(state);
    await refresh(push);
  } catch (err) {
    if (!(err instanceof Stale)) showError(err);
  }
}

function main() {
  // The server rendered the page for this URL and already stored the image (sample or id).
  state.image_id = workspace.dataset.imageId || state.image_id;
  state.sample = workspace.dataset.sample || '';
  for (const key of Object.keys(DEFAULTS)) if (state[key] === undefined) state[key] = DEFAULTS[key];
  views.sliding = new SlidingView($('#tab-sliding'), () => ({ state, layer, inputImage: $('#input-img'), setState }));
  views.sharing = new SharingView($('#tab-sharing'));
  views.dense = new DenseView($('#tab-dense'));
  views.gradients = new GradientsView($('#tab-gradients'));
  wire();
  writeForm(state);
  selectTab(state.tab, false);
  refresh(false);
}

main();
