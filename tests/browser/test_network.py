"""The Network tab in a real browser: build a 3-layer stack, hover a unit, see its box and its ERF."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

SETTLED = """() => document.body.dataset.rendered && !document.body.hasAttribute('data-busy')"""
NET_RENDERED = "() => Number(document.querySelector('#tab-network').dataset.rendered || 0)"
LAYERS = [{"kernels": "sobel_x,sobel_y", "padding": [1, 1]}, {"kind": "relu"},
          {"kernels": "box", "padding": [1, 1], "stride": [2, 2]}]


def post_json(base: str, path: str, fields: dict[str, str]) -> dict:  # type: ignore[type-arg]
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data), timeout=10) as res:
        return json.loads(res.read())


def net_rendered(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.evaluate(NET_RENDERED))


def wait_render(page, after: int) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(f"() => ({NET_RENDERED})() > {after}")
    page.wait_for_function("""() => [...document.querySelectorAll('#net-rows img')]
        .every((i) => i.complete && i.naturalWidth > 0)""")


def open_network(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?tab=network")
    page.wait_for_function(SETTLED)
    wait_render(page, 0)


def build_three_layers(page) -> None:  # type: ignore[no-untyped-def]
    """From the default preset: remove layers down to the first conv, add a ReLU and a strided box conv."""
    while page.locator("#net-layers > li").count() > 1:
        before = net_rendered(page)
        page.locator("#net-layers > li").last.get_by_role("button", name="remove").click()
        wait_render(page, before)
    for _ in range(2):
        before = net_rendered(page)
        page.click("#net-add")
        wait_render(page, before)
    third = page.locator("#net-layers > li").nth(2)
    before = net_rendered(page)
    third.locator('input[data-name="stride"]').fill("2")
    wait_render(page, before)


def test_three_layers_hover_draws_the_api_box_and_the_erf(page, server, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    open_network(page)
    build_three_layers(page)
    kinds = page.locator("#net-layers select").evaluate_all("(s) => s.map((x) => x.value)")
    assert kinds == ["conv", "relu", "conv"]
    assert page.locator("#net-rows .net-row").count() == 3
    head = page.locator("#net-rows .net-row").nth(2).locator("h3").text_content()
    assert "→ 1×160×160" in head
    rows = page.locator("#net-table tbody tr")
    assert rows.nth(2).locator("td").nth(2).text_content() == "5"  # size 3 → 3 → 5
    assert rows.nth(2).locator("td").nth(3).text_content() == "2"  # jump 1 → 1 → 2
    assert page.locator(".net-channels").nth(2).text_content() == "2 → 1 map"  # C_in follows

    img = page.locator("#net-rows .net-row").nth(2).locator("img").first
    box = img.bounding_box()
    assert box is not None
    fx, fy = 0.3, 0.6
    page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
    page.wait_for_function("() => document.querySelector('#net-canvas').dataset.erf === 'drawn'")
    unit = [int(v) for v in page.get_attribute("#net-canvas", "data-unit").split(",")]
    assert unit[:2] == [2, 0]
    assert abs(unit[2] - int(fy * 160)) <= 2 and abs(unit[3] - int(fx * 160)) <= 2  # 112 px for 160 units
    drawn = [int(v) for v in page.get_attribute("#net-canvas", "data-box").split(",")]

    image_id = page.evaluate("document.querySelector('#workspace').dataset.imageId")
    query = {"image_id": image_id, "layers": json.dumps(LAYERS), "row": str(unit[2]), "col": str(unit[3])}
    rf = post_json(server, "/api/receptive-field", query)
    assert drawn == [rf["box"]["top"], rf["box"]["left"], rf["box"]["height"], rf["box"]["width"]]
    assert rf["box"]["height"] == 5 and rf["box"]["top"] == 2 * unit[2] - 2

    erf = post_json(server, "/api/erf", {**query, "layer": "2"})
    b = rf["box"]
    assert b["top"] <= erf["center"][0] <= b["top"] + b["height"] - 1
    assert b["left"] <= erf["center"][1] <= b["left"] + b["width"] - 1
    info = page.text_content("#net-rf-info")
    assert f"rows {b['top']}…{b['top'] + 4}" in info and "effective receptive field" in info
    # the ERF heatmap is drawn inside the box: its centre is no longer a grey photo pixel, on the
    # photo (drawn at data-frame = margin, scale) and in the magnified neighbourhood
    probe = """([canvas, row, col]) => {
        const c = document.querySelector(canvas);
        const dpr = c.width / c.clientWidth;
        let x = c.clientWidth / 2;
        let y = c.clientHeight / 2;
        if (canvas === '#net-canvas') {
            const [margin, scale] = c.dataset.frame.split(',').map(Number);
            [x, y] = [margin + (col + 0.5) * scale, margin + (row + 0.5) * scale];
        }
        const ctx = c.getContext('2d');
        return Array.from(ctx.getImageData(Math.floor(x * dpr), Math.floor(y * dpr), 1, 1).data);
    }"""
    centre = (b["top"] + b["height"] // 2, b["left"] + b["width"] // 2)
    for canvas in ("#net-canvas", "#net-zoom"):
        r, g, bl, _ = page.evaluate(probe, [canvas, *centre])
        assert max(r, g, bl) - min(r, g, bl) > 20, (canvas, r, g, bl)  # coloured by the heatmap
    page.screenshot(path=str(screenshots / "network-1280.png"), full_page=True)
    assert page.console.errors == []


def test_network_bad_field_is_shown_on_its_row(page) -> None:  # type: ignore[no-untyped-def]
    open_network(page)
    first = page.locator("#net-layers > li").first
    first.locator('input[data-name="kernel_size"]').fill("99")
    page.wait_for_function("() => document.querySelector('#error-layers').textContent.includes('kernel')")
    assert "invalid" in (first.locator('input[data-name="kernel_size"]').get_attribute("class") or "")


def test_network_at_phone_width(browser, server, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 375, "height": 800}, base_url=server)
    page = context.new_page()
    try:
        open_network(page)
        img = page.locator("#net-rows .net-row").last.locator("img").first
        img.scroll_into_view_if_needed()
        box = img.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_function("() => document.querySelector('#net-canvas').dataset.erf === 'drawn'")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375 + 1, width  # nothing sticks out sideways
        page.screenshot(path=str(screenshots / "network-375.png"), full_page=True)
    finally:
        context.close()


def test_dense_tab_toggles_m_and_its_transpose_with_the_checkerboard(page, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?tab=dense&kernels=box&stride=2&padding=1")
    page.wait_for_function(SETTLED)
    page.wait_for_function("() => document.querySelector('#transpose-coverage table') !== null")
    assert page.get_attribute("#tab-dense", "data-matrix") == "conv"
    page.get_by_role("button", name="Mᵀ (transposed conv)").click()
    assert page.get_attribute("#tab-dense", "data-matrix") == "transposed"
    assert page.is_visible("#transpose-canvas") and not page.is_visible("#dense-canvas")
    counts = page.locator("#transpose-coverage td").all_text_contents()
    image_id = page.evaluate("document.querySelector('#workspace').dataset.imageId")
    crop = page.evaluate("[...new URLSearchParams(location.search).entries()]")
    fields = {"image_id": image_id, "kernels": "box", "stride": "2", "padding": "1", "crop": "0,0,8,8"}
    fields.update({k: v for k, v in crop if k == "crop"})
    dense = post_json(server, "/api/dense-matrix", fields)
    assert [int(c) for c in counts] == [n for row in dense["transposed_coverage"] for n in row]
    assert {int(c) for c in counts} >= {1, 2, 4}  # uneven: the checkerboard of a stride-2 3x3 kernel
    assert "checkerboard" in page.text_content("#transpose-coverage")
    page.get_by_role("button", name="M (conv)").click()
    assert page.is_visible("#dense-canvas") and not page.is_visible("#transpose-canvas")
    assert page.console.errors == []
