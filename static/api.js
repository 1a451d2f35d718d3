// Talking to the REST API: form-encoded POSTs, JSON errors that name a field, stale answers
// dropped, and a busy counter for the progress bar.

/** An API error: HTTP status, the message in words, and the parameter it concerns. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {string|null} field
   */
  constructor(status, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
  }
}

/** Thrown (and ignored by callers) when a newer request replaced this one. */
export class Stale extends Error {
  constructor() {
    super('superseded by a newer request');
    this.name = 'Stale';
  }
}

let inFlight = 0;
const busyListeners = new Set();

/**
 * Call fn(count) whenever the number of requests in flight changes.
 * @param {(count: number) => void} fn
 */
export function onBusy(fn) {
  busyListeners.add(fn);
}

function setBusy(delta) {
  inFlight += delta;
  busyListeners.forEach((fn) => fn(inFlight));
}

/**
 * Turn a failed response into an ApiError with the API's detail and field.
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
export async function errorOf(res) {
  let detail = `${res.status} ${res.statusText}`;
  let field = null;
  try {
    const body = await res.json();
    if (typeof body.detail === 'string') detail = body.detail;
    else if (Array.isArray(body.detail) && body.detail.length) {
      const first = body.detail[0];
      detail = first.msg || detail;
      const loc = first.loc || [];
      field = loc[loc.length - 1] || null;
    }
    if (body.field) field = body.field;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, detail, field);
}

/** Most tries of one request while the server answers 503 (its compute pool is full). */
const BUSY_TRIES = 4;

/**
 * The seconds a 503 asks the client to wait (Retry-After), between 0.2 and 10.
 * @param {Response} res
 * @returns {number}
 */
export function retryAfter(res) {
  const s = Number(res.headers.get('Retry-After'));
  return Math.min(10, Math.max(0.2, Number.isFinite(s) ? s : 1));
}

/** Wait `seconds`, or reject with an AbortError when the signal aborts first. */
function wait(seconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, seconds * 1000);
    signal?.addEventListener('abort', () => { window.clearTimeout(timer); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
  });
}

/**
 * fetch(), tried again after Retry-After while the server answers 503 (full, not broken).
 * @param {string} path
 * @param {RequestInit} init
 * @returns {Promise<Response>}
 */
async function fetchRetrying(path, init) {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(path, init);
    if (res.status !== 503 || attempt >= BUSY_TRIES) return res;
    await wait(retryAfter(res), init.signal);
  }
}

/**
 * POST a body to the API and return its JSON; throws ApiError on a non-2xx answer.
 * @param {string} path
 * @param {URLSearchParams|FormData} body
 * @param {AbortSignal} [signal]
 * @returns {Promise<any>}
 */
export async function postJson(path, body, signal) {
  setBusy(1);
  try {
    const res = await fetchRetrying(path, { method: 'POST', body, signal, headers: { Accept: 'application/json' } });
    if (!res.ok) throw await errorOf(res);
    return await res.json();
  } finally {
    setBusy(-1);
  }
}

/**
 * POST a body and return the raw answer (for format=npy); throws ApiError on a non-2xx answer.
 * @param {string} path
 * @param {URLSearchParams|FormData} body
 * @param {AbortSignal} [signal]
 * @returns {Promise<ArrayBuffer>}
 */
export async function postBinary(path, body, signal) {
  setBusy(1);
  try {
    const res = await fetchRetrying(path, { method: 'POST', body, signal });
    if (!res.ok) throw await errorOf(res);
    return await res.arrayBuffer();
  } finally {
    setBusy(-1);
  }
}

/**
 * Read a NumPy .npy file (little-endian float32 or float64, C order), as the API writes them.
 * @param {ArrayBuffer} buffer
 * @returns {{shape: number[], data: Float32Array|Float64Array}}
 */
export function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.slice(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new Error('not a .npy file');
  const view = new DataView(buffer);
  const major = bytes[6];
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.slice(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || /'fortran_order':\s*True/.test(header)) throw new Error('unsupported .npy header');
  const dims = shape[1].split(',').map((t) => t.trim()).filter(Boolean).map(Number);
  const body = buffer.slice(start + headerLen);
  if (descr[1] === '<f4') return { shape: dims, data: new Float32Array(body) };
  if (descr[1] === '<f8') return { shape: dims, data: new Float64Array(body) };
  throw new Error(`unsupported .npy dtype ${descr[1]}`);
}

/**
 * Upload an image (a File or Blob) and return {id, width, height, ...}.
 * @param {Blob} file
 * @param {string} [name]
 * @returns {Promise<any>}
 */
export async function uploadImage(file, name = 'image.png') {
  const form = new FormData();
  form.append('image', file, file.name || name);
  return postJson('/api/images', form);
}

/**
 * One logical request line (for example "the feature maps"): starting a new request aborts the
 * previous one, and an answer that arrives for an older request rejects with Stale.
 */
export class Channel {
  constructor() {
    this.serial = 0;
    this.controller = null;
  }

  /**
   * Run fn(signal); resolve with its value only if no newer run started meanwhile.
   * @template T
   * @param {(signal: AbortSignal) => Promise<T>} fn
   * @returns {Promise<T>}
   */
  async run(fn) {
    this.serial += 1;
    const mine = this.serial;
    if (this.controller) this.controller.abort();
    this.controller = new AbortController();
    try {
      const value = await fn(this.controller.signal);
      if (mine !== this.serial) throw new Stale();
      return value;
    } catch (err) {
      if (mine !== this.serial || (err && err.name === 'AbortError')) throw new Stale();
      throw err;
    }
  }
}
