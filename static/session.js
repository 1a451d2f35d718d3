// The page's image on the server, and the API calls that need it: uploading the user's file or a
// sample, POSTing the layer with the image's id, and recovering when the server forgot the
// image (404: upload it again) or was full (503: try again after Retry-After).

import { ApiError, Stale, postBinary, postJson, retryAfter, uploadImage } from './api.js';
import { clearExpired } from './form.js';
import { sampleBlob } from './image-source.js';
import { layerParams } from './state.js';

export class Session {
  /**
   * @param {{image: import('./image-source.js').ImageSource, state: Record<string, string>,
   *   patch: (p: Record<string, string>) => void, refresh: (push: boolean) => Promise<void>,
   *   showError: (err: Error) => void, clearErrors: () => void, writeForm: () => void,
   *   saveUrl: (push: boolean) => void}} page the page's state and its redraw
   */
  constructor(page) {
    this.page = page;
  }

  /** Upload the user's file (or a sample fetched from /static) and switch the state to it. */
  async useFile(file) {
    const page = this.page;
    page.clearErrors();
    try {
      const info = await uploadImage(file);
      page.image.file = file;
      clearExpired();
      page.patch({ image_id: info.id, sample: '', unit: '', crop: '' });
      page.writeForm();
      await page.refresh(true);
    } catch (err) {
      // The last image and its layer stay on screen, undimmed; only the upload's slot says why.
      if (!(err instanceof Stale)) page.showError(err instanceof ApiError ? err : new ApiError(0, String(err), 'image'));
    }
  }

  /** Load a built-in sample: the server stores it and gives the id. */
  async loadSample(push) {
    const page = this.page;
    try {
      const name = page.state.sample;
      const info = await uploadImage(await sampleBlob(name), `${name}.png`);
      page.patch({ image_id: info.id });
      page.writeForm();
      await page.refresh(push);
    } catch (err) {
      if (!(err instanceof Stale)) page.showError(err);
    }
  }

  /** Make sure the server has the image again after a 404 (the cache forgot it). */
  async reupload() {
    const page = this.page;
    const info = await uploadImage(await page.image.again(page.state.sample), 'image.png');
    page.patch({ image_id: info.id });
    document.getElementById('image_id').value = info.id;
    page.saveUrl(false);
  }

  /**
   * A feature map's <img> failed: after a 404 the server forgot the image (upload it again and
   * redraw); after a 503 it was full (load it again after Retry-After).
   * @param {HTMLImageElement} img
   */
  async recoverMap(img) {
    const tries = Number(img.dataset.tries || 0);
    if (tries >= 3) return;
    img.dataset.tries = String(tries + 1);
    const src = img.getAttribute('src');
    let res;
    try {
      res = await fetch(src);
    } catch {
      return;
    }
    if (res.ok) {
      img.removeAttribute('src');
      img.src = src; // a passing failure: load it again
    } else if (res.status === 503) {
      window.setTimeout(() => { img.removeAttribute('src'); img.src = src; }, retryAfter(res) * 1000);
    } else if (res.status === 404 && this.page.image.canUploadAgain(this.page.state.sample)) {
      try {
        await this.reupload();
        await this.page.refresh(false);
      } catch (err) {
        this.page.showError(err);
      }
    }
  }

  /**
   * POST to the API with the image and layer fields; after a 404 for the image, upload it again
   * (if this page still has it) and retry once.
   * @param {string} path
   * @param {Record<string, string|null>} extra fields to set (null: to leave out)
   * @param {AbortSignal} [signal]
   * @param {boolean} [binary] the raw answer (format=npy) instead of JSON
   */
  async callApi(path, extra = {}, signal = undefined, binary = false) {
    const attempt = () => {
      const state = this.page.state;
      const body = layerParams(state);
      body.set('image_id', state.image_id);
      for (const [k, v] of Object.entries(extra)) {
        if (v === null) body.delete(k);
        else body.set(k, v);
      }
      return binary ? postBinary(path, body, signal) : postJson(path, body, signal);
    };
    try {
      return await attempt();
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && this.page.image.canUploadAgain(this.page.state.sample)) {
        await this.reupload();
        return attempt();
      }
      throw err;
    }
  }
}
