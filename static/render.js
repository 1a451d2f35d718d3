// Drawing the page from the API's answer: ask /api/convolve for the layer, then hand the answer to
// the stage (the input panel and the maps), the answer strip, the formula, the export and the
// active tab. Late answers for old settings are dropped; a failed layer leaves the last one dimmed.

import { Channel, Stale } from './api.js';
import { renderAnswer } from './answer.js';
import { geometryOf } from './convmath.js';
import { renderExport } from './export.js';
import { counted, formatInt } from './format.js';
import { renderFormula } from './views/formula.js';

const $ = (sel) => document.querySelector(sel);
/** The input panel's greatest height: the photo and the maps share the first screen. */
const inputMaxHeight = () => Math.max(220, Math.min(560, Math.round(window.innerHeight * 0.62)));

/** The one-line answer: shapes and sharing as a sentence. */
function statusSentence(data) {
  const p = data.parameters;
  return `${data.input_shape.join('×')} input → ${data.output_shape.join('×')} output · ${formatInt(p.conv_weights)} weights shared across ${counted(p.positions, 'position')}`;
}

/**
 * Whether the input and the maps are shown 1:1 (else whole, fitted to their boxes).
 * @param {Record<string, string>} state
 */
export function oneToOne(state) {
  return state.zoom === '1';
}

export class Renderer {
  /**
   * @param {object} app the page (app.js): state, callApi, showError
   * @param {object} parts what the answer is drawn into, and the page's URL and error helpers:
   *   {saveUrl, clearErrors, inputView, mapsView, pixels, unit, kernels, formulaPicture, views}
   */
  constructor(app, parts) {
    this.app = app;
    this.parts = parts;
    this.channel = new Channel();
    this.result = null; // the last /api/convolve answer for app.state
    this.layerFailed = false; // the current settings have no answer: tabs wait for a valid layer
    this.renders = 0; // completed renders, for tests and the curious (body[data-rendered])
  }

  /** Redraw the input panel (padding and unused lines) and the maps in one frame. */
  drawStage() {
    const result = this.result;
    if (!result) return;
    const { inputView, mapsView, pixels, unit } = this.parts;
    const state = this.app.state;
    const g = geometryOf(result.layer);
    const img = $('#input-img');
    if (img.naturalWidth) {
      pixels.read(img);
      inputView.draw(g, { rows: result.arithmetic[0].unused, cols: result.arithmetic[1].unused },
        { picture: pixels.picture(result.layer.color, img), oneToOne: oneToOne(state), maxHeight: inputMaxHeight() });
    }
    mapsView.render(result, { frame: img.naturalWidth ? inputView.scale : 0, oneToOne: oneToOne(state) });
    const [c, h, w] = result.input_shape;
    const what = c === 1 ? 'the gray image the layer convolves (luma of the photo)' : 'R, G and B, convolved channel by channel';
    const zoom = inputView.scale === 1 ? '1:1' : inputView.scale > 1 ? `×${inputView.scale}` : `×${inputView.scale.toFixed(2)}`;
    $('#input-caption').textContent = `${c}×${h}×${w}: ${what} · ${zoom}${g.padding[0] || g.padding[1] ? ` · padding ${g.padding[0]}×${g.padding[1]} grey` : ''}`
      + ($('#input-view').classList.contains('scrolls') ? ' · 1:1, scroll to pan' : '');
    $('#zoom-toggle').textContent = oneToOne(state) ? 'Fit whole' : '1:1 pixels';
    $('#zoom-toggle').setAttribute('aria-pressed', String(oneToOne(state)));
    unit.show();
  }

  /** What is still on screen belongs to the last layer that worked: dim it and say so. */
  markStale() {
    this.layerFailed = true;
    document.body.classList.add('stale');
    $('#maps-caption').dataset.stale = 'the last layer that worked';
    $('#status').textContent = 'Fix the field marked in red to see the layer; the maps below are the last layer that worked.';
  }

  /**
   * Ask the API for the layer and redraw everything. Late answers for old settings are dropped.
   * @param {boolean} push record a history entry
   */
  async refresh(push = false) {
    const { saveUrl, clearErrors, inputView, kernels, formulaPicture } = this.parts;
    // The request leaves first: the history entry (pushState costs ~5 ms in Chromium) is written
    // while the server computes.
    const answer = this.channel.run((signal) => this.app.callApi('/api/convolve', this.parts.mapsView.request(), signal));
    saveUrl(push);
    let data;
    try {
      data = await answer;
    } catch (err) {
      if (err instanceof Stale) return;
      clearErrors();
      this.app.showError(err);
      this.markStale();
      return;
    }
    this.layerFailed = false;
    document.body.classList.remove('stale');
    delete $('#maps-caption').dataset.stale;
    clearErrors();
    this.result = data;
    this.parts.mapsView.prefetch(data); // the maps' PNGs load while the rest is drawn
    saveUrl(false); // the image id may have changed after a re-upload
    $('#status').textContent = statusSentence(data);
    $('#maps-caption').textContent = `${data.output_shape[1]}×${data.output_shape[2]} each`;
    $('#image-info').textContent = `${data.image.width}×${data.image.height} px working size${data.image.downscaled ? ` (from ${data.image.original_width}×${data.image.original_height})` : ''}`;
    await kernels.nameEdited(data);
    try {
      await inputView.load(`/image/${encodeURIComponent(this.app.state.image_id)}.png`);
    } catch {
      // drawn without the picture; the maps still show
    }
    this.drawStage();
    renderAnswer(data, $('#answer'));
    renderFormula(data, { numbers: $('#formula-numbers'), arithmetic: $('#arithmetic'), unused: $('#unused') });
    formulaPicture.setResult(data, $('#input-img'));
    kernels.update(data);
    renderExport(data, $('#export'));
    this.renderTab();
    this.renders += 1;
    document.body.dataset.rendered = String(this.renders);
  }

  /** Render the active tab (each view fetches what it needs and drops stale answers). */
  renderTab() {
    if (!this.result || this.layerFailed) return;
    this.parts.views[this.app.state.tab]?.render(this.app);
  }
}
