"""The Learn tab in a real browser: Start streams POST /api/train into the progress bar, the loss
curve, the learned kernel and the chosen weight's contributions; Stop aborts the stream; a full run
recovers the hidden kernel and shows the shared and untied layers on images they never saw."""

from __future__ import annotations

from pathlib import Path

PROGRESS = "() => Number(document.querySelector('#learn-progress').value)"
POINTS = "() => Number(document.querySelector('#learn-curve').dataset.points || 0)"
STATE = "() => document.querySelector('#tab-learn').dataset.state"


def open_learn(page, width: int = 1280) -> None:  # type: ignore[no-untyped-def]
    page.set_viewport_size({"width": width, "height": 900})
    page.goto("/?tab=learn")
    page.wait_for_function("() => Number(document.body.dataset.rendered || 0) >= 1")
    page.wait_for_function("() => document.querySelectorAll('#learn-hidden option').length > 3")


def run_to_the_end(page, steps: int) -> None:  # type: ignore[no-untyped-def]
    page.fill("#learn-steps", str(steps))
    page.click("#learn-start")
    page.wait_for_function(f"() => ({STATE})() === 'done'", timeout=90_000)
    page.wait_for_function("() => [...document.querySelectorAll('#learn-maps img')].every((i) => i.complete "
                           "&& i.naturalWidth > 0)")
    label = "document.querySelector('#learn-weight-label').textContent"
    page.wait_for_function(f"() => {label}.endsWith(' {steps:,}')")


def test_start_stop_and_a_full_run_recover_the_hidden_kernel(page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    open_learn(page)
    assert page.get_attribute("#tabbtn-learn", "aria-selected") == "true"
    page.select_option("#learn-hidden", "sobel_x")
    assert page.is_disabled("#learn-stop")

    # A long run: the progress bar and the loss curve advance while the stream comes in.
    page.fill("#learn-steps", "5000")
    page.click("#learn-start")
    page.wait_for_function(f"() => ({PROGRESS})() >= 20 && ({POINTS})() >= 3", timeout=30_000)
    progress, points = page.evaluate(PROGRESS), page.evaluate(POINTS)
    page.wait_for_function(f"() => ({PROGRESS})() > {progress} && ({POINTS})() > {points}", timeout=30_000)
    assert page.evaluate("() => document.querySelector('#learn-curve path.loss.shared').getAttribute('d')"
                         ".split('L').length") > points
    untied = "document.querySelector('#learn-curve path.loss.untied').dataset.points"
    assert page.evaluate(f"() => {untied}") != "0"
    assert page.is_disabled("#learn-start") and page.evaluate(STATE) == "running"
    # The chosen weight's contributions at the current step add up to the stream's gradient.
    page.wait_for_function("() => document.querySelector('#learn-sum').dataset.sum !== undefined",
                           timeout=30_000)
    total, grad = page.evaluate("() => [Number(document.querySelector('#learn-sum').dataset.sum), "
                                "Number(document.querySelector('#learn-sum').dataset.grad)]")
    assert abs(total - grad) <= 2e-3 * abs(grad) + 1e-7
    # The map is a data URI set in the same tick as the sum: the browser decodes it a moment later.
    page.wait_for_function("() => document.querySelector('#learn-map img').naturalWidth > 0", timeout=10_000)

    # Stop aborts the request: the bar stays where it stopped, well before the end.
    page.click("#learn-stop")
    page.wait_for_function(f"() => ({STATE})() === 'stopped'")
    stopped = page.evaluate(PROGRESS)
    page.wait_for_timeout(700)
    assert page.evaluate(PROGRESS) == stopped < 5000
    assert "Stopped at step" in page.text_content("#learn-status")
    assert page.is_enabled("#learn-start") and page.is_disabled("#learn-stop")

    # A full run: the learned kernel is within 2% of the hidden one, and only the shared layer
    # keeps fitting the shifted and the new image.
    run_to_the_end(page, 500)
    relative = float(page.get_attribute("#tab-learn", "data-relative") or "1")
    assert relative < 0.02, relative
    shared = float(page.get_attribute("#learn-table td.shared[data-loss]", "data-loss") or "nan")
    untied = float(page.get_attribute("#learn-table td.untied[data-loss]", "data-loss") or "nan")
    assert untied > 10 * shared
    assert page.locator("#learn-maps .learn-maps-row").count() == 3
    assert "still fits" in page.text_content("#learn-verdict")
    page.locator("#tab-learn").screenshot(path=str(screenshots / "desktop-learn.png"))
    assert page.console.errors == []


def test_a_drawn_kernel_is_learned_on_a_phone(page, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    open_learn(page, width=375)
    page.select_option("#learn-brush", "0")
    for cell in page.locator("#learn-draw td").all():  # paint it empty, then a diagonal difference
        cell.click()
    page.select_option("#learn-brush", "1")
    page.click("#learn-draw td[data-u='0'][data-v='0']")
    page.select_option("#learn-brush", "-1")
    page.click("#learn-draw td[data-u='2'][data-v='2']")
    assert page.input_value("#learn-hidden") == "drawn"
    assert page.text_content("#learn-hidden-grid td[data-u='2'][data-v='2']").startswith("−1")
    assert page.text_content("#learn-hidden-grid td[data-u='1'][data-v='1']").startswith("0")
    # On a smooth photo a diagonal difference is pinned down more slowly than sobel_x: measured 10%
    # off after 400 steps, 1% after 1000.
    run_to_the_end(page, 1000)
    assert float(page.get_attribute("#tab-learn", "data-relative") or "1") < 0.05
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 375, f"the page scrolls sideways on a phone ({width} px)"
    page.locator("#tab-learn").screenshot(path=str(screenshots / "mobile-learn.png"))
    assert page.console.errors == []
