// The Network tab: a stack of layers on the image (up to CONVLENS_MAX_STACK_LAYERS, read from the
// page), each layer's maps in a row, a table of receptive-field sizes, jumps and starts, and for
// the unit under the pointer its receptive field on the photo, layer by layer, with its
// effective receptive field (ERF) inside it. The numbers come from /api/network,
// /api/receptive-field and /api/erf; the box arithmetic from convmath.js. This module asks for
// the stack's answer and hands it to the parts that draw: the layer list (network-layers.js), the
// maps and the table (network-maps.js), and the receptive field on the photo (network-field.js).

import { Channel, Stale } from '../api.js';
import { ReceptiveFieldOverlay } from './network-field.js';
import { LayerEditor } from './network-layers.js';
import { drawRows, drawTable } from './network-maps.js';

export class NetworkView {
  /** @param {HTMLElement} root #tab-network */
  constructor(root) {
    this.root = root;
    this.rows = root.querySelector('#net-rows');
    this.table = root.querySelector('#net-table tbody');
    this.netChannel = new Channel();
    this.app = null;
    this.editor = new LayerEditor(root, () => this.refresh());
    this.field = new ReceptiveFieldOverlay(root, {
      callApi: (...args) => this.app.callApi(...args),
      rgb: () => Boolean(this.app && this.app.state.color === 'rgb'),
      showError: (err) => this.editor.showError(err),
    });
    this.editor.loadPresets();
    this.editor.draw();
  }

  /** @param {object} app the page (app.js): state, result, callApi */
  async render(app) {
    this.app = app;
    await this.refresh();
  }

  /** Ask for the stack's answer and draw it; late answers for an older stack are dropped. */
  async refresh() {
    if (!this.app) return;
    const layers = this.editor.sent();
    let data;
    try {
      data = await this.netChannel.run((signal) => this.app.callApi('/api/network', { layers }, signal));
    } catch (err) {
      if (err instanceof Stale) return;
      this.editor.showError(err);
      return;
    }
    this.editor.showError(null);
    this.field.setAnswer(data, layers);
    this.editor.showAnswer(data, layers);
    drawRows(this.rows, data, {
      onMove: (img, e) => this.field.pointAt(img, e),
      onPick: (img, e) => this.field.pin(img, e),
      onLeave: () => this.field.leave(),
    });
    drawTable(this.table, data);
    await this.field.loadInput();
    this.field.drawInput();
    this.field.setStatus();
    this.root.dataset.rendered = String(Number(this.root.dataset.rendered || 0) + 1);
  }
}
