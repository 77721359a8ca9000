"""The size of an image read from its header, to refuse a huge one before it is decoded.

A few kilobytes can claim 20000 x 20000 pixels: decoding allocates the whole image first (about
5.4 GB for a 16000 x 16000 Radiance HDR file through OpenCV). :func:`check_image_size` reads the
width and height from the header only, in the format the decoder will use: the format OpenCV's
``imdecode`` picks by the same signatures, read by Pillow's parser of that format where Pillow
has one and by the small parsers here where it has none (Radiance HDR, PFM, PBM/PGM/PPM, PAM,
Sun raster). Bytes that match no OpenCV signature are what only Pillow decodes (the ``pillow``
backend of ``mmcv.imfrombytes``); Pillow's own detection reads their size. OpenEXR, whose header
is not read here, is refused.
"""
import io
import re
import struct
from typing import BinaryIO, Callable, Optional, Tuple, Union

from PIL import Image

#: Default largest image, in pixels: Pillow's ``MAX_IMAGE_PIXELS``, the size at which Pillow
#: itself warns of a decompression bomb (89,478,485, about 9459 x 9459; 256 MiB as the 8-bit BGR
#: array the pipelines decode, 290 times a 640 x 480 COCO image). A fixed number, not read from
#: Pillow, so that a program that turns Pillow's check off does not turn this one off.
DEFAULT_MAX_PIXELS = 89_478_485

#: Bytes of the header read by the parsers here (Pillow reads what its parser needs).
HEADER_BYTES = 65536

Size = Tuple[int, int]


class ImageTooLargeError(ValueError):
    """An image whose header claims more pixels than allowed; nothing was decoded.

    Args:
        name (str): The file (or what the bytes came from).
        width (int): Width in the header.
        height (int): Height in the header.
        max_pixels (int): The limit.
    """

    def __init__(self, name: str, width: int, height: int, max_pixels: int) -> None:
        self.name, self.width, self.height, self.max_pixels = name, width, height, max_pixels
        super().__init__(f'image file {name} is {width} x {height} = {self.pixels:,} pixels, '
                         f'more than the limit of {max_pixels:,} (max_pixels); refused before '
                         'decoding')

    @property
    def pixels(self) -> int:
        """Pixels the header claims."""
        return self.width * self.height


def _fgets_pieces(head: bytes, size: int = 128):
    """The strings C's ``fgets(buf, 128, file)`` returns one after another (OpenCV's HDR
    reader reads its header so, and a line longer than 127 bytes is several pieces)."""
    start = 0
    while start < len(head):
        newline = head.find(b'\n', start, start + size - 1)
        end = start + size - 1 if newline < 0 else newline + 1
        yield head[start:end]
        start = end


def _radiance_size(head: bytes) -> Size:
    """Radiance HDR, read as OpenCV's ``RGBE_ReadHeader``: lines up to
    ``FORMAT=32-bit_rle_rgbe``, a blank line, then ``-Y height +X width``."""
    pieces = _fgets_pieces(head)
    for piece in pieces:
        if piece in (b'', b'\n'):
            break
        if piece == b'FORMAT=32-bit_rle_rgbe\n':
            if next(pieces, None) == b'\n':
                match = re.match(rb'-Y\s*([-+]?\d+)\s*\+X\s*([-+]?\d+)', next(pieces, b''))
                if match:
                    return int(match.group(2)), int(match.group(1))
            break
    raise ValueError('a Radiance HDR header without FORMAT=32-bit_rle_rgbe, a blank line and '
                     '"-Y height +X width" in its first 64 KiB')


def _netpbm_size(head: bytes) -> Size:
    """PBM/PGM/PPM (P1-P6): width and height after the magic, ``#`` comments skipped."""
    numbers = re.match(rb'P[1-6](?:\s+|#[^\r\n]*[\r\n])+(\d+)(?:\s+|#[^\r\n]*[\r\n])+(\d+)', head)
    if not numbers:
        raise ValueError('a PBM/PGM/PPM header without width and height')
    return int(numbers.group(1)), int(numbers.group(2))


def _pam_size(head: bytes) -> Size:
    """PAM (P7): the largest ``WIDTH`` and ``HEIGHT`` lines before ``ENDHDR``."""
    header = head.split(b'ENDHDR', 1)[0]
    widths = [int(w) for w in re.findall(rb'^\s*WIDTH\s+(\d+)', header, re.M)]
    heights = [int(h) for h in re.findall(rb'^\s*HEIGHT\s+(\d+)', header, re.M)]
    if not widths or not heights or len(header) == len(head):
        raise ValueError('a PAM header without WIDTH, HEIGHT and ENDHDR')
    return max(widths), max(heights)


def _pfm_size(head: bytes) -> Size:
    """PFM (``PF`` colour, ``Pf`` grey): width and height after the magic."""
    numbers = re.match(rb'P[Ff]\s+(\d+)\s+(\d+)\s', head)
    if not numbers:
        raise ValueError('a PFM header without width and height')
    return int(numbers.group(1)), int(numbers.group(2))


def _sun_raster_size(head: bytes) -> Size:
    """Sun raster: big-endian width and height after the 4-byte magic."""
    if len(head) < 12:
        raise ValueError('a Sun raster header shorter than 12 bytes')
    return struct.unpack('>II', head[4:12])


def _refuse_exr(head: bytes) -> Size:
    raise ValueError('an OpenEXR file, whose size is not read before decoding here; convert '
                     'it to PNG or TIFF')


#: OpenCV's decoders in the order ``imdecode`` tries them, each by its signature: the parser
#: here, or the name of Pillow's parser of that format.
OPENCV_FORMATS: Tuple[Tuple[bytes, Union[str, Callable[[bytes], Size]]], ...] = (
    (rb'BM', 'BMP'),
    (rb'#\?(?:RGBE|RADIANCE)', _radiance_size),
    (rb'\xff\xd8\xff', 'JPEG'),
    (rb'RIFF....WEBP', 'WEBP'),
    (rb'\x59\xa6\x6a\x95', _sun_raster_size),
    (rb'P[1-6]\s', _netpbm_size),
    (rb'P7\s', _pam_size),
    (rb'P[Ff]\s', _pfm_size),
    (rb'II[*+]\x00|MM\x00[*+]', 'TIFF'),
    (rb'\x89PNG\r\n\x1a\n', 'PNG'),
    (rb'\x00\x00\x00\x0cjP  \r\n\x87\n|\xff\x4f\xff\x51', 'JPEG2000'),
    (rb'\x76\x2f\x31\x01', _refuse_exr),
    (rb'GIF8[79]a', 'GIF'),
    (rb'....ftyp', 'AVIF'),  # libavif takes any ISO-BMFF file whose brands name AVIF
)


def _pillow_size(file: BinaryIO, formats: Optional[Tuple[str, ...]]) -> Optional[Size]:
    """The size Pillow's parser of one of ``formats`` (all when None) reads from the header.

    Each parser is called as ``Image.open`` calls it, without ``Image.open``'s own
    decompression-bomb check (its limit and warnings are global state; the limit is ours).
    """
    Image.init()
    prefix = file.read(16)
    for name in formats or tuple(Image.ID):
        if name not in Image.OPEN:
            continue
        factory, accept = Image.OPEN[name]
        accepted = accept is None or accept(prefix)
        if isinstance(accepted, str) or not accepted:  # a string is Pillow's warning
            continue
        file.seek(0)
        try:
            return factory(file, '').size
        except (SyntaxError, IndexError, TypeError, struct.error, EOFError, OSError):
            continue
    return None


def image_size(file: BinaryIO) -> Size:
    """(width, height) of the image in ``file``, read from its header (see the module).

    Args:
        file (BinaryIO): A seekable binary file, at its start.

    Returns:
        tuple[int, int]: Width and height.

    Raises:
        ValueError: No decoder reads such a file, or its header is damaged (the reason).
    """
    head = file.read(HEADER_BYTES)
    for signature, reader in OPENCV_FORMATS:
        if re.match(signature, head, re.S):
            if not isinstance(reader, str):
                return reader(head)
            file.seek(0)
            size = _pillow_size(file, (reader, ))
            if size is None:
                raise ValueError(f'a {reader} file whose header Pillow cannot read')
            return size
    file.seek(0)
    size = _pillow_size(file, None)
    if size is None:
        raise ValueError('not an image, or a format whose header neither OpenCV nor Pillow reads '
                         f'(it starts with {head[:8]!r})')
    return size


def check_max_pixels(max_pixels: int, what: str = 'max_pixels') -> int:
    """``max_pixels`` if it is a positive int, else a ValueError naming ``what``."""
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ValueError(f'{what} must be a positive number of pixels, got {max_pixels!r}')
    return max_pixels


def check_image_size(source: Union[str, bytes], name: Optional[str] = None,
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> Size:
    """Read an image's size from its header and refuse it when it has too many pixels.

    Call it before decoding: nothing but the header is read.

    Args:
        source (str | bytes): An image file, or its bytes.
        name (str, optional): The file, for the messages. Defaults to ``source`` for a file,
            ``'<bytes>'`` for bytes.
        max_pixels (int): Largest width x height accepted. Defaults to
            :data:`DEFAULT_MAX_PIXELS` (Pillow's limit; see there why).

    Returns:
        tuple[int, int]: Width and height.

    Raises:
        ImageTooLargeError: More than ``max_pixels`` pixels (the file, its size and the limit).
        ValueError: ``max_pixels`` is not positive, or the header is no image's (naming the file).
        OSError: The file cannot be read.
    """
    check_max_pixels(max_pixels)
    if isinstance(source, bytes):
        name = name or '<bytes>'
        file: BinaryIO = io.BytesIO(source)
    else:
        name = name or str(source)
        file = open(source, 'rb')
    with file:
        try:
            width, height = image_size(file)
        except ValueError as err:
            raise ValueError(f'cannot decode image file {name}: {err}') from None
    if width * height > max_pixels:
        raise ImageTooLargeError(name, width, height, max_pixels)
    return width, height
