// ConvLens page wiring: keeps the state in the URL and hands events to the modules that act on
// them. Each other job has its module: asking the API and drawing its answer (render.js), the
// form (form.js), the image (image-source.js), the kernel editor (kernel-editor.js), the unit
// under the pointer (unit.js), the formula symbols (symbols.js). The maths lives in convmath.js,
// the words in format.js, the drawing in views/.

import { onBusy } from './api.js';
import * as controls from './form.js';
import { ImageSource } from './image-source.js';
import { KernelEditor } from './kernel-editor.js';
import { DEFAULTS, TABS, fromQuery, layerChanged, toQuery } from './state.js';
import { Pixels } from './pixels.js';
import { Renderer, oneToOne } from './render.js';
import { Session } from './session.js';
import { Symbols } from './symbols.js';
import { UnitPointer } from './unit.js';
import { DenseView } from './views/dense.js';
import { FormulaPicture } from './views/formulapic.js';
import { GradientsView } from './views/gradients.js';
import { InputView } from './views/input.js';
import { LearnView } from './views/learn.js';
import { Lens } from './views/lens.js';
import { MapsView } from './views/maps.js';
import { NetworkView } from './views/network.js';
import { SharingView } from './views/sharing.js';
import { SlidingView } from './views/sliding.js';
import { TransposeToggle } from './views/transpose.js';

const $ = (sel) => document.querySelector(sel);
const DEBOUNCE_MS = 150;
const BUSY_AFTER_MS = 200;

const form = $('#controls');
const workspace = $('#workspace');

/** The current state (see state.js); what the server answered for it is renderer.result. */
let state = fromQuery(location.search);
let debounce = 0;

/** What the modules and views see of the page: the live state, the answer, and the API. */
const app = {
  get state() { return state; },
  get result() { return renderer.result; },
  setState,
  callApi: (...args) => session.callApi(...args),
  showError,
  clearFieldError: controls.clearFieldError,
  pinned: () => unit.pinned(),
  pixels: null,
  refresh: (push) => refresh(push),
  /** Make these J×C×kh×kw weights the layer's own (the Gradients tab's step). */
  useWeights(weights) {
    state = { ...state, weights: JSON.stringify(weights) };
    writeForm(state);
    refresh(true);
  },
};

const views = {};
const inputView = new InputView($('#input-view'));
const pixels = new Pixels();
app.pixels = pixels;
const mapsView = new MapsView($('#maps'), {
  onHover: (u, j) => { if (u) setLensKernel(j, false); unit.hover(u); },
  onPick: (u, j) => { setLensKernel(j, false); unit.pin(u); },
  onFocus: (j) => { setLensKernel(j, false); unit.show(); },
  onBroken: (img) => recoverMap(img),
});
const lens = new Lens($('#lens'), { onKernel: (j) => { setLensKernel(j, true); unit.show(); } });
const formulaPicture = new FormulaPicture($('#formula-pic'), $('#formula-pic-text'));
const symbols = new Symbols(form, $('#tab-formula'), formulaPicture, () => unit.show());
const unit = new UnitPointer(app, {
  inputView,
  mapsView,
  symbol: () => symbols.current(),
  onPin: (u) => { views.sliding?.follow(u); views.gradients?.mark(unit.pinned()); },
  onShow: (u, pinned) => showLens(u, pinned),
});
const kernels = new KernelEditor(app, () => schedule());
const image = new ImageSource((file) => session.useFile(file));

// ------------------------------------------------------------------ state and URL

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

/** The form's values over the state. */
function readForm() {
  return controls.readForm(form, state, kernels);
}

/** @param {Record<string, string>} s a state to put into the form */
function writeForm(s) {
  controls.writeForm(form, s, kernels);
}

function clearErrors() {
  controls.clearErrors();
}

/** @param {Error} err shown next to the control it names */
function showError(err) {
  controls.showError(form, err);
}

/** Views change view fields (weight, crop, step, unit) through here. */
function setState(patch, push = false) {
  state = { ...state, ...patch };
  saveUrl(push);
}

// ------------------------------------------------------------------ busy

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

// ------------------------------------------------------------------ the image and the API

const session = new Session({
  image,
  get state() { return state; },
  patch(p) { state = { ...state, ...p }; },
  refresh: (push) => refresh(push),
  showError: (err) => showError(err),
  clearErrors: () => clearErrors(),
  writeForm: () => writeForm(state),
  saveUrl: (push) => saveUrl(push),
});
const useFile = (file) => session.useFile(file);
const loadSample = (push) => session.loadSample(push);
const recoverMap = (img) => session.recoverMap(img);

// ------------------------------------------------------------------ rendering (render.js)

const renderer = new Renderer(app, {
  saveUrl, clearErrors, inputView, mapsView, pixels, unit, kernels, formulaPicture, views,
});
const refresh = (push) => renderer.refresh(push);
const drawStage = () => renderer.drawStage();
const renderTab = () => renderer.renderTab();

// ------------------------------------------------------------------ the lens

/** The map whose unit the lens writes out. */
function lensKernel() {
  const result = renderer.result;
  if (!result) return 0;
  return Math.min(Math.max(Number(state.lens) || 0, 0), result.maps.length - 1);
}

function setLensKernel(j, push) {
  if (String(j) !== state.lens) setState({ lens: String(j) }, push);
}

function showLens(u, pinned) {
  lens.show({ result: renderer.result, pixels, img: $('#input-img') }, u, lensKernel(), { pinned });
}

// ------------------------------------------------------------------ applying the form and the tabs

/** Apply the form: at once for a click (stepper, radio, select), after DEBOUNCE_MS while typing. */
function schedule(now = false) {
  window.clearTimeout(debounce);
  const apply = () => {
    if (controls.markBadNumbers(form) || controls.markBadFields(form)) {
      renderer.markStale();
      return;
    }
    const next = readForm();
    const changed = layerChanged(state, next);
    state = next;
    // Every settled change of the layer is a history entry, so back/forward step through them.
    if (changed) refresh(true);
  };
  if (now) apply();
  else debounce = window.setTimeout(apply, DEBOUNCE_MS);
}

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

// ------------------------------------------------------------------ controls

function onKey(e) {
  const tag = (e.target.tagName || '').toLowerCase();
  const typing = tag === 'input' || tag === 'select' || tag === 'textarea';
  if (unit.onKey(e, typing) || typing) return;
  if (e.key === ' ' && state.tab === 'sliding' && tag !== 'button') {
    e.preventDefault();
    views.sliding?.toggle();
  }
}

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
    if (e.target.closest('#kernel-list') || e.target.id === 'kernel-add') return; // the kernel editor's
    if (e.target.name === 'image') {
      const file = e.target.files && e.target.files[0];
      if (file) useFile(file);
      return;
    }
    if (e.target.name === 'sample') {
      if (!e.target.value) return;
      image.file = null;
      controls.clearExpired();
      state = { ...state, sample: e.target.value, image_id: '', unit: '', crop: '' };
      loadSample(true);
      return;
    }
    // A click on a radio or a select applies at once; a number typed waits for the debounce.
    schedule(e.target.tagName === 'SELECT' || e.target.type === 'radio');
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    window.clearTimeout(debounce);
    state = readForm();
    refresh(true);
  });
  for (const btn of form.querySelectorAll('button.step')) {
    btn.addEventListener('click', () => {
      const name = btn.dataset.target;
      controls.stepField(form.elements.namedItem(name), Number(btn.dataset.delta), {
        padding: renderer.result ? renderer.result.layer.padding : null,
        oddOnly: name === 'kernel_size' && kernels.oddSizesOnly(),
      });
      schedule(true);
    });
  }
  $('#zoom-toggle').addEventListener('click', () => {
    setState({ zoom: oneToOne(state) ? '' : '1' }, true);
    drawStage();
  });

  image.wire($('#input-view'), $('#drop-hint'));
  unit.wireInput($('#input-view'));
  unit.wireMaps($('#maps'));

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
  // Links to a tab (the answer strip): open it and bring it into view.
  document.addEventListener('click', (e) => {
    const link = e.target.closest && e.target.closest('a[data-tab]');
    if (!link) return;
    e.preventDefault();
    selectTab(link.dataset.tab, true);
    $('#tabs').scrollIntoView({ behavior: 'smooth', block: 'start' });
  });
  window.addEventListener('popstate', () => {
    const next = fromQuery(location.search);
    const changed = layerChanged(state, next);
    state = next;
    writeForm(state);
    if (changed) renderer.layerFailed = true; // the tabs wait for the answer of the restored layer
    selectTab(state.tab, false);
    if (changed) refresh(false);
    else { drawStage(); unit.show(); }
  });
  let resizeTimer = 0;
  window.addEventListener('resize', () => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(() => { if (renderer.result) { drawStage(); renderTab(); } }, DEBOUNCE_MS);
  });
}

function main() {
  // The server rendered the page for this URL and already stored the image (sample or id).
  state.image_id = workspace.dataset.imageId || state.image_id;
  state.sample = workspace.dataset.sample || '';
  for (const key of Object.keys(DEFAULTS)) if (state[key] === undefined) state[key] = DEFAULTS[key];
  views.sliding = new SlidingView($('#tab-sliding'), () => ({ state, result: renderer.result, inputImage: $('#input-img'), setState, pixels, pinned: () => unit.pinned() }));
  views.sharing = new SharingView($('#tab-sharing'));
  views.dense = new TransposeToggle($('#tab-dense'), new DenseView($('#tab-dense')));
  views.gradients = new GradientsView($('#tab-gradients'));
  views.network = new NetworkView($('#tab-network'));
  views.learn = new LearnView($('#tab-learn'));
  controls.showExpired(workspace.dataset.expired);
  wire();
  writeForm(state);
  selectTab(state.tab, false);
  refresh(false);
}

main();
