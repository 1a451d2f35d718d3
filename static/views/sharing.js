// The Weight sharing tab: usage count of each kernel weight, the coverage heatmap, and the
// parameter counts of this layer vs an untied (locally connected) and a dense layer.

import { Channel, Stale } from '../api.js';
import { counted, formatInt, numberInWords } from '../format.js';
import { clear, colourBar, el, kernelTable } from '../dom.js';

/** Why some input pixels are never read, from the layer's stride and dilation. */
function skipReason(result) {
  const strided = result.layer.stride.some((v) => v > 1);
  const dilated = result.layer.dilation.some((v) => v > 1);
  if (strided && dilated) return "the stride and the dilation's gaps skip them";
  if (dilated) return "the dilation's gaps skip them";
  return 'the stride skips them or stops short of them';
}

export class SharingView {
  /** @param {HTMLElement} root #tab-sharing */
  constructor(root) {
    this.root = root;
    this.channel = new Channel();
    this.grid = root.querySelector('#usage-grid');
    this.coverage = root.querySelector('#coverage');
    this.bars = root.querySelector('#param-bars');
    this.words = root.querySelector('#ratio-words');
  }

  async render(app) {
    const { result } = app;
    this.renderCounts(result.parameters, result.output_shape);
    let usage;
    try {
      usage = await this.channel.run((signal) => app.callApi('/api/weight-usage', {}, signal));
    } catch (err) {
      if (!(err instanceof Stale)) app.showError(err);
      return;
    }
    const j = 0;
    const weights = result.maps[j].weights[0];
    // An answer for another kernel size (Back or Forward went on meanwhile) is not drawn.
    if (app.result !== result || usage.real.length !== weights.length || usage.real[0].length !== weights[0].length) return;
    clear(this.grid);
    this.grid.append(
      el('p', { className: 'muted', text: `Kernel ${j} (${result.maps[j].name}), channel 0: each cell is one weight; under it, how many of the ${counted(usage.total, 'output position')} use it on real pixels + on padding. The counts depend only on the geometry, so they are the same for every kernel and channel.` }),
      kernelTable(weights, (u, v) => `${formatInt(usage.real[u][v])} + ${formatInt(usage.padding[u][v])}`),
    );
    clear(this.coverage);
    const img = el('img', { className: 'coverage-img pixelated', src: usage.coverage.png, alt: 'coverage heatmap: outputs reading each input pixel' });
    const [, h, w] = result.input_shape;
    const room = Math.max(160, Math.min(420, this.coverage.clientWidth || 320));
    // Whole-number zoom only (1:1 in a scroll box when wider than the card): with a stride the
    // pattern is one pixel wide, and a fractional scale would smear it.
    const scale = w <= room ? Math.max(1, Math.min(16, Math.floor(room / w))) : 1;
    img.style.width = `${w * scale}px`;
    img.style.height = `${h * scale}px`;
    this.coverage.append(el('div', { className: 'coverage-box' }, img),
      el('p', { className: 'muted small', text: `${h}×${w} pixels, shown ${scale === 1 ? '1:1' : `×${scale}`}${w > room ? ' (scroll to pan)' : ''}` }),
      colourBar(usage.coverage.min, usage.coverage.max, 'outputs per pixel'),
      el('p', { className: 'muted', text: `Each input pixel is read by ${formatInt(usage.coverage.min)} to ${counted(usage.coverage.max, 'output position')} per kernel.${usage.coverage.zero_pixels ? ` ${counted(usage.coverage.zero_pixels, 'pixel is', 'pixels are')} never read (${skipReason(result)}).` : ''}` }));
  }

  /** Three log-scale bars and the ratio in words. */
  renderCounts(p, outShape) {
    clear(this.bars);
    const rows = [
      ['conv (shared)', p.conv, `${formatInt(p.conv_weights)} weights + ${formatInt(p.conv_biases)} biases: one kernel per output channel, reused at every position`],
      ['locally connected (untied)', p.untied, `${formatInt(p.untied_weights)} weights + ${formatInt(p.untied_biases)} biases: the same window, but its own weights at each position`],
      ['dense', p.dense, `${formatInt(p.dense_weights)} weights + ${formatInt(p.dense_biases)} biases: every output connected to every input pixel`],
    ];
    const top = Math.log10(Math.max(...rows.map((r) => r[1]), 10));
    const decade = 100 / top; // % of the track per factor of ten: a tick mark at each
    for (const [name, count, note] of rows) {
      const bar = el('span', { className: `bar bar-${name.split(' ')[0]}` });
      bar.style.width = `${Math.max(1, (Math.log10(Math.max(count, 1)) / top) * 100)}%`;
      const ticks = el('span', { className: 'bar-ticks', 'aria-hidden': 'true' });
      ticks.style.backgroundSize = `${decade}% 100%`;
      this.bars.append(el('div', { className: 'bar-row' },
        el('span', { className: 'bar-label', text: name }),
        el('span', { className: 'bar-track' }, bar, ticks),
        el('span', { className: 'bar-value', text: `${formatInt(count)}${count >= 1e4 ? ` (${numberInWords(count)})` : ''}` }),
        el('span', { className: 'bar-note muted', text: note })));
    }
    this.bars.append(el('p', { className: 'muted', text: 'Bars are on a log scale: each tick is ten times the last. Each bar counts parameters = weights + biases; the status line and the answer count weights only.' }));
    const positions = p.positions;
    this.words.textContent = `This layer shares each weight across ${counted(positions, 'position')} (${outShape[1]}×${outShape[2]}): `
      + `${formatInt(p.conv_weights)} weights instead of ${numberInWords(p.untied_weights)} untied or ${numberInWords(p.dense_weights)} dense. `
      + `The dense layer would need ${numberInWords(Math.round(p.dense / Math.max(1, p.conv)))} times as many parameters.`;
  }
}
