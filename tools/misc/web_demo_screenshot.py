"""Start demo/web_demo.py, use it in headless Chromium and save a screenshot of the page.

The screenshot in docs/en/web_demo.png was made with the SynthRef model of the quick start::

    python tools/misc/web_demo_screenshot.py configs/synthref/ldit_tiny_synthref.py \\
        work_dirs/ldit_tiny_synthref/epoch_30.pth docs/en/web_demo.png \\
        --image data/synthref/images/synthref_000023.jpg \\
        --sentences "the big blue square" "the highest square" "the lowest square"

It uploads the image, asks each sentence in turn (so the last answer is on show and every one is
in the history) and writes a full-page PNG. Needs the demo extra (requirements/demo.txt),
Playwright (requirements/browser_test.txt) and Debian's Chromium (``apt-get install chromium``);
Playwright never downloads a browser here. The helpers that start the demo and drive the page are
those of tests/test_web_demo.py.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional

if TYPE_CHECKING:  # Playwright is imported where it is used: loading this file needs none
    from playwright.sync_api import Browser, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO = REPO_ROOT / 'demo' / 'web_demo.py'
CHROMIUM = Path('/usr/bin/chromium')
#: Playwright adds --headless and a fresh temporary --user-data-dir itself.
CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update',
                  '--disable-sync']
#: Longest wait for anything on the page, in milliseconds.
TIMEOUT_MS = 30_000


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextmanager
def serve_demo(args: List[str], log: Path, env: Optional[Dict[str, str]] = None,
               startup_s: float = 120.0) -> Iterator[str]:
    """Run ``python demo/web_demo.py ARGS --port P`` while the block runs; yield its URL.

    Args:
        args (List[str]): The demo's arguments (config, checkpoint, options) but ``--port``.
        log (Path): The file the demo's output goes to.
        env (Dict[str, str], optional): Variables added to this process's environment.
        startup_s (float): How long to wait for the page to answer. Defaults to 120.

    Raises:
        RuntimeError: The demo exited or did not answer in time (its output is in the message).
    """
    url = f'http://127.0.0.1:{free_port()}'
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, str(DEMO), *args, '--port', url.split(':')[-1]],
                                stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, PYTHONUNBUFFERED='1', **(env or {})))
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f'the web demo did not start (exit status {proc.poll()}):'
                                       f'\n{log.read_text()}') from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium() -> Iterator['Browser']:
    """Debian's headless Chromium, driven by Playwright, while the block runs."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=CHROMIUM_FLAGS, timeout=TIMEOUT_MS)
        try:
            yield browser
        finally:
            browser.close()


def expect_status(page: 'Page', fragment: str) -> str:
    """Wait until the page's result box holds ``fragment``; return its text."""
    from playwright.sync_api import expect
    box = page.locator('#status textarea')
    expect(box).to_have_value(re.compile(re.escape(fragment)), timeout=TIMEOUT_MS)
    return box.input_value()


def upload(page: 'Page', path: Path) -> str:
    """Upload ``path`` as the image; return the page's answer (which names the file)."""
    page.locator('#image-file input[type=file]').set_input_files(str(path))
    return expect_status(page, path.name)


def segment(page: 'Page', sentence: str) -> str:
    """Type ``sentence``, press Segment and return the result text."""
    page.locator('#sentence textarea').fill(sentence)
    page.locator('#segment').click()
    return expect_status(page, f'"{sentence}"' if sentence.strip() else 'Empty sentence')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Screenshot of the web demo in use.')
    parser.add_argument('config', help='config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('out', help='PNG file to write')
    parser.add_argument('--image', required=True, help='image to upload')
    parser.add_argument('--sentences', nargs='+', required=True, help='sentences to ask, in turn')
    parser.add_argument('--device', default='cpu', help='device of the demo (default: cpu)')
    parser.add_argument('--width', type=int, default=1280, help='page width (default: 1280)')
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory() as folder:
        demo_args = [args.config, args.checkpoint, '--device', args.device]
        env = dict(GRADIO_TEMP_DIR=str(Path(folder) / 'uploads'))
        with serve_demo(demo_args, Path(folder) / 'demo.log', env) as url, chromium() as browser:
            page = browser.new_page(viewport=dict(width=args.width, height=800))
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            upload(page, Path(args.image))
            for sentence in args.sentences:
                print(segment(page, sentence), end='\n\n')
            page.wait_for_timeout(500)  # let the history gallery's pictures load
            page.screenshot(path=args.out, full_page=True)
    print(f'screenshot: {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
