// k, s, p and d pointed at in the Formula tab: hovering a symbol in a formula (or focusing its
// button) highlights its control, every copy of the symbol, and its place in the pictures. A
// button press keeps it shown (touch and keyboard).

const FIELDS = { k: 'kernel_size', s: 'stride', p: 'padding', d: 'dilation' };

/** The symbol ('k', 's', 'p' or 'd') a formula node stands for. */
function symbolOf(node) {
  const cls = (node.getAttribute('class') || '').split(/\s+/).find((c) => /^sym-[kspd]$/.test(c));
  return cls ? cls.slice(4) : null;
}

export class Symbols {
  /**
   * @param {HTMLFormElement} form the controls
   * @param {HTMLElement} tab #tab-formula
   * @param {{show: (sym: string|null) => void}} picture the Formula tab's picture
   * @param {() => void} onChange the shown symbol changed (the input redraws its unit)
   */
  constructor(form, tab, picture, onChange) {
    this.form = form;
    this.tab = tab;
    this.picture = picture;
    this.onChange = onChange;
    this.hovered = null;
    this.sticky = null;
    tab.addEventListener('mouseover', (e) => {
      const node = e.target.closest ? e.target.closest('.sym-k, .sym-s, .sym-p, .sym-d, [data-sym]') : null;
      this.set(node ? node.dataset?.sym || symbolOf(node) : null);
    });
    tab.addEventListener('mouseleave', () => this.set(null));
    for (const btn of tab.querySelectorAll('.sym-btn')) {
      btn.addEventListener('focus', () => this.set(btn.dataset.sym));
      btn.addEventListener('blur', () => this.set(null));
      btn.addEventListener('click', () => {
        this.sticky = this.sticky === btn.dataset.sym ? null : btn.dataset.sym;
        for (const b of tab.querySelectorAll('.sym-btn')) b.setAttribute('aria-pressed', String(b.dataset.sym === this.sticky));
        this.set(this.hovered);
      });
    }
  }

  /** The symbol shown: the one hovered, else the one whose button is pressed, else null. */
  current() {
    return this.hovered || this.sticky;
  }

  /**
   * Show one symbol everywhere: its control, its copies in the formulas, and its place in the
   * Formula tab's picture and on the input. null (with no button pressed) clears it.
   * @param {'k'|'s'|'p'|'d'|null} sym
   */
  set(sym) {
    this.hovered = sym;
    const shown = this.current();
    for (const row of this.form.querySelectorAll('.num-row.hl')) row.classList.remove('hl');
    for (const node of this.tab.querySelectorAll('.sym-on')) node.classList.remove('sym-on');
    if (shown) {
      this.form.querySelector(`.num-row[data-field="${FIELDS[shown]}"]`)?.classList.add('hl');
      for (const node of this.tab.querySelectorAll(`math .sym-${shown}`)) node.classList.add('sym-on');
    }
    this.picture.show(shown);
    this.onChange();
  }
}
