"""Limits live in Settings: raised through CONVLENS_* variables, the page and its JS follow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from live_server import serve_app
from test_page import KERNEL_COUNT, rendered, settle

RAISED = {"CONVLENS_MAX_KERNELS": "24", "CONVLENS_MAX_KERNEL_SIZE": "41"}


@pytest.fixture(scope="module")
def raised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a second app whose kernel limits are raised through the environment."""
    log = tmp_path_factory.mktemp("raised") / "uvicorn.log"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in RAISED.items():
            mp.setenv(key, value)
        try:
            with serve_app(log) as base:
                yield base
        except RuntimeError as err:
            pytest.fail(str(err))


def test_a_raised_kernel_size_limit_reaches_the_stepper_and_the_layer(page, raised) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{raised}/?sample=checkerboard&kernels=box&kernel_size=31&padding=1")
    settle(page)
    assert page.get_attribute("#kernel_size", "data-max") == "41"
    assert "1–41" in page.text_content("#hint-kernel_size")
    before = rendered(page)
    page.click("button.step[data-target='kernel_size'][data-delta='1']")
    settle(page, before)
    assert page.input_value("#kernel_size") == "32"  # no longer stopped at the default 31
    before = rendered(page)
    page.fill("#kernel_size", "41")
    settle(page, before)
    assert "1×256×256 input → 1×218×218 output" in page.text_content("#status")  # 256 + 2 − 41 + 1
    assert page.console.errors == []
    # The stepper stops at the limit, and the server refuses one more.
    page.click("button.step[data-target='kernel_size'][data-delta='1']")
    page.wait_for_timeout(300)
    assert page.input_value("#kernel_size") == "41"
    page.fill("#kernel_size", "42")
    page.wait_for_function("() => document.querySelector('#error-kernel_size').textContent.length > 0")
    assert "41" in page.text_content("#error-kernel_size")


def test_a_raised_kernel_limit_reaches_the_kernel_list(page, raised) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{raised}/?sample=tiny&kernels=sobel_x")
    settle(page)
    assert page.text_content("#kernels-count") == "1 of 24"
    for _ in range(23):
        page.select_option("#kernel-add", "random")
    page.wait_for_function(f"() => {KERNEL_COUNT} === 24")
    settle(page)
    assert page.text_content("#kernels-count") == "24 of 24"
    assert "24×12×12 output" in page.text_content("#status")
    assert page.locator("#maps img.fmap").count() == 24
    page.select_option("#kernel-add", "box")
    assert "at most 24 kernels" in page.text_content("#error-kernels")
    assert page.console.errors == []
