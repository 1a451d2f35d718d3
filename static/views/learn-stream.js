// The Learn tab's requests outside the page's callApi: the training stream (POST /api/train) and
// the presets of the hidden kernel's size, with the API's error answer read as an ApiError.

import { errorOf } from '../api.js';

/**
 * The presets of one kernel size (GET /api/presets).
 * @param {number[]} size [kh, kw]
 * @returns {Promise<object[]>} the answer's presets
 */
export async function fetchPresets([kh, kw]) {
  const res = await fetch(`/api/presets?size=${kh},${kw}`);
  if (!res.ok) throw await errorOf(res);
  const body = await res.json();
  return body.presets;
}

/**
 * Open the training stream; if the server forgot the image (404), let the page upload it again
 * through /api/convolve and try once more.
 * @param {() => URLSearchParams} body the request's fields (built afresh for each try)
 * @param {(path: string, params: object, signal: AbortSignal) => Promise<object>} callApi the page's
 * @param {AbortSignal} signal
 * @returns {Promise<Response>} an ok response whose body is the stream of lines
 */
export async function openTraining(body, callApi, signal) {
  let res = await fetch('/api/train', { method: 'POST', body: body(), signal });
  if (res.status === 404) {
    await callApi('/api/convolve', {}, signal); // uploads the image again if the page has it
    res = await fetch('/api/train', { method: 'POST', body: body(), signal });
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}
