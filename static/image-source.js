// Where the input image comes from: a file chosen, dropped on the input or pasted, or a built-in
// sample. The user's file is kept so the page can upload it again after the server forgot it.

import { ApiError } from './api.js';

/**
 * A built-in sample's PNG from /static.
 * @param {string} name
 * @returns {Promise<Blob>}
 */
export async function sampleBlob(name) {
  const res = await fetch(`/static/samples/${encodeURIComponent(name)}.png`);
  if (!res.ok) throw new ApiError(404, 'that sample does not exist', 'image');
  return res.blob();
}

export class ImageSource {
  /** @param {(file: Blob) => void} onFile a file was chosen, dropped or pasted */
  constructor(onFile) {
    this.onFile = onFile;
    this.file = null; // the user's own file, kept to upload again after a 404
  }

  /**
   * The image to upload again: the user's file, else the sample's PNG.
   * @param {string} sample the state's sample name ('' for none)
   * @returns {Promise<Blob>}
   */
  async again(sample) {
    if (this.file) return this.file;
    if (sample) return sampleBlob(sample);
    throw new ApiError(404, 'This image is no longer on the server: please upload it again.', 'image');
  }

  /** Whether the page could upload the image again. */
  canUploadAgain(sample) {
    return Boolean(this.file || sample);
  }

  /**
   * Drag and drop onto the input, paste anywhere.
   * @param {HTMLElement} view #input-view
   * @param {HTMLElement} hint #drop-hint
   */
  wire(view, hint) {
    view.addEventListener('dragover', (e) => { e.preventDefault(); hint.hidden = false; });
    view.addEventListener('dragleave', () => { hint.hidden = true; });
    view.addEventListener('drop', (e) => {
      e.preventDefault();
      hint.hidden = true;
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) this.onFile(file);
    });
    document.addEventListener('paste', (e) => {
      const item = [...(e.clipboardData?.items || [])].find((i) => i.type.startsWith('image/'));
      if (item) this.onFile(item.getAsFile());
    });
  }
}
