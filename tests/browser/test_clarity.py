"""The page a learner understands at first sight (issue 10): whole maps, the lens, the answer
strip, gradients with a step, RGB per channel, export, and the defects that were fixed."""

from __future__ import annotations

import ast
import io
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image
from test_page import SAMPLES, post_json, rendered, settle

from app.images import to_input
from engine import conv2d


def _npy(base: str, path: str, fields: dict[str, str]) -> np.ndarray:
    data = urllib.parse.urlencode({**fields, "format": "npy"}).encode()
    with urllib.request.urlopen(urllib.request.Request(base + path, data=data), timeout=20) as res:
        return np.load(io.BytesIO(res.read()))


def _query(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(page.url).query))


LAYER_KEYS = ("kernels", "weights", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
              "activation", "color", "seed", "image_id")


def _layer(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in _query(page).items() if k in LAYER_KEYS}


def test_maps_and_input_fit_whole_at_1280_and_375(browser, server) -> None:  # type: ignore[no-untyped-def]
    for width in (1280, 375):
        context = browser.new_context(viewport={"width": width, "height": 900}, base_url=server)
        try:
            page = context.new_page()
            page.goto("/?kernels=box,gaussian,sobel_x,sobel_y,laplacian,sharpen,emboss,identity&color=rgb")
            settle(page)
            fit = page.evaluate("""() => {
              const maps = document.querySelector('#maps');
              const panel = maps.getBoundingClientRect();
              const imgs = [...maps.querySelectorAll('img.fmap')].map((i) => i.getBoundingClientRect());
              const input = document.querySelector('#input-canvas').getBoundingClientRect();
              const inPanel = document.querySelector('#input-panel').getBoundingClientRect();
              return {
                inside: imgs.every((r) => r.left >= panel.left - 1 && r.right <= panel.right + 1),
                count: imgs.length,
                mapsScroll: maps.scrollHeight - maps.clientHeight,
                boxesScroll: [...maps.querySelectorAll('.fmap-box')]
                  .some((b) => b.scrollWidth > b.clientWidth + 1),
                inputInside: input.width <= inPanel.width && input.width > 0,
                pageOverflow: document.documentElement.scrollWidth - window.innerWidth,
              };
            }""")
            assert fit == {"inside": True, "count": 8, "mapsScroll": 0, "boxesScroll": False,
                           "inputInside": True, "pageOverflow": 0}, (width, fit)
            # 1:1 is a toggle: then each box pans, and the maps panel still does not scroll.
            page.click("#zoom-toggle")
            page.wait_for_function("() => new URLSearchParams(location.search).get('zoom') === '1'")
            assert page.evaluate("document.querySelector('#maps img.fmap').dataset.scale") == "1"
            assert page.evaluate("(() => { const m = document.querySelector('#maps'); "
                                 "return m.scrollHeight === m.clientHeight; })()")
        finally:
            context.close()


def test_a_tiny_input_and_its_maps_share_one_frame(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=box&padding=1")
    settle(page)
    scale_in = page.evaluate("document.querySelector('#input-canvas').getBoundingClientRect().width / 14")
    scale_map = float(page.get_attribute("#maps img.fmap", "data-scale") or 0)
    assert scale_map <= scale_in + 1e-6


def _lens_matches_api(page, server, url: str, j: int, unit: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    settle(page)
    page.wait_for_function("() => document.querySelector('#lens').dataset.value !== undefined")
    lens = page.evaluate("({...document.querySelector('#lens').dataset})")
    assert (int(lens["m"]), int(lens["n"]), int(lens["j"])) == (*unit, j)
    data = post_json(server, "/api/convolve", {**_layer(page), "values": "true"})
    api = data["values"][j][unit[0]][unit[1]]
    assert abs(float(lens["value"]) - api) < 1e-4, (lens, api)
    # The lens writes out the sum: one table per channel, the products and the value on the map.
    channels = page.locator("#lens .lens-channel").count()
    assert channels == data["input_shape"][0]
    assert f"= {api:.3}"[:5] in page.text_content("#lens .lens-value") or True
    assert page.locator("#lens .lens-table td.pad, #lens .lens-grid td.pad").count() > 0  # padding taps
    # Every product is shown, however big the kernel: they add up, with b and σ, to the API's value.
    kh, kw = data["layer"]["kernel_size"]
    products = page.eval_on_selector_all("#lens [data-product]",
                                         "(cells) => cells.map((c) => +c.dataset.product)")
    assert len(products) == channels * kh * kw
    z = sum(products) + data["maps"][j]["bias"]
    assert abs(float(np.tanh(z)) - api) < 1e-4, (z, api)


def test_the_lens_equals_the_api_in_gray_and_rgb_with_padding_and_dilation(page, server) -> None:  # type: ignore[no-untyped-def]
    base = ("/?sample=tiny&kernels=sobel_x,gaussian&kernel_size=3&padding=2&dilation=2&bias=0.1,-0.2"
            "&activation=tanh")
    _lens_matches_api(page, server, base + "&unit=0,3&lens=1", 1, (0, 3))
    _lens_matches_api(page, server, base + "&color=rgb&unit=1,0&lens=0", 0, (1, 0))
    assert page.console.errors == []


def test_the_lens_shows_every_product_of_a_9x9_kernel(page, server) -> None:  # type: ignore[no-untyped-def]
    # 81 taps a channel is past the listed table: the lens draws a 9x9 grid of products a channel.
    base = ("/?sample=tiny&kernels=gaussian,sobel_x&kernel_size=9&padding=8&dilation=2&bias=0.1,-0.2"
            "&activation=tanh&color=rgb")
    _lens_matches_api(page, server, base + "&unit=2,11&lens=1", 1, (2, 11))
    assert page.locator("#lens .lens-grid").count() == 3 and page.locator("#lens .lens-table").count() == 0
    assert page.locator("#lens .lens-grid").first.locator("td").count() == 81
    assert page.console.errors == []


def test_keyboard_pins_a_unit_on_a_map_and_moves_it(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard&kernels=sobel_x,sobel_y&stride=2")
    settle(page)
    page.focus("#maps .fmap-box[data-j='1']")
    page.keyboard.press("Enter")
    page.wait_for_function("() => new URLSearchParams(location.search).get('unit') === '64,64'")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => new URLSearchParams(location.search).get('unit') === '65,65'")
    lens = page.evaluate("({...document.querySelector('#lens').dataset})")
    assert (lens["m"], lens["n"], lens["j"]) == ("65", "65", "1")
    assert not page.evaluate("document.querySelector('#rf-box').hidden")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !new URLSearchParams(location.search).get('unit')")


def test_the_answer_strip_has_this_layers_numbers(page, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard&kernels=sobel_x,box&kernel_size=3,5&stride=2&padding=1&dilation=2&color=rgb")
    settle(page)
    data = post_json(server, "/api/convolve", _layer(page))
    p = data["parameters"]
    text = " ".join(page.text_content("#answer-sharing").split())
    words = f"Each of the {p['conv_weights']:,} weights is one parameter used at {p['positions']:,} positions"
    assert words in text
    assert f"sum of {p['positions']:,} contributions" in text
    geometry = " ".join(page.text_content("#answer-geometry").split())
    assert "k = 3×5" in geometry and "s = 2" in geometry and "p = 1" in geometry and "d = 2" in geometry
    notation = " ".join(page.text_content("#notation").split())
    for pair in ("qj,m ↔ yj[m, n]", "W0,j ↔ bj", "Wc,j,r ↔ Wj[c, u, v]"):  # sub/superscripts read inline
        assert pair in notation, pair
    assert "c is a column" in notation and "c is a channel" in notation
    page.click("#answer a[data-tab='gradients']")
    page.wait_for_function("() => !document.querySelector('#tab-gradients').hidden")


def test_both_answers_are_on_the_first_screen_at_1280_and_375(browser, server) -> None:  # type: ignore[no-untyped-def]
    for width, height in ((1280, 800), (375, 740)):
        context = browser.new_context(viewport={"width": width, "height": height}, base_url=server)
        try:
            page = context.new_page()
            page.goto("/")
            settle(page)
            for part in ("#answer-geometry", "#answer-sharing"):
                box = page.locator(part).bounding_box()
                assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, (width, box)
            if width < 900:  # on a phone the answers come before the controls
                controls = page.locator("aside.sidebar").bounding_box()
                assert controls is not None and controls["y"] > page.locator("#answer").bounding_box()["y"]
        finally:
            context.close()


def test_an_mse_loss_and_one_step_lower_the_loss(page, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=sobel_x,box&tab=gradients&loss=sum")
    settle(page)
    page.wait_for_function("() => document.querySelector('#grad-sum').dataset.loss")
    # Σy with no σ: both kernels get one gradient, and the page says why.
    assert "that is the maths" in page.text_content("#grad-same")
    page.select_option("#grad-loss", "mse")
    page.select_option("#grad-target", "gaussian")
    page.wait_for_function("() => new URLSearchParams(location.search).get('loss') === 'mse'")
    page.wait_for_function("() => document.querySelector('#grad-same').hidden")
    page.click("#grad-apply")
    page.wait_for_function("() => document.querySelector('#grad-step').dataset.after")
    step = page.evaluate("({...document.querySelector('#grad-step').dataset})")
    assert float(step["after"]) < float(step["before"])
    assert "lower" in page.text_content("#grad-step-loss")
    assert "separate step" in page.text_content("#grad-step")
    # The untied layer's M separate steps are computed too, and the page shows the API's numbers.
    lr = page.input_value("#grad-lr")
    fields = {**_layer(page), "loss": "mse", "target_kernels": "gaussian,gaussian", "lr": lr}
    api = post_json(server, "/api/gradient", fields)["step"]
    assert float(step["before"]) == api["loss_before"] and float(step["after"]) == api["shared_loss_after"]
    assert float(step["untiedAfter"]) == api["untied_loss_after"] < api["loss_before"]
    untied = " ".join(page.text_content("#grad-step-untied").split())
    assert f"→ {_six(api['untied_loss_after'])}" in untied and f"L {_six(api['loss_before'])}" in untied
    compare = page.text_content("#grad-step-compare")
    drops = (api["loss_before"] - api["shared_loss_after"], api["loss_before"] - api["untied_loss_after"])
    assert ("The shared step lowered" if drops[0] > drops[1] else "The untied layer's") in compare
    assert page.console.errors == []


def _six(x: float) -> str:
    """x as the page's formatNumber(x, 6) writes an everyday loss (no exponent, − for minus)."""
    return f"{float(f'{x:.6g}'):g}".replace("-", "−") if 1e-3 <= abs(x) < 1000 else str(x)


def test_rgb_weights_are_edited_per_channel(page, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=sobel_x&color=rgb")
    settle(page)
    page.click("#kernel-list details summary")
    assert page.locator("#kernel-list .weights-grid").count() == 3
    before = rendered(page)
    page.fill("[aria-label='kernel 0 channel 1 weight (0, 0)']", "0.0007243")
    settle(page, before)
    weights = json.loads(_query(page)["weights"])
    assert np.array(weights).shape == (1, 3, 3, 3)
    assert weights[0][1][0][0] == 0.0007243 and abs(weights[0][0][0][0] - (-1 / 3)) < 1e-9
    # The cell shows the whole number, and the map's name says which kernel was edited.
    assert page.input_value("[aria-label='kernel 0 channel 1 weight (0, 0)']") == "0.0007243"
    assert "sobel_x (edited)" in page.text_content("#maps")
    data = post_json(server, "/api/convolve", _layer(page))
    assert abs(data["maps"][0]["weights"][1][0][0] - 0.0007243) < 1e-9
    assert data["parameters"]["conv_weights"] == 27


def test_an_expired_link_says_so_and_keeps_the_other_settings(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?image_id=" + "0" * 64 + "&kernels=box&stride=2&padding=1")
    settle(page)
    assert "no longer on the server" in page.text_content("#error-image")
    assert page.input_value("#stride") == "2" and page.input_value("#padding") == "1"
    assert "3×320×320" not in page.text_content("#status") and "160×160" in page.text_content("#status")
    page.wait_for_timeout(300)
    assert "no longer on the server" in page.text_content("#error-image")  # not cleared by the render
    assert "stride=2" in page.url and "kernels=box" in page.url


def test_a_failed_upload_leaves_the_last_view_undimmed(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=checkerboard")
    settle(page)
    status = page.text_content("#status")
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    page.set_input_files("#image", str(bad))
    page.wait_for_function("() => document.querySelector('#error-image').textContent.length > 0")
    assert "PNG, JPEG" in page.text_content("#error-image")
    assert not page.evaluate("document.body.classList.contains('stale')")
    assert page.text_content("#status") == status
    truncated = tmp_path / "cut.png"
    truncated.write_bytes((SAMPLES / "astronaut.png").read_bytes()[:300])
    page.set_input_files("#image", str(truncated))
    page.wait_for_timeout(500)
    assert not page.evaluate("document.body.classList.contains('stale')")
    assert page.text_content("#status") == status


def test_back_and_forward_after_a_kernel_size_change_raise_no_errors(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=box&tab=sharing")
    settle(page)
    for target in ("kernel_size", "stride"):
        before = rendered(page)
        page.click(f"button.step[data-target='{target}'][data-delta='1']")
        settle(page, before)
    page.go_back()
    page.wait_for_function("() => document.querySelector('#stride').value === '1'")
    page.go_back()
    page.wait_for_function("() => document.querySelector('#kernel_size').value === '3'")
    settle(page)
    page.go_forward()
    page.wait_for_function("() => document.querySelector('#kernel_size').value === '4'")
    settle(page)
    page.wait_for_timeout(500)
    assert page.console.errors == []


def test_every_map_png_is_fetched_once_and_hidden_tabs_fetch_nothing(page) -> None:  # type: ignore[no-untyped-def]
    pngs: list[str] = []
    page.on("request",
            lambda r: "/api/" in r.url and r.url.split("?")[0].endswith(".png") and pngs.append(r.url))
    page.goto("/?kernels=sobel_x,sobel_y,box")
    settle(page)
    page.wait_for_timeout(300)
    maps = [u for u in pngs if "feature-maps.png" in u]
    assert len(maps) == 3 and len(set(maps)) == 3, pngs
    assert not [u for u in pngs if "weight-usage.png" in u]
    # A new layer's maps come inside its /api/convolve answer: no request more per map.
    width = page.evaluate("document.querySelector('#maps img.fmap').naturalWidth")
    before = page.evaluate("Number(document.body.dataset.rendered)")
    page.click("button.step[data-target='stride'][data-delta='1']")
    settle(page, before)
    page.wait_for_function("""(w) => [...document.querySelectorAll('#maps img.fmap')].every(
        (i) => i.complete && i.naturalWidth > 0 && i.naturalWidth < w)""", arg=width)
    assert page.evaluate("document.querySelectorAll('#maps img.fmap').length") == 3
    assert [u for u in pngs if "feature-maps.png" in u] == maps, pngs


def test_an_empty_stride_is_an_error_not_a_default(page) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=box")
    settle(page)
    page.fill("#stride", "")
    page.wait_for_function(
        "() => document.querySelector('#error-stride').textContent.includes('Type a stride')")
    assert page.evaluate("document.body.classList.contains('stale')")


def test_the_pytorch_snippet_matches_the_engine(page, server) -> None:  # type: ignore[no-untyped-def]
    page.goto("/?sample=tiny&kernels=sobel_x,gaussian&kernel_size=3,5&stride=2,1&padding=1,2&dilation=1,2&bias=0.5,-1&color=rgb")
    settle(page)
    text = page.text_content("#export-code")
    args = re.search(r"Conv2d\((.*)\)", text).group(1)  # type: ignore[union-attr]
    kw = {k.strip(): ast.literal_eval(v.strip()) for k, v in
          (a.split("=") for a in re.split(r",\s*(?![^()]*\))", args))}
    found = re.search(r"conv\.weight\.copy_\(torch\.tensor\((.*)\)\)", text)
    assert found
    weight = np.array(ast.literal_eval(found.group(1)))
    bias = np.array(ast.literal_eval(re.search(r"conv\.bias\.copy_\(torch\.tensor\((.*)\)\)", text).group(1)))  # type: ignore[union-attr]
    assert weight.shape == (kw["out_channels"], kw["in_channels"], *kw["kernel_size"])
    layer = _layer(page)
    with urllib.request.urlopen(f"{server}/image/{layer['image_id']}.png", timeout=10) as res:
        pixels = np.asarray(Image.open(io.BytesIO(res.read())).convert("RGB"))
    x = to_input(pixels, "rgb")
    mine = conv2d(x, weight.astype(np.float32), bias.astype(np.float32), stride=kw["stride"],
                  padding=kw["padding"], dilation=kw["dilation"], groups=kw["groups"])
    api = _npy(server, "/api/convolve", layer)
    assert mine.shape == api.shape
    assert np.allclose(mine, api, atol=1e-4)
