// The page state and its URL form. Pure: no DOM. The query string holds the whole state, with
// the same names as the API's fields, so a copied URL reproduces the view.

/** Layer fields, named as the API names them. */
export const LAYER_FIELDS = [
  'kernels', 'weights', 'kernel_size', 'stride', 'padding', 'dilation', 'groups', 'bias',
  'activation', 'color', 'seed',
];
/** Fields of the view that the API does not see. */
export const VIEW_FIELDS = ['tab', 'unit', 'weight', 'crop', 'step', 'decimate', 'zoom', 'lens', 'loss', 'target', 'lr', 'sweep', 'mode'];

export const DEFAULTS = Object.freeze({
  sample: 'astronaut',
  image_id: '',
  kernels: 'sobel_x,sobel_y',
  weights: '',
  kernel_size: '3',
  stride: '1',
  padding: '1',
  dilation: '1',
  groups: '1',
  bias: '0',
  activation: 'none',
  color: 'gray',
  seed: '0',
  tab: 'formula',
  unit: '',
  weight: '0,0,1,1',
  crop: '',
  step: '0',
  decimate: '',
  zoom: '', // '1' shows the input and the maps 1:1
  lens: '0', // the map whose unit the lens writes out
  loss: 'mse', // the Gradients tab's loss: sum | mse | unit
  target: 'gaussian', // the hidden kernel of the mse loss
  lr: '',
  sweep: '', // the Sliding tab: '' the whole output, 'region' the block around the pinned unit
  mode: '', // 'channels' edits RGB weights per channel
});

export const TABS = ['formula', 'sliding', 'sharing', 'dense', 'gradients', 'network', 'learn'];

/**
 * State from a query string; unknown keys are ignored, missing ones take defaults.
 * @param {string} search location.search
 * @returns {Record<string, string>}
 */
export function fromQuery(search) {
  const q = new URLSearchParams(search);
  const state = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS)) {
    if (q.has(key)) state[key] = q.getAll(key).join(',');
  }
  if (state.image_id) state.sample = q.get('sample') || '';
  if (!TABS.includes(state.tab)) state.tab = DEFAULTS.tab;
  return state;
}

/**
 * The query string for a state: the image, every layer field and the view.
 * @param {Record<string, string>} state
 * @returns {string} starting with "?"
 */
export function toQuery(state) {
  const q = new URLSearchParams();
  if (state.image_id) q.set('image_id', state.image_id);
  if (state.sample) q.set('sample', state.sample);
  for (const key of [...LAYER_FIELDS, ...VIEW_FIELDS]) {
    const v = state[key];
    if (v !== undefined && v !== '' && !(key === 'weights' && !v)) q.set(key, v);
  }
  return `?${q.toString()}`;
}

/**
 * The API's layer parameters for a state (without the image).
 * @param {Record<string, string>} state
 * @returns {URLSearchParams}
 */
export function layerParams(state) {
  const q = new URLSearchParams();
  for (const key of LAYER_FIELDS) {
    const v = state[key];
    if (v !== undefined && v !== '') q.set(key, v);
  }
  if (state.weights) q.delete('kernels');
  return q;
}

/**
 * Whether two states differ in anything the API computes from.
 * @param {Record<string, string>} a
 * @param {Record<string, string>} b
 * @returns {boolean}
 */
export function layerChanged(a, b) {
  return a.image_id !== b.image_id || LAYER_FIELDS.some((k) => a[k] !== b[k]);
}
