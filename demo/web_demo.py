"""Referring segmentation in the browser: upload an image, type a sentence, see the mask.

Example::

    python demo/web_demo.py configs/synthref/ldit_tiny_synthref.py \\
        work_dirs/ldit_tiny_synthref/epoch_30.pth --device cpu

then open http://127.0.0.1:7860. The page shows the image with the mask overlaid and the sentence
as a caption (the picture of ``demo/image_demo.py``), the mask alone (white on black, at the
image's size), and the facts ``image_demo.py`` prints: the mask area, the score (mean probability
inside the mask), the word pieces the model read and, for a model with the no-target branch, the
no-target probability or "no matching object". Every sentence asked about the current image is
kept in a history table and gallery (the last 10), so sentences can be compared; a new image
starts a new history. Examples come from a SynthRef data root (``--examples``, by default the
config's ``data_root`` where it holds SynthRef): one val/test image and its first sentence each.

Needs the ``demo`` extra (Gradio): ``pip install -r requirements/demo.txt``. The model runs through
:class:`~dit_sam_mm.apis.ReferSegInferencer`, with its fast path (bfloat16, CUDA graphs) on a GPU;
all requests go through one inference thread, one at a time. Bad input is answered on the page:
no image, an empty sentence, an unreadable file, an image with more than ``--max-pixels`` pixels.
"""
import argparse
import html
import os
import os.path as osp
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, NamedTuple, Optional, Tuple

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO_ROOT not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault('GRADIO_ANALYTICS_ENABLED', 'False')  # a local page reports to no one

import mmcv  # noqa: E402
import numpy as np  # noqa: E402

from dit_sam_mm.apis import ReferSegInferencer, ReferSegResult, read_image  # noqa: E402
from dit_sam_mm.datasets.image_limits import ImageTooLargeError  # noqa: E402
from dit_sam_mm.datasets.refcoco import read_instances_json  # noqa: E402
from dit_sam_mm.datasets.refer_pickle import load_refs  # noqa: E402
from dit_sam_mm.utils.cli import CommandLineError, run_main  # noqa: E402

try:
    import gradio as gr
except ImportError:  # an optional extra: main() says how to install it
    gr = None

#: Default largest image, in pixels (a 4096 x 4096 image, or a 16-megapixel photo).
DEFAULT_MAX_PIXELS = 4096 * 4096
#: Largest upload Gradio accepts, before the pixel limit is even looked at.
MAX_FILE_SIZE = '50mb'
#: Sentences kept in the history of one image.
HISTORY_SIZE = 10
#: SynthRef examples offered on the page.
NUM_EXAMPLES = 8
#: Height of the pictures on the page, in CSS pixels.
IMAGE_HEIGHT = 320
#: Small images (SynthRef's are 64 x 64) are shown enlarged, with crisp pixels.
PAGE_CSS = '#preview img, #mask img {width: 100%; height: 100%; object-fit: contain; ' \
    'image-rendering: pixelated}'
HISTORY_HEADERS = ['#', 'sentence', 'mask area (px)', 'area (%)', 'score', 'no-target prob.']


class Entry(NamedTuple):
    """One sentence asked about the current image, in the history."""
    sentence: str
    result: ReferSegResult

    def row(self, number: int) -> str:
        """The history table's HTML row of this entry."""
        result, prob = self.result, self.result.no_target_prob
        cells = [str(number), html.escape(self.sentence), f'{result.area:,}',
                 f'{100.0 * result.area / result.mask.size:.1f}', f'{result.score:.3f}',
                 '-' if prob is None else f'{prob:.3f}']
        return '<tr>' + ''.join(f'<td>{cell}</td>' for cell in cells) + '</tr>'


def read_upload(path: Optional[str], max_pixels: int) -> np.ndarray:
    """The uploaded image as a BGR uint8 array, or a ValueError whose message is for the page.

    The size is read from the file's header first, so a huge image is refused before it is
    decoded (see :func:`dit_sam_mm.datasets.image_limits.check_image_size`).
    """
    if path is None:
        raise ValueError('No image: upload one (drop a file on "Image") or pick an example.')
    name = osp.basename(path)
    try:
        return read_image(path, max_pixels=max_pixels)
    except ImageTooLargeError as err:
        raise ValueError(
            f'Image too large: {name} has {err.width} x {err.height} = {err.pixels:,} pixels; '
            f'this demo takes at most {max_pixels:,} pixels (--max-pixels; by default '
            f'{DEFAULT_MAX_PIXELS:,}, 4096 x 4096). Make it smaller and upload it again.'
        ) from None
    except (OSError, ValueError) as err:
        raise ValueError(f'Unreadable file: {str(err).replace(path, name)}') from None


class WebDemo:
    """What the page does, without the page: image and sentence in, pictures and text out.

    Args:
        inferencer (ReferSegInferencer): The loaded model.
        max_pixels (int): Larger images are refused.
    """

    def __init__(self, inferencer: ReferSegInferencer, max_pixels: int) -> None:
        self.inferencer = inferencer
        self.max_pixels = max_pixels
        # CUDA graphs (the GPU fast path) belong to the thread that recorded them, and Gradio
        # runs handlers on any thread of its pool: every prediction runs on this one thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix='inference')

    def load(self, path: Optional[str]) -> tuple:
        """A new image: its preview, cleared results and an empty history."""
        if path is None:
            return None, None, None, 'Upload an image or pick an example.', *self.history([])
        try:
            image = read_upload(path, self.max_pixels)
        except ValueError as err:
            return None, None, None, str(err), *self.history([])
        height, width = image.shape[:2]
        message = f'{osp.basename(path)}: {width} x {height}. Type a sentence and press Segment.'
        return mmcv.bgr2rgb(image), None, None, message, *self.history([])

    def segment(self, path: Optional[str], sentence: str, history: List[Entry]) -> tuple:
        """Segment what ``sentence`` names: overlay, mask, result text and the history."""
        sentence = (sentence or '').strip()
        try:
            image = read_upload(path, self.max_pixels)
            if not sentence:
                raise ValueError('Empty sentence: type what to segment, e.g. "the red circle on '
                                 'the left".')
        except ValueError as err:
            return None, None, str(err), *self.history(history)
        result = self._thread.submit(self.inferencer, image, sentence, draw=True).result()
        lines = [f'sentence: "{sentence}"', *result.summary()]
        if result.tokens is not None:
            lines += [f'warning: {warning}' for warning in result.tokens.warnings()]
        history = [Entry(sentence, result), *history][:HISTORY_SIZE]
        mask = result.mask.astype(np.uint8) * 255
        return result.visualization, mask, '\n'.join(lines), *self.history(history)

    @staticmethod
    def history(history: List[Entry]) -> tuple:
        """The history's state, HTML table and gallery (newest first)."""
        numbers = range(len(history), 0, -1)
        head = ''.join(f'<th>{header}</th>' for header in HISTORY_HEADERS)
        rows = ''.join(entry.row(number) for number, entry in zip(numbers, history))
        table = f'<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
        gallery = [(entry.result.visualization, f'#{number} {entry.sentence}')
                   for number, entry in zip(numbers, history)]
        return history, table, gallery


def find_examples(folder: str) -> List[List[str]]:
    """Up to :data:`NUM_EXAMPLES` [image, sentence] pairs of a SynthRef data root.

    One image each, from the held-out splits (val, testA, testB), with its first ref's first
    sentence.

    Raises:
        CommandLineError: ``folder`` has no ``refs(unc).p``.
    """
    refs_file = osp.join(folder, 'refs(unc).p')
    if not osp.isfile(refs_file):
        raise CommandLineError(f'--examples {folder}: no refs(unc).p there; give a SynthRef data '
                               'root (python tools/dataset_converters/make_synthref.py DIR)')
    images = read_instances_json(osp.join(folder, 'instances.json'))['images']
    files = {image['id']: image['file_name'] for image in images}
    examples, seen = [], set()
    for ref in load_refs(refs_file):
        if ref['split'] != 'train' and ref['image_id'] not in seen:
            seen.add(ref['image_id'])
            path = osp.join(folder, 'images', files[ref['image_id']])
            examples.append([path, ref['sentences'][0]['sent']])
        if len(examples) == NUM_EXAMPLES:
            break
    return examples


def build_page(demo: WebDemo, examples: List[List[str]]) -> 'gr.Blocks':
    """The Gradio page of ``demo``, with ``examples`` ([image, sentence] pairs) below the input."""
    with gr.Blocks(title='DIT-SAM referring segmentation', analytics_enabled=False) as page:
        gr.Markdown('## DIT-SAM referring segmentation\nUpload an image, type a sentence that '
                    'names one object in it, and press **Segment**.')
        history = gr.State([])
        with gr.Row():
            with gr.Column():
                image_file = gr.File(label='Image', file_types=['image'], elem_id='image-file')
                preview = gr.Image(label='Uploaded image', format='png', interactive=False,
                                   height=IMAGE_HEIGHT, elem_id='preview')
                sentence = gr.Textbox(label='Sentence', placeholder='e.g. the leftmost triangle',
                                      elem_id='sentence')
                with gr.Row():
                    button = gr.Button('Segment', variant='primary', elem_id='segment')
                    clear = gr.Button('Clear history', elem_id='clear-history')
                if examples:
                    gr.Examples(examples, [image_file, sentence], label='SynthRef examples')
            with gr.Column():
                overlay = gr.Image(label='Mask overlaid', format='png', interactive=False,
                                   height=IMAGE_HEIGHT, elem_id='overlay')
                status = gr.Textbox(label='Result', lines=5, interactive=False, elem_id='status')
                mask = gr.Image(label='Mask', format='png', interactive=False,
                                height=IMAGE_HEIGHT, elem_id='mask')
        gr.Markdown('### History (this image, newest first)')
        table = gr.HTML(elem_id='history')
        gallery = gr.Gallery(label='History pictures', columns=HISTORY_SIZE // 2,
                             fit_columns=False, height=IMAGE_HEIGHT, object_fit='contain',
                             format='png', elem_id='history-gallery')
        kept = [history, table, gallery]
        image_file.change(demo.load, image_file, [preview, overlay, mask, status, *kept])
        for event in (button.click, sentence.submit):
            event(demo.segment, [image_file, sentence, history], [overlay, mask, status, *kept])
        clear.click(lambda: demo.history([]), None, kept)
    return page


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Referring segmentation in the browser: a local page where an image is '
        'uploaded, a sentence typed and the mask shown (needs `pip install -r '
        'requirements/demo.txt`).')
    parser.add_argument('config', help='config the checkpoint was trained with')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--device', default=None,
                        help='device, e.g. cpu or cuda:0 (default: cuda:0 if available)')
    parser.add_argument('--host', default='127.0.0.1',
                        help='address to serve on (default: 127.0.0.1, this machine only)')
    parser.add_argument('--port', type=int, default=7860, help='port (default: 7860)')
    parser.add_argument('--max-pixels', type=int, default=DEFAULT_MAX_PIXELS,
                        help=f'refuse larger images (default: {DEFAULT_MAX_PIXELS}, 4096 x 4096)')
    parser.add_argument('--examples', default=None,
                        help="SynthRef data root to take examples from (default: the config's "
                        'data_root when it holds SynthRef)')
    parser.add_argument('--allow-partial', action='store_true',
                        help='load a checkpoint whose keys do not all match the config (missing '
                        'or unexpected keys); refused by default')
    args = parser.parse_args()
    if args.max_pixels < 1:
        parser.error(f'--max-pixels must be positive, got {args.max_pixels}')
    return args


def main() -> int:
    args = parse_args()
    if gr is None:
        raise CommandLineError('the web demo needs Gradio, the demo extra: '
                               'pip install -r requirements/demo.txt')
    examples = find_examples(args.examples) if args.examples else []
    inferencer = ReferSegInferencer(args.config, weights=args.checkpoint, device=args.device,
                                    allow_partial=args.allow_partial)
    data_root: Optional[str] = inferencer.cfg.get('data_root')
    if args.examples is None and data_root and osp.isfile(osp.join(data_root, 'refs(unc).p')):
        examples = find_examples(data_root)
    page = build_page(WebDemo(inferencer, args.max_pixels), examples)
    folders: Tuple[str, ...] = tuple({osp.dirname(osp.abspath(path)) for path, _ in examples})
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE,
        allowed_paths=list(folders), show_error=False, css=PAGE_CSS)
    return 0


if __name__ == '__main__':
    sys.exit(run_main(main, 'web_demo.py'))
