// The working image's pixels as the layer reads them: C planes of float32 in [0, 1], gray as
// luma (0.299 R + 0.587 G + 0.114 B, as app/images.py), and a picture of the gray image. Read
// once per image from the stored PNG the input panel shows.

/** @typedef {{width: number, height: number, planes: Float32Array[]}} Planes */

const LUMA = [0.299, 0.587, 0.114];

export class Pixels {
  constructor() {
    this.src = '';
    this.rgba = null;
    this.width = 0;
    this.height = 0;
    this.cache = new Map(); // color -> Planes
    this.grayCanvas = null;
  }

  /**
   * Read the pixels of a loaded image (once per src).
   * @param {HTMLImageElement} img
   */
  read(img) {
    const src = img.currentSrc || img.src;
    if (src === this.src && this.rgba) return;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    this.rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    this.width = canvas.width;
    this.height = canvas.height;
    this.src = src;
    this.cache.clear();
    this.grayCanvas = null;
  }

  get ready() {
    return Boolean(this.rgba);
  }

  /**
   * The layer's input planes for a colour mode.
   * @param {'gray'|'rgb'} color
   * @returns {Planes}
   */
  planes(color) {
    if (!this.cache.has(color)) {
      const n = this.width * this.height;
      const rgba = this.rgba;
      let planes;
      if (color === 'rgb') {
        planes = [0, 1, 2].map((c) => {
          const p = new Float32Array(n);
          for (let i = 0; i < n; i++) p[i] = rgba[i * 4 + c] / 255;
          return p;
        });
      } else {
        const p = new Float32Array(n);
        const f = LUMA.map((k) => Math.fround(k / 255));
        for (let i = 0; i < n; i++) p[i] = Math.fround(rgba[i * 4] * f[0] + rgba[i * 4 + 1] * f[1] + rgba[i * 4 + 2] * f[2]);
        planes = [p];
      }
      this.cache.set(color, { width: this.width, height: this.height, planes });
    }
    return this.cache.get(color);
  }

  /**
   * A canvas of the image as the layer sees it: the gray image for 'gray', the photo for 'rgb'.
   * @param {'gray'|'rgb'} color
   * @param {HTMLImageElement} img
   * @returns {CanvasImageSource}
   */
  picture(color, img) {
    if (color === 'rgb') return img;
    if (!this.grayCanvas) {
      const gray = this.planes('gray').planes[0];
      const canvas = document.createElement('canvas');
      canvas.width = this.width;
      canvas.height = this.height;
      const ctx = canvas.getContext('2d');
      const data = ctx.createImageData(this.width, this.height);
      for (let i = 0; i < gray.length; i++) {
        const v = Math.round(gray[i] * 255);
        data.data[i * 4] = v;
        data.data[i * 4 + 1] = v;
        data.data[i * 4 + 2] = v;
        data.data[i * 4 + 3] = 255;
      }
      ctx.putImageData(data, 0, 0);
      this.grayCanvas = canvas;
    }
    return this.grayCanvas;
  }
}
