"""The page in a real browser: load, upload, controls, receptive field, animation, shared URLs, no-JS."""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import urllib.request
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "static" / "samples"
SETTLED = """() => document.body.dataset.rendered && !document.body.hasAttribute('data-busy')
  && [...document.querySelectorAll('#maps img.fmap')].every((i) => i.complete && i.naturalWidth > 0)"""


def settle(page, after: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Wait until a render newer than `after` finished and every feature map has loaded."""
    if after is not None:
        page.wait_for_function(f"() => Number(document.body.dataset.rendered || 0) > {after}")
    page.wait_for_function(SETTLED)


def rendered(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.evaluate("document.body.dataset.rendered || '0'"))


def out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def post_json(base: str, path: str, fields: dict[str, str]) -> dict:  # type: ignore[type-arg]
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data), timeout=10) as res:
        return json.loads(res.read())


def test_page_loads_without_console_errors_and_sends_csp(page, server) -> None:  # type: ignore[no-untyped-def]
    response = page.goto("/")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    settle(page)
    assert page.console.errors == []
    status = page.text_content("#status")
    assert "1×320×320 input → 2×320×320 output" in status
    assert page.locator("#maps img.fmap").count() == 2
    assert page.locator("#formula-numbers .math-wrap").count() == 1


def test_upload_through_the_file_input(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    settle(page)
    before = rendered(page)
    page.set_input_files("#image", str(SAMPLES / "checkerboard.png"))
    settle(page, before)
    assert "1×256×256 input" in page.text_content("#status")
    assert "image_id=" in page.url and "sample=" not in page.url
    assert page.console.errors == []


def _file_transfer(page, path: Path):  # type: ignore[no-untyped-def]
    """A DataTransfer in the page holding the file at `path` (as a browser builds on drop or paste)."""
    data = base64.b64encode(path.read_bytes()).decode()
    return page.evaluate_handle(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: 'image/png' }));
            return dt;
        }""",
        [path.name, data],
    )


def test_drop_an_image_on_the_input(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    settle(page)
    before = rendered(page)
    dt = _file_transfer(page, SAMPLES / "checkerboard.png")
    page.dispatch_event("#input-view", "dragover", {"dataTransfer": dt})
    assert page.is_visible("#drop-hint")
    page.dispatch_event("#input-view", "drop", {"dataTransfer": dt})
    settle(page, before)
    assert page.is_hidden("#drop-hint")
    assert "1×256×256 input" in page.text_content("#status")
    assert "image_id=" in page.url and "sample=" not in page.url
    assert page.console.errors == []


def test_paste_an_image_anywhere(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard")
    settle(page)
    before = rendered(page)
    dt = _file_transfer(page, SAMPLES / "tiny.png")
    paste = "(dt) => document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true}))"
    page.evaluate(paste, dt)
    settle(page, before)
    assert "1×12×12 input" in " ".join(page.text_content("#status").split())
    assert "image_id=" in page.url and "sample=" not in page.url
    assert page.console.errors == []


def test_stride_two_halves_the_feature_map(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard&kernels=sobel_x&stride=1&padding=1&dilation=1&kernel_size=3")
    settle(page)
    w = 256
    assert page.evaluate("document.querySelector('#maps img.fmap').naturalWidth") == out_size(w, 3, 1, 1, 1)
    before = rendered(page)
    page.fill("#stride", "2")
    settle(page, before)
    expected = out_size(w, 3, 2, 1, 1)
    assert expected == 128
    assert page.evaluate("document.querySelector('#maps img.fmap').naturalWidth") == expected
    assert "stride=2" in page.url


def test_receptive_field_overlay_matches_the_api(page, server) -> None:  # type: ignore[no-untyped-def]
    query = "sample=checkerboard&kernels=sobel_x&kernel_size=3,5&stride=2&padding=1&dilation=2"
    page.goto(f"/?{query}")
    settle(page)
    img = page.locator("#maps img.fmap").first
    box = img.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6)
    page.wait_for_function("() => new URL(location.href).searchParams.get('unit')")
    unit = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["unit"][0]
    row, col = (int(v) for v in unit.split(","))
    shown = page.evaluate("({...document.querySelector('#rf-box').dataset})")
    image_id = page.evaluate("document.querySelector('#workspace').dataset.imageId")
    fields = dict(urllib.parse.parse_qsl(query))
    fields.pop("sample")
    fields.update(image_id=image_id, row=str(row), col=str(col))
    api = post_json(server, "/api/receptive-field", fields)
    assert {k: int(v) for k, v in shown.items()} == api["box"]
    # The pin holds, arrow keys move it, Escape releases it.
    page.mouse.move(0, 0)
    page.locator("#input-view").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"() => new URL(location.href).searchParams.get('unit') === '{row},{col + 1}'")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !new URL(location.href).searchParams.get('unit')")
    assert page.console.errors == []


def test_sliding_animation_plays_and_steps(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&tab=sliding&stride=2")
    settle(page)
    page.locator("#slide-speed").fill("20")
    page.click("#slide-play")
    page.wait_for_function("() => Number(document.querySelector('#slide-pos').value) >= 3")
    page.click("#slide-play")
    assert page.get_attribute("#slide-play", "aria-pressed") == "false"
    pos = int(page.input_value("#slide-pos"))
    page.click("#slide-step")
    steps = int(page.get_attribute("#slide-pos", "max") or 0) + 1
    assert int(page.input_value("#slide-pos")) == (pos + 1) % steps
    page.check("#slide-decimate")
    assert "decimate=1" in page.url
    assert "stride 2×2 keeps" in page.text_content("#slide-info")
    assert page.console.errors == []


def test_a_shared_url_gives_the_same_view(page, browser, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard")
    settle(page)
    for field in ("stride", "dilation"):
        before = rendered(page)
        page.fill(f"#{field}", "2")
        settle(page, before)
    page.click("#tabbtn-sharing")
    img = page.locator("#maps img.fmap").first
    box = img.bounding_box()
    page.mouse.click(box["x"] + 20, box["y"] + 30)
    page.wait_for_function("() => new URL(location.href).searchParams.get('unit')")
    page.mouse.move(0, 0)
    url = page.url
    status = page.text_content("#status")
    rf = page.evaluate("({...document.querySelector('#rf-box').dataset})")

    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        fresh = other.new_page()
        fresh.goto(url)
        settle(fresh)
        assert fresh.text_content("#status") == status
        assert fresh.input_value("#stride") == "2" and fresh.input_value("#dilation") == "2"
        assert fresh.get_attribute("#tabbtn-sharing", "aria-selected") == "true"
        assert fresh.is_visible("#tab-sharing") and not fresh.is_visible("#tab-formula")
        fresh.wait_for_function("() => !document.querySelector('#rf-box').hidden")
        assert fresh.evaluate("({...document.querySelector('#rf-box').dataset})") == rf
    finally:
        other.close()
    # Back and forward step through the changes: tab, dilation, stride.
    page.go_back()
    page.wait_for_function("() => document.querySelector('#tab-sharing').hidden")
    page.go_back()
    page.wait_for_function("() => document.querySelector('#dilation').value === '1'")
    page.go_back()
    page.wait_for_function("() => document.querySelector('#stride').value === '1'")
    settle(page)
    assert "2×256×256 output" in page.text_content("#status")
    page.go_forward()
    page.wait_for_function("() => document.querySelector('#stride').value === '2'")


def test_the_form_works_without_javascript(browser, server) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(java_script_enabled=False, base_url=server)
    try:
        page = context.new_page()
        page.goto("/")
        page.select_option("#sample", "checkerboard")
        page.fill("#stride", "2")
        page.select_option("#kernel-list li:nth-child(2) select", "")  # "(remove)" drops sobel_y
        with page.expect_navigation():
            page.click("#apply")
        assert "stride=2" in page.url and "sample=checkerboard" in page.url
        assert "1×256×256 input → 1×128×128 output" in " ".join(page.text_content("#status").split())
        assert "output = 127 + 1 = 128" in page.text_content("#arithmetic")
        src = page.get_attribute("#maps img.fmap", "src")
        assert src is not None and src.startswith("/api/feature-maps.png?")
        png = page.request.get(src)
        assert png.ok
        assert Image.open(io.BytesIO(png.body())).size == (128, 128)
        # Upload without JavaScript: POST, then 303 to the GET view of the new image.
        page.set_input_files("#image", str(SAMPLES / "tiny.png"))
        with page.expect_navigation():
            page.click("#apply")
        assert "image_id=" in page.url
        assert "1×12×12 input" in " ".join(page.text_content("#status").split())
        # An invalid value is named next to its control.
        page.fill("#stride", "0")
        with page.expect_navigation():
            page.click("#apply")
        assert "stride" in page.text_content("#error-stride")
    finally:
        context.close()


def test_an_unknown_image_id_is_uploaded_again(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/")
    settle(page)
    before = rendered(page)
    page.set_input_files("#image", str(SAMPLES / "checkerboard.png"))
    settle(page, before)
    served = {"n": 0}

    def forget(route):  # type: ignore[no-untyped-def]
        if served["n"] == 0:
            served["n"] += 1
            route.fulfill(status=404, content_type="application/json",
                          body=json.dumps({"detail": "unknown image_id: upload the image again",
                                           "field": "image_id"}))
        else:
            route.continue_()

    page.route("**/api/convolve", forget)
    uploads: list[str] = []
    page.on("request", lambda r: r.url.endswith("/api/images") and uploads.append(r.method))
    before = rendered(page)
    page.fill("#stride", "2")
    settle(page, before)
    assert served["n"] == 1 and uploads == ["POST"]
    assert "1×256×256 input → 2×128×128 output" in page.text_content("#status")


def test_api_errors_show_next_to_their_control(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=box")
    settle(page)
    page.fill("#kernel_size", "31")
    page.wait_for_function("() => document.querySelector('#error-kernel_size').textContent.length > 0")
    assert page.get_attribute("#kernel_size", "aria-invalid") == "true"
    page.fill("#kernel_size", "3")
    page.wait_for_function("() => document.querySelector('#error-kernel_size').textContent === ''")


def test_screenshots_of_every_tab(browser, server, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    for width, name in ((1280, "desktop"), (375, "mobile")):
        context = browser.new_context(viewport={"width": width, "height": 900}, base_url=server)
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m, errors=errors: m.type == "error" and errors.append(m.text))
            page.goto("/?stride=2&unit=40,60")
            settle(page)
            page.screenshot(path=str(screenshots / f"{name}-top.png"))
            for tab in ("formula", "sliding", "sharing", "dense", "gradients"):
                page.click(f"#tabbtn-{tab}")
                page.wait_for_timeout(400)
                page.wait_for_function("() => !document.body.hasAttribute('data-busy')")
                page.wait_for_timeout(150)
                page.locator(f"#tab-{tab}").screenshot(path=str(screenshots / f"{name}-{tab}.png"))
            page.screenshot(path=str(screenshots / f"{name}-full.png"), full_page=True)
            assert errors == []
        finally:
            context.close()


def test_the_page_maths_matches_the_engine(page) -> None:  # type: ignore[no-untyped-def]
    """convmath.js (output size, receptive field, unused lines) agrees with engine/ on odd shapes."""
    from engine import output_arithmetic, receptive_field

    cases = [  # (H, W), (kh, kw), (sh, sw), (ph, pw), (dh, dw), (row, col)
        ((7, 11), (3, 5), (2, 3), (1, 2), (1, 2), (2, 1)),
        ((13, 9), (4, 2), (3, 1), (0, 1), (2, 3), (0, 4)),
        ((5, 5), (5, 1), (1, 2), (2, 0), (1, 1), (4, 2)),
        ((31, 17), (3, 3), (4, 5), (1, 1), (3, 2), (6, 2)),
    ]
    page.goto("/")
    settle(page)
    got = page.evaluate(
        """async (cases) => {
          const m = await import('/static/convmath.js');
          return cases.map(([hw, k, s, p, d, unit]) => {
            const g = { kernel: k, stride: s, padding: p, dilation: d };
            const rf = m.receptiveField(g, unit[0], unit[1], hw[0], hw[1]);
            return {
              out: [0, 1].map((a) => m.computeOutputSize(hw[a], k[a], s[a], p[a], d[a])),
              unused: [0, 1].map((a) => m.unusedLines(hw[a], k[a], s[a], p[a], d[a])),
              box: [rf.top, rf.left, rf.height, rf.width],
              padTaps: rf.taps.filter((t) => t.padding).length,
            };
          });
        }""",
        [[list(v) for v in case] for case in cases],
    )
    for (hw, k, s, p, d, (row, col)), js in zip(cases, got, strict=True):
        rows, cols = output_arithmetic(hw, k, s, p, d)
        assert js["out"] == [rows.output, cols.output]
        assert js["unused"] == [[list(r) for r in rows.unused], [list(r) for r in cols.unused]]
        rf = receptive_field(hw, k, s, p, d, row=row, col=col)
        assert js["box"] == [rf.top, rf.left, rf.height, rf.width]
        assert js["padTaps"] == int(rf.in_padding.sum())


def query_of(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))


KERNEL_COUNT = "new URL(location.href).searchParams.get('kernels').split(',').length"
WEIGHTS_COUNT = "JSON.parse(new URL(location.href).searchParams.get('weights')).length"


def test_the_kernel_list_holds_up_to_16_kernels_and_says_so(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=sobel_x")
    settle(page)
    for _ in range(15):
        page.select_option("#kernel-add", "random")
    page.wait_for_function(f"() => {KERNEL_COUNT} === 16")
    settle(page)
    assert query_of(page)["kernels"] == ",".join(["sobel_x"] + ["random"] * 15)
    assert page.text_content("#kernels-count") == "16 of 16"
    assert "16×12×12 output" in page.text_content("#status")
    seeds = page.locator("#kernel-list .kernel-seed").all_text_contents()
    assert seeds == [f"seed {k}" for k in range(1, 16)]  # the k-th random kernel uses seed + k
    assert page.locator("#maps img.fmap").count() == 16
    # A 17th is refused in words, next to the list, and nothing changes.
    page.select_option("#kernel-add", "box")
    assert "at most 16 kernels" in page.text_content("#error-kernels")
    assert page.locator("#kernel-list > li").count() == 16
    # Removing one makes room again; the message goes with the next change.
    before = rendered(page)
    page.click("#kernel-list li:nth-child(2) button.kernel-remove")
    settle(page, before)
    assert page.text_content("#kernels-count") == "15 of 16"
    assert page.text_content("#error-kernels") == ""
    # Editing a weight switches the layer to your own weights (J×kh×kw in the URL) ...
    page.click("#kernel-list li:nth-child(1) summary")
    before = rendered(page)
    page.fill("#kernel-list li:nth-child(1) .weights-grid input[aria-label='kernel 0 weight (1, 1)']", "5")
    settle(page, before)
    weights = json.loads(query_of(page)["weights"])
    assert len(weights) == 15 and weights[0][1][1] == 5 and weights[0][0] == [-1, 0, 1]
    assert "sobel_x (edited)" in page.text_content("#maps")
    assert (page.text_content("#maps") or "").count("(edited)") == 1  # only the kernel you changed
    # The other kernels keep their exact weights (the grid shows only 4 significant digits): the
    # second kernel of the list is the random preset at seed 0 + 1.
    presets = page.evaluate("fetch('/api/presets?size=3&seed=1').then((r) => r.json())")
    assert weights[1] == next(p["weights"] for p in presets["presets"] if p["name"] == "random")
    # ... and a kernel added then is appended to them.
    page.click("#kernel-list li:nth-child(3) button.kernel-remove")
    page.wait_for_function(f"() => {WEIGHTS_COUNT} === 14")
    before = rendered(page)
    page.select_option("#kernel-add", "box")
    page.wait_for_function(f"() => {WEIGHTS_COUNT} === 15")
    settle(page, before)
    weights = json.loads(query_of(page)["weights"])
    assert weights[-1] == [[1 / 9] * 3] * 3 or all(abs(x - 1 / 9) < 1e-9 for row in weights[-1] for x in row)
    assert page.console.errors == []


def test_dense_hover_links_an_entry_to_its_weight_pixel_and_output(page, server) -> None:  # type: ignore[no-untyped-def]
    query = "sample=tiny&kernels=sobel_x,box&kernel_size=3,5&stride=2,1&padding=1,2&tab=dense&crop=0,0,8,8"
    page.goto(f"/?{query}")
    settle(page)
    page.wait_for_function("() => document.querySelector('#dense-shape').textContent")
    image_id = page.evaluate("document.querySelector('#workspace').dataset.imageId")
    fields = dict(urllib.parse.parse_qsl(query))
    for key in ("sample", "tab"):
        fields.pop(key)
    api = post_json(server, "/api/dense-matrix", {**fields, "image_id": image_id})
    rows, cols = api["shape"]
    e = api["entries"]
    i = len(e["rows"]) * 2 // 3
    row, col, tied = e["rows"][i], e["cols"][i], e["tied"][i]
    _, ho, wo = api["output_shape"]
    _, h, w = api["input_shape"]
    page.locator("#dense-canvas").scroll_into_view_if_needed()
    box = page.locator("#dense-canvas").bounding_box()
    cell = box["width"] / cols
    page.mouse.move(box["x"] + (col + 0.5) * cell, box["y"] + (row + 0.5) * cell)
    shown = page.evaluate("({...document.querySelector('#dense-info').dataset})")
    assert shown["entry"] == f"{row},{col}"
    assert shown["tied"] == str(tied)
    assert shown["pixel"] == f"{col // (h * w)},{col % (h * w) // w},{col % w}"
    assert shown["output"] == f"{row // (ho * wo)},{row % (ho * wo) // wo},{row % wo}"
    selected = page.locator("#dense-kernel td.selected")
    assert selected.count() == 1 and selected.get_attribute("data-tied") == str(tied)
    # Hovering a weight lights all its copies in M, and says how many there are.
    page.hover(f"#dense-kernel td[data-tied='{tied}']")
    assert f"appears {e['tied'].count(tied)} times in M" in page.text_content("#dense-info")
    assert page.console.errors == []


def grad_api(server: str, page, weight: str) -> float:  # type: ignore[no-untyped-def]
    """The API's gradient for the layer in the page's URL (the page's defaults included)."""
    layer = {k: v for k, v in query_of(page).items() if k not in ("sample", "tab", "unit", "step", "weight")}
    data = post_json(server, "/api/gradient", {**layer, "weight": weight, "loss": "sum"})
    return float(data["grad_w_at_weight"])


def test_the_gradient_contributions_add_up_to_the_api_update(page, server) -> None:  # type: ignore[no-untyped-def]
    running = "() => document.querySelector('#grad-running').dataset.sum"
    # Small output: the API lists the contributions.
    page.goto("/?sample=tiny&tab=gradients&loss=sum&kernels=sobel_y&weight=0,0,2,1")
    settle(page)
    page.wait_for_function(running)
    total = float(page.get_attribute("#grad-running", "data-sum") or "nan")
    api = grad_api(server, page, "0,0,2,1")
    assert page.get_attribute("#grad-running", "data-count") == str(12 * 12)
    assert abs(total - api) <= 1e-4 * max(1.0, abs(api))
    # Large output (320×320 > the 65,536 values the JSON lists) with an activation: the page
    # reads the 102,400 contributions as .npy from /api/gradient and they still add up.
    extra = {"kernels": "sobel_x,laplacian", "activation": "relu", "padding": "2", "dilation": "2"}
    page.goto("/?" + urllib.parse.urlencode({**extra, "tab": "gradients", "loss": "sum",
                                             "weight": "1,0,0,2"}))
    settle(page)
    page.wait_for_function(running)
    total = float(page.get_attribute("#grad-running", "data-sum") or "nan")
    api = grad_api(server, page, "1,0,0,2")
    assert page.get_attribute("#grad-running", "data-count") == str(320 * 320)
    assert float(page.get_attribute("#grad-sum", "data-api") or "nan") == api
    assert abs(total - api) <= 1e-4 * max(1.0, abs(api))
    assert "as .npy (format=npy)" in page.text_content("#grad-running")
    # With ReLU the pieces are σ′(z)·x, and the page says so.
    assert "∂L/∂z = σ′(z)" in page.text_content("#grad-intro")
    assert "σ′(z) · x)" in (page.get_attribute("#grad-map .colourbar", "aria-label") or "")
    assert "separate updates" in page.text_content("#grad-untied")
    assert page.console.errors == []


def test_formula_symbols_show_their_place_in_the_picture(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard&stride=2&padding=2&dilation=2")
    settle(page)
    page.hover("#formula-numbers .sym-p >> nth=0")
    assert page.get_attribute("#formula-pic", "data-symbol") == "p"
    assert "p = 2×2" in page.text_content("#formula-pic-text")
    assert page.locator(".num-row.hl").get_attribute("data-field") == "padding"
    page.focus(".sym-btn[data-sym='s']")
    assert page.get_attribute("#formula-pic", "data-symbol") == "s"
    assert page.locator(".num-row.hl").get_attribute("data-field") == "stride"
    assert "every 2nd row" in page.text_content("#arithmetic")


def test_formulas_wrap_instead_of_scrolling_on_a_phone(page) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/?tab=formula&kernels=sobel_x,laplacian&stride=2&padding=1&dilation=2&activation=relu")
    settle(page)
    scrolled = page.evaluate("""() => [...document.querySelectorAll('#tab-formula *')]
        .filter((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== 'visible')
        .map((e) => e.id || e.className || e.tagName)""")
    assert scrolled == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # Every tab button is on screen (they wrap rather than scroll away).
    rights = page.evaluate(
        "[...document.querySelectorAll('.tablist button')].map((b) => b.getBoundingClientRect().right)")
    assert len(rights) >= 5 and max(rights) <= 390
    # The layer's formula breaks before x: its second piece sits below the first.
    tops = page.evaluate("""() => [...document.querySelectorAll('#formula-numbers .math-wrap > math')]
        .map((m) => m.getBoundingClientRect().top)""")
    assert len(tops) == 2 and tops[1] > tops[0] + 5
    # Wide, the same formula is one line.
    page.set_viewport_size({"width": 1280, "height": 900})
    boxes = page.evaluate("""() => [...document.querySelectorAll('#formula-generic > math')]
        .map((m) => { const r = m.getBoundingClientRect(); return [r.left, r.right]; })""")
    assert len(boxes) == 2 and boxes[1][0] >= boxes[0][1] - 1
    assert page.console.errors == []


def test_picking_a_weight_or_kernel_on_the_gradients_tab_updates_it(page, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=sobel_x,box&padding=1&tab=gradients&loss=sum&weight=1,0,1,1")
    settle(page)
    page.wait_for_function("() => document.querySelector('#grad-running').dataset.sum")
    assert page.input_value("#grad-kernel") == "1"
    # Click weight (0, 2) of kernel 1: the URL, the selection and the number follow, kernel kept.
    page.click("#grad-grid td[data-u='0'][data-v='2']")
    page.wait_for_function("() => new URLSearchParams(location.search).get('weight') === '1,0,0,2'")
    page.wait_for_function("() => document.querySelector('#grad-sum').textContent.includes('[0, 0, 2]')")
    assert page.input_value("#grad-kernel") == "1"
    assert float(page.get_attribute("#grad-sum", "data-api") or "nan") == grad_api(server, page, "1,0,0,2")
    # Choose kernel 0: the same tap of the other kernel.
    page.select_option("#grad-kernel", "0")
    page.wait_for_function("() => document.querySelector('#grad-sum').textContent.includes('W₀[0, 0, 2]')")
    assert float(page.get_attribute("#grad-sum", "data-api") or "nan") == grad_api(server, page, "0,0,0,2")
    assert page.console.errors == []


def test_the_dense_crop_controls_change_the_matrix(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard&kernels=sobel_x&padding=1&tab=dense")
    settle(page)
    page.wait_for_function("() => document.querySelector('#dense-shape').textContent.includes('64 × 64')")
    page.fill("#crop-size", "12")  # a range input: fill sets its value and fires input/change
    page.wait_for_function("() => document.querySelector('#dense-shape').textContent.includes('144 × 144')")
    assert page.input_value("#crop-size") == "12"
    page.fill("#crop-top", "100")
    page.dispatch_event("#crop-top", "change")
    page.wait_for_function("() => new URLSearchParams(location.search).get('crop') === '100,0,12,12'")
    assert page.input_value("#crop-top") == "100"
    assert "144 × 144" in page.text_content("#dense-shape")
    assert page.console.errors == []


def _layer_output(server: str, fields: dict[str, str]):  # type: ignore[no-untyped-def]
    """The layer's whole output from /api/convolve (format=npy)."""
    import numpy as np

    request = urllib.request.Request(server + "/api/convolve",
                                     data=urllib.parse.urlencode({**fields, "format": "npy"}).encode())
    with urllib.request.urlopen(request, timeout=10) as res:
        return np.load(io.BytesIO(res.read()))


def test_sliding_values_are_the_layer_outputs_even_at_the_corner_edges(page, server) -> None:  # type: ignore[no-untyped-def]
    # The sweep covers the whole 256x256 output: the edges read padding, the middle real pixels.
    layer = {"kernels": "sobel_x", "padding": "1", "kernel_size": "3", "stride": "1", "dilation": "1"}
    page.goto("/?" + urllib.parse.urlencode({"sample": "checkerboard", "tab": "sliding", **layer}))
    settle(page)
    image_id = page.evaluate("document.querySelector('#workspace').dataset.imageId")
    y = _layer_output(server, {**layer, "image_id": image_id})
    steps = int(page.get_attribute("#slide-pos", "max") or 0) + 1
    assert steps == 256 * 256
    for step in (0, 255, 130 * 256 + 77, 256 * 256 - 1):
        page.fill("#slide-pos", str(step))
        info = page.evaluate("({...document.querySelector('#slide-info').dataset})")
        m, n = int(info["m"]), int(info["n"])
        assert (m, n) == divmod(step, 256)
        assert abs(float(info["value"]) - float(y[0, m, n])) < 1e-4, (m, n)
    # The tiny 12x12 sample fits whole: its padding shows on all four sides, outputs as the layer's.
    page.goto("/?" + urllib.parse.urlencode({"sample": "tiny", "tab": "sliding", **layer}))
    settle(page)
    image_id = page.evaluate("document.querySelector('#workspace').dataset.imageId")
    y = _layer_output(server, {**layer, "image_id": image_id})
    assert int(page.get_attribute("#slide-pos", "max") or 0) + 1 == 12 * 12
    page.fill("#slide-pos", str(12 * 12 - 1))
    info = page.evaluate("({...document.querySelector('#slide-info').dataset})")
    assert abs(float(info["value"]) - float(y[0, 11, 11])) < 1e-4
    assert page.console.errors == []


def test_the_formula_with_groups_sums_over_the_kernels_own_channels(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=astronaut&color=rgb&groups=3&kernels=sobel_x,sobel_y,box&tab=formula")
    settle(page)
    label = page.get_attribute("#formula-numbers .math-wrap", "aria-label") or ""
    assert "sum over c from 0 to 0," in label  # 3 channels in 3 groups: one channel per kernel
    assert "x of channel floor(j / 1) · 1 + c" in label
    text = page.text_content("#formula-numbers") or ""
    assert "⌊" in text and "⌋" in text
    page.goto("/?sample=astronaut&color=rgb&kernels=sobel_x&tab=formula")
    settle(page)
    label = page.get_attribute("#formula-numbers .math-wrap", "aria-label") or ""
    assert "sum over c from 0 to 2," in label and "x c at" in label
    assert page.console.errors == []


def test_a_refused_change_dims_the_last_good_layer_and_letters_are_named(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard&kernels=sobel_x&stride=1,2")
    settle(page)
    page.fill("#stride", "0")
    page.wait_for_function("() => document.body.classList.contains('stale')")
    assert "stride" in page.text_content("#error-stride")
    assert page.get_attribute("#maps-caption", "data-stale") == "the last layer that worked"
    before = rendered(page)
    page.fill("#stride", "2")
    settle(page, before)
    assert not page.evaluate("document.body.classList.contains('stale')")
    assert page.get_attribute("#maps-caption", "data-stale") is None
    # A letter in a number field is named, and nothing is computed from it.
    before = rendered(page)
    page.focus("#groups")
    page.keyboard.press("Control+A")
    page.keyboard.type("e")
    page.wait_for_function("() => document.querySelector('#error-groups').textContent.includes('number')")
    page.wait_for_timeout(400)
    assert rendered(page) == before
    assert page.get_attribute("#groups", "aria-invalid") == "true"


def test_kernel_size_steps_from_odd_to_odd_for_presets_that_need_a_centre(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=sobel_x&kernel_size=3")
    settle(page)
    before = rendered(page)
    page.click("button.step[data-target='kernel_size'][data-delta='1']")
    settle(page, before)
    assert page.input_value("#kernel_size") == "5"
    assert page.text_content("#error-kernel_size") == ""
    page.goto("/?sample=tiny&kernels=box&kernel_size=3")
    settle(page)
    before = rendered(page)
    page.click("button.step[data-target='kernel_size'][data-delta='1']")
    settle(page, before)
    assert page.input_value("#kernel_size") == "4"  # box is defined for every size
    assert page.console.errors == []


def test_a_pinned_window_on_a_wide_input_is_scrolled_into_sight(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wide = tmp_path / "wide.png"
    Image.new("L", (900, 200), 128).save(wide)
    page.goto("/?kernels=box&kernel_size=9&padding=4&zoom=1")  # 1:1: the input pans in its box
    settle(page)
    before = rendered(page)
    page.set_input_files("#image", str(wide))
    settle(page, before)
    assert page.evaluate("document.querySelector('#input-view').classList.contains('scrolls')")
    assert "scroll to pan" in page.text_content("#input-caption")
    # Pin the unit at the right edge by URL, as a shared link would.
    url = page.url.replace("&unit=", "&_=") + "&unit=100,899"
    page.goto(url)
    settle(page)
    page.wait_for_function("() => !document.querySelector('#rf-box').hidden")
    assert page.get_attribute("#rf-box", "data-left") == str(899 - 4)
    view = page.locator("#input-view").bounding_box()
    box = page.locator("#rf-box").bounding_box()
    assert view["x"] - 1 <= box["x"] and box["x"] + box["width"] <= view["x"] + view["width"] + 1
    assert page.evaluate("document.querySelector('#input-view').scrollLeft") > 0
    assert page.console.errors == []
