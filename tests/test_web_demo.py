"""demo/web_demo.py in a real browser: headless Chromium (Debian's) driven by Playwright.

The demo runs as a user starts it, in a subprocess on a free localhost port, with the tiny
DIT-SAM checkpoint of ``refer_model_fixture``. The browser uploads a SynthRef image, types
sentences and checks that the mask the page shows is, pixel for pixel, the one
``ReferSegInferencer`` returns for the same image and sentence; bad input must get a message.

Needs Gradio (requirements/demo.txt), Playwright (requirements/browser_test.txt) and Debian's
Chromium (``apt-get install chromium``); without them the browser tests are skipped, except in CI
(``CI`` set), where they fail: ``.ci/run`` installs them.
"""
import importlib.util
import os
import runpy
import sys
import urllib.request
from typing import Iterator, Tuple

import cv2
import numpy as np
import pytest
import torch
from refer_model_fixture import write_tiny_model
from tool_loader import load_tool

from dit_sam_mm.apis import ReferSegInferencer
from dit_sam_mm.datasets.refer_pickle import load_refs

#: Starts the demo and drives the page (also what makes the screenshot in docs/en/).
browsing = load_tool('tools/misc/web_demo_screenshot.py')
MAX_PIXELS = 5000  # the 64 x 64 SynthRef images pass, a 100 x 100 one is refused


def require_browser_stack() -> None:
    """Skip (fail in CI) unless Gradio, Playwright and Debian's Chromium are installed."""
    missing = [what for what, there in (
        ('gradio (pip install -r requirements/demo.txt)', importlib.util.find_spec('gradio')),
        ('playwright (pip install -r requirements/browser_test.txt)',
         importlib.util.find_spec('playwright')),
        (f'{browsing.CHROMIUM} (apt-get install chromium)', browsing.CHROMIUM.exists()))
        if not there]
    if missing:
        reason = 'the browser test needs ' + ', '.join(missing)
        if os.environ.get('CI'):
            pytest.fail(f'{reason}; .ci/run installs them')
        pytest.skip(reason)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """The tiny model, thresholded at probability 0.5: the random model's probabilities are all
    close to 0.5, so its masks (at the default 0.35) would cover the whole image."""
    tiny = write_tiny_model(tmp_path_factory.mktemp('tiny_web_demo'))
    config = tiny.config.with_name('tiny_half.py')
    config.write_text(f"_base_ = ['{tiny.config}']\n"
                      'model = dict(decode_head=dict(threshold=0.5))\n')
    return tiny._replace(config=config)


@pytest.fixture(scope='module')
def server(tiny, tmp_path_factory) -> Iterator[str]:
    """The URL of ``python demo/web_demo.py`` serving the tiny model for this module's tests."""
    require_browser_stack()
    folder = tmp_path_factory.mktemp('web_demo_server')
    args = [str(tiny.config), str(tiny.checkpoint), '--device', 'cpu', '--max-pixels',
            str(MAX_PIXELS), '--examples', str(tiny.data_root)]
    # the thread count of this process's reference inferencer: the same float results
    env = dict(GRADIO_TEMP_DIR=str(folder / 'uploads'),
               OMP_NUM_THREADS=str(torch.get_num_threads()))
    with browsing.serve_demo(args, folder / 'demo.log', env) as url:
        yield url


@pytest.fixture(scope='module')
def browser(server):
    with browsing.chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    page.set_default_timeout(browsing.TIMEOUT_MS)
    page.goto(server)
    yield page
    page.close()


def shown_mask(page, server: str, previous: str = '') -> Tuple[np.ndarray, str]:
    """The mask image the page shows and its address, once that differs from ``previous``."""
    image = page.locator('#mask img')
    page.wait_for_function('([img, old]) => img && img.src && img.src !== old',
                           arg=[image.element_handle(), previous])
    src = image.get_attribute('src')
    with urllib.request.urlopen(urllib.request.urljoin(server, src), timeout=10) as response:
        data = np.frombuffer(response.read(), np.uint8)
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED), src


def test_page_shows_the_inferencers_mask_and_keeps_a_history(tiny, server, page):
    image = sorted((tiny.data_root / 'images').glob('*.jpg'))[0]
    inferencer = ReferSegInferencer(str(tiny.config), weights=str(tiny.checkpoint), device='cpu')
    browsing.upload(page, image)
    src = ''
    sentences = ['the leftmost triangle', 'the red circle']
    for sentence in sentences:
        expected = inferencer(str(image), sentence)
        assert 0 < expected.area < expected.mask.size  # a mask worth comparing
        text = browsing.segment(page, sentence)
        assert text.splitlines() == [f'sentence: "{sentence}"', *expected.summary()]
        mask, src = shown_mask(page, server, src)
        assert mask.shape == expected.mask.shape and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, expected.mask)
    rows = page.locator('#history tbody tr')
    assert [rows.nth(i).locator('td').nth(1).inner_text() for i in range(rows.count())] == \
        sentences[::-1]  # newest first
    assert page.locator('#history-gallery img').count() == len(sentences)


def test_page_answers_bad_input_with_a_message(tiny, server, page, tmp_path):
    page.locator('#segment').click()
    assert browsing.expect_status(page, 'No image').startswith('No image: upload one')
    browsing.upload(page, sorted((tiny.data_root / 'images').glob('*.jpg'))[0])
    assert browsing.segment(page, '   ').startswith('Empty sentence: type what to segment')
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    page.locator('#image-file button[aria-label="Clear"]').click()
    browsing.upload(page, empty)
    assert page.locator('#status textarea').input_value() == (
        'Unreadable file: image file empty.jpg is empty (0 bytes): replace it with a complete '
        'copy')
    big = tmp_path / 'big.png'
    cv2.imwrite(str(big), np.zeros((100, 100, 3), np.uint8))
    page.locator('#image-file button[aria-label="Clear"]').click()
    browsing.upload(page, big)
    assert page.locator('#status textarea').input_value().startswith(
        f'Image too large: big.png has 100 x 100 = 10,000 pixels; this demo takes at most '
        f'{MAX_PIXELS:,} pixels')
    assert 'Traceback' not in page.content()


def test_a_synthref_example_fills_image_and_sentence(tiny, server, page):
    """The examples are the held-out images of the data root, each with its first sentence."""
    ref = next(ref for ref in load_refs(str(tiny.data_root / 'refs(unc).p'))
               if ref['split'] != 'train')
    image = f'synthref_{ref["image_id"]:06d}.jpg'
    page.get_by_text(image, exact=True).click()
    assert browsing.expect_status(page, image) == (
        f'{image}: 64 x 64. Type a sentence and press Segment.')
    assert page.locator('#sentence textarea').input_value() == ref['sentences'][0]['sent']


def test_without_gradio_the_demo_says_how_to_install_it(monkeypatch, capsys, tiny):
    monkeypatch.setitem(sys.modules, 'gradio', None)  # `import gradio` raises ImportError
    monkeypatch.setenv('GRADIO_ANALYTICS_ENABLED', 'False')  # the demo's setdefault, undone after
    monkeypatch.setattr(sys, 'argv', ['web_demo.py', str(tiny.config), str(tiny.checkpoint)])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(browsing.DEMO), run_name='__main__')
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == ('web_demo.py: error: the web demo needs Gradio, the demo '
                                       'extra: pip install -r requirements/demo.txt\n')
