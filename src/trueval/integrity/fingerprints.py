"""Per-sample fingerprints: exact content hashes and the small grayscale thumbnails near-duplicate
detection works on, computed in one pass over the decoded pixels.

Exact hashes are of the decoded pixels (shape + bytes), not of the file, so a PNG re-saved with
other bytes is still the same image. Thumbnails are grayscale (a grayscale copy of a colour image
must match it), resized to ``THUMB`` pixels a side with antialiasing (so a resized copy lands on
the same grid), with a content box that excludes uniform fill borders (a shifted copy padded with
black must not be judged on its padding). The thumbnail of an image larger than it averages the
content only: black fill reaching in from the border (a rotation's corners) is left out, and a
thumbnail pixel mostly of fill is black (``black_fill``). A letterboxed image (content between two bars of one
colour, padded to another aspect) also gets a thumbnail of its content alone: in the square
thumbnail of the whole image the content is squashed, and no zoom or shift lines it up with the
image it was padded from.
"""

from __future__ import annotations

import hashlib
import warnings
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from trueval.core.allocator import shared_array
from trueval.core.errors import UnreadableImages, UserError
from trueval.core.samples import SampleSet, load_image, unreadable
from trueval.integrity.forked import can_fork, cores

THUMB = 32
# luma weights of ITU-R BT.601, the ones PIL's convert("L") uses
_LUMA = (0.299, 0.587, 0.114)
# a border row/column is fill when its range is within max(_FILL_ABS, _FILL_REL * image range):
# relative so a darkened copy trims exactly what its original trims, absolute for JPEG ringing
_FILL_ABS, _FILL_REL, _FILL_MAX = 3.0, 0.04, 0.3
# JPEG-compressed fill: mean absolute deviation from the row median, and that median's distance
# from the outermost row's (measured on shifted CIFAR-10 copies saved at q30-q75: fill rows <= 3.7, and
# their medians within 10 grey levels of the outermost; content rows mostly 6-70. Looser (6 grey levels)
# trimmed plain skies too, and pairs of different photos on the airplane suite rose from 9 to 20)
_FILL_DEV_ABS, _FILL_DEV_REL, _FILL_MED_ABS = 4.0, 0.015, 10.0
_CHUNK = 4096
# letterbox / pillarbox: bars on two opposite sides, each at least _BAR_MIN of the side (and 2 px),
# widths within one pixel plus _BAR_SKEW of each other, colours within _BAR_COLOUR grey levels;
# the other two sides at most _BAR_OTHER fill (otherwise the image is framed, like MNIST's centred
# digits, and the zoom search covers it)
_BAR_MIN, _BAR_SKEW, _BAR_COLOUR, _BAR_OTHER = 0.06, 0.15, 6.0, 0.04
# the grey level up to which a pixel can be fill (rotations, shifts and padding fill with black; JPEG
# lifts it a little): one level for the thumbnails here, the verifier's corners and the shift views
BLACK = 16.0
# black fill reaching in from the border of an image larger than the thumbnail (a rotation's corners,
# a shift's padding): source pixels at most BLACK, connected to the border, in an image whose border
# is black on at most _MOSTLY_BLACK of it (a black background, MNIST-style, is content); a thumbnail
# pixel is fill (0) when fill covers at least half of what it averages
_MOSTLY_BLACK = 0.75


def _read_mode(mode: str | None):
    """torchvision's ``ImageReadMode`` for a dataset's colour mode; torchvision is imported here, when
    files are decoded, not with this module (1 s of a cold MNIST audit, whose splits are arrays)."""
    from torchvision.io import ImageReadMode

    return {"L": ImageReadMode.GRAY, "RGB": ImageReadMode.RGB}.get(mode or "", ImageReadMode.UNCHANGED)


# the fields of ``Prints`` with one row per sample
_ROW_FIELDS = ("hashes", "thumbs", "boxes", "contrast", "side", "value_thumbs", "aspect", "low_thumbs")


@dataclass
class Prints:
    """Fingerprints of one sample set (row i describes sample i)."""

    hashes: np.ndarray  # (N,) 'S16': blake2b-128 of the decoded pixels
    thumbs: np.ndarray | None  # (N, THUMB, THUMB) float32 grayscale 0..255
    boxes: np.ndarray | None  # (N, 4) int16 content box in thumbnail pixels: top, bottom, left, right (exclusive)
    contrast: np.ndarray | None  # (N,) float32 grayscale standard deviation (native resolution)
    side: np.ndarray | None = None  # (N,) int16 shorter side of the decoded image, pixels
    # letterboxed samples: their row, and the thumbnail and box of their content alone (``Views``)
    views: "Views | None" = None
    # (N, THUMB, THUMB) uint8 thumbnails of HSV's value, max(R, G, B), with the boxes of ``thumbs``
    # (bytes: a quarter of the memory and copying of float32); None for one-channel images. A hue
    # rotation keeps the value and changes the grayscale (luma): the search scores pairs that came
    # close in grayscale again on these (``Verifier(colour=...)``)
    value_thumbs: np.ndarray | None = None
    # (N, THUMB, THUMB) uint8 thumbnails of min(R, G, B), as ``value_thumbs``: the channel a brightened
    # copy saturates last, whose brightness order the layout check falls back on where the copy's
    # other channels saturated and its grayscale no longer keeps its original's (``Verifier(low=...)``)
    low_thumbs: np.ndarray | None = None
    # (N,) float32 width over height of the decoded image: a thumbnail squashes it to a square, and
    # the verifier's rotations happen in the picture's proportions (None: square)
    aspect: np.ndarray | None = None
    # rows every per-sample array can still grow by in its own buffer (``joined``'s ``spare``; ``grown``)
    spare: int = field(default=0, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.hashes)

    def grown(self, name: str, extra: Sequence[np.ndarray]) -> np.ndarray:
        """Field ``name``'s rows, then ``extra``'s: written after them in the field's own buffer where
        ``spare`` leaves room (the rows already there are not copied; the caller owns the result and
        must ``spend_spare`` once it has grown every field it needs), else joined in a new array."""
        a = getattr(self, name)
        k = sum(len(e) for e in extra)
        buffer = a.base
        if k > self.spare or not isinstance(buffer, np.ndarray) or buffer.shape[1:] != a.shape[1:] \
                or buffer.ctypes.data != a.ctypes.data:
            return np.concatenate([a, *extra])
        out, at = buffer[:len(a) + k], len(a)
        for e in extra:
            out[at:at + len(e)] = e
            at += len(e)
        return out

    def spend_spare(self) -> None:
        """The room ``grown`` wrote into is taken: a later ``grown`` copies (it would overwrite those rows)."""
        self.spare = 0

    def hex(self) -> list[str]:
        return [h.hex() for h in self.hashes]

    @staticmethod
    def concat(parts: list["Prints"]) -> "Prints":
        """The parts' rows one after another (a field some part lacks is left out)."""
        return Prints.joined(parts, sum(len(p) for p in parts))

    @staticmethod
    def joined(parts: Iterable["Prints"], total: int, spare: int = 0) -> "Prints":
        """Parts that come one at a time, ``total`` rows in all, each written into arrays made at the
        first: joined at the end, every part was held until then and copied once more (CIFAR-10's
        60,000 thumbnails: 0.75 s of the 2-core machine's time, most of it fresh pages). ``spare``:
        rows of room left after them (``grown``): memory never written costs nothing."""
        out: dict[str, np.ndarray | None] = {}
        missing: set[str] = set()
        views, start = [], 0
        for part in parts:
            for name in _ROW_FIELDS:
                a = getattr(part, name)
                if name not in out:
                    out[name] = None if a is None else np.empty((total + spare,) + a.shape[1:], a.dtype)[:total]
                if a is None or out[name] is None:
                    missing.add(name)  # as ``concat``: a field some part lacks is left out
                else:
                    out[name][start:start + len(part)] = a
            if part.views is not None:
                views.append(part.views.shifted(start))
            start += len(part)
        assert start == total, f"{start} rows for {total}"
        return Prints(**{name: None if name in missing else out[name] for name in _ROW_FIELDS},
                      views=Views.concat(views) if views else None, spare=spare)

    def rows(self, start: int, stop: int) -> "Prints":
        """Rows ``start:stop``: views of these arrays, not copies (their letterbox views renumbered)."""
        return self._each_row_field(lambda a: a[start:stop],
                                    None if self.views is None else self.views.within(start, stop))

    def take(self, idx: np.ndarray) -> "Prints":
        return self._each_row_field(lambda a: a[idx], None if self.views is None else self.views.take(idx, len(self)))

    def _each_row_field(self, pick: Callable[[np.ndarray], np.ndarray], views: "Views | None") -> "Prints":
        """These fingerprints with ``pick`` applied to every per-sample field (fields that are None stay None)."""
        fields = {name: getattr(self, name) for name in _ROW_FIELDS}
        return Prints(**{name: None if a is None else pick(a) for name, a in fields.items()}, views=views)


@dataclass
class Views:
    """Extra thumbnails of some samples (the content of letterboxed images): ``rows`` are the samples
    they belong to; the near-duplicate search asks with each as one more query for that sample."""

    rows: np.ndarray  # (M,) int64
    thumbs: np.ndarray  # (M, THUMB, THUMB) float32
    boxes: np.ndarray  # (M, 4) int16

    def __len__(self) -> int:
        return len(self.rows)

    def shifted(self, by: int) -> "Views":
        return Views(self.rows + by, self.thumbs, self.boxes)

    def take(self, idx: np.ndarray, total: int) -> "Views":
        """The views of samples ``idx`` (renumbered as their position in ``idx``)."""
        position = np.full(total, -1, np.int64)
        position[np.asarray(idx, np.int64)] = np.arange(len(idx))
        new = position[self.rows]
        keep = new >= 0
        return Views(new[keep], self.thumbs[keep], self.boxes[keep])

    def within(self, start: int, stop: int) -> "Views":
        """The views of samples ``start:stop``, renumbered from ``start``."""
        keep = (self.rows >= start) & (self.rows < stop)
        return Views(self.rows[keep] - start, self.thumbs[keep], self.boxes[keep])

    @staticmethod
    def concat(parts: list["Views"]) -> "Views":
        return Views(np.concatenate([v.rows for v in parts]), np.concatenate([v.thumbs for v in parts]),
                     np.concatenate([v.boxes for v in parts]))

    @staticmethod
    def empty() -> "Views":
        return Views(np.zeros(0, np.int64), np.zeros((0, THUMB, THUMB), np.float32), np.zeros((0, 4), np.int16))


def pixel_hash(image: np.ndarray) -> bytes:
    """blake2b-128 of an image's decoded pixels, shape included (a 2x8 and a 4x4 image differ)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(("%dx%dx%d|" % image.shape[:3]).encode() if image.ndim == 3 else repr(image.shape).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.digest()


def compute_prints(ss: SampleSet | Sequence[SampleSet], thumbs: bool = True, spare: int = 0) -> Prints:
    """Hash every sample, and (``thumbs``) make its grayscale thumbnail and content box. Several sets:
    their rows one after another in one set of arrays (``spare``: ``Prints.joined``)."""
    sets = [ss] if isinstance(ss, SampleSet) else list(ss)
    total = sum(len(s) for s in sets)
    if total == 0:
        empty = np.zeros((0, THUMB, THUMB), np.float32) if thumbs else None
        return Prints(np.zeros(0, "S16"), empty, np.zeros((0, 4), np.int16) if thumbs else None,
                      np.zeros(0, np.float32) if thumbs else None)
    return Prints.joined((p for s in sets for p in batch_prints(s, thumbs)), total, spare)


def chunk_spans(n: int) -> list[tuple[int, int]]:
    """(start, stop) of the chunks an in-memory split of ``n`` rows is fingerprinted in (here and by
    the gate's forked workers: the same chunks, the same values)."""
    return [(s, min(s + _CHUNK, n)) for s in range(0, n, _CHUNK)]


class SharedRows:
    """``Prints``' per-sample fields of ``total`` rows, with ``spare`` rows of room after them
    (``Prints.grown``), in memory shared with the processes this one forks next: a forked worker
    writes the rows of its chunks (``into``) where this process reads them, through no pipe and with
    no copy. The fields are those every split has (``layout``: the first rows of each split)."""

    def __init__(self, layout: Sequence[np.ndarray], total: int, spare: int = 0) -> None:
        probes = [_prints_of_batch(images, True) for images in layout]
        self.spare = spare
        self.fields: dict[str, np.ndarray | None] = {}
        for name in _ROW_FIELDS:
            kinds = [getattr(p, name) for p in probes]
            if any(a is None for a in kinds):  # as ``Prints.joined``: a field some split lacks is left out
                self.fields[name] = None
                continue
            self.fields[name] = shared_array((total + spare,) + kinds[0].shape[1:], kinds[0].dtype)[:total]

    def into(self, images: np.ndarray, start: int) -> "Views | None":
        """Fingerprints of ``images`` (one chunk) written from row ``start``; their letterbox views,
        numbered as rows of these arrays."""
        part = _prints_of_batch(images, True)
        for name, out in self.fields.items():
            if out is not None:
                out[start:start + len(part)] = getattr(part, name)
        return None if part.views is None else part.views.shifted(start)

    def prints(self, views: Sequence["Views"]) -> Prints:
        return Prints(**self.fields, views=Views.concat(list(views)) if views else None, spare=self.spare)


def batch_prints(ss: SampleSet, thumbs: bool = True) -> Iterator[Prints]:
    """``compute_prints`` a batch of samples at a time (``Prints.joined`` joins them)."""
    return (_prints_of_batch(batch, thumbs) for batch in _batches(ss))


def _batches(ss: SampleSet) -> Iterator[list[np.ndarray] | np.ndarray]:
    """Decoded pixels in chunks: slices of the array, or lists of decoded files (``decode_in_chunks``)."""
    n = len(ss)
    if ss.images is not None:
        from trueval.integrity.console import advance

        for s, e in chunk_spans(n):
            yield ss.images[s:e]
            advance(e - s)  # the running stage's bar moves (decoded files advance it themselves)
        return
    assert ss.paths is not None
    yield from decode_in_chunks(ss.paths, ss.image_mode, _CHUNK)


# files per task handed to a decoding thread: enough to amortise the hand-off, few enough to keep
# every core busy and the progress bar moving
_TASK_FILES = 64
_SMALL_JPEG_BYTES = 16 * 1024
# small JPEGs per task handed to a decoding process, and the fewest files worth starting processes for
_PROCESS_TASK_FILES, _PROCESS_MIN_FILES = 512, 8192


def decode_in_chunks(paths: list[str], mode: str | None, chunk: int) -> Iterator[list[np.ndarray]]:
    """``decode_files`` over ``paths``, yielded in order in lists of ``chunk`` images. A file that
    cannot be decoded stops it with one error naming every such file from there on (the rest are
    checked then), so one run tells them all."""
    done = [0]
    with _naming_unreadable(paths, mode, done):
        for part in _decode_in_chunks(paths, mode, chunk):
            done[0] += len(part)
            yield part


@contextmanager
def _naming_unreadable(paths: list[str], mode: str | None, done: list[int]) -> Iterator[None]:
    """A file that does not decode raises one error naming it and every other such file from
    ``paths[done[0]:]`` (the files not yet decoded: the caller moves ``done[0]`` on)."""
    try:
        yield
    except UserError as first:
        if first.path is None or isinstance(first, UnreadableImages):
            raise
        from trueval.integrity.console import stage

        with stage("looking for other files that do not decode", total=None):
            raise UnreadableImages(unreadable(paths[done[0]:], mode) or [first]) from None


def _decode_in_chunks(paths: list[str], mode: str | None, chunk: int) -> Iterator[list[np.ndarray]]:
    """``decode_in_chunks`` without the error's listing.

    Many small JPEGs (CIFAR's 1 kB files) are decoded in forked worker processes, one per core:
    threads do not help there (measured on the H200 host: 50,000 files in 2.3 s on one thread, 2.3 s
    on two, 5-6 s on 4-16: the batched decoder's Python side holds the GIL), and processes forked
    from this one need not import torch again. Same decoder, same pixels, whatever the core count.
    A task a worker cannot decode is decoded again here, so an unreadable file fails as it would
    without workers."""
    workers = cores()
    if workers < 2 or len(paths) < _PROCESS_MIN_FILES or _heavy(paths[0]) or not can_fork():
        for s in range(0, len(paths), chunk):
            yield decode_files(paths[s:s + chunk], mode)
        return
    from trueval.integrity.console import advance
    from trueval.integrity.forked import forked_imap

    tasks = [paths[i:i + _PROCESS_TASK_FILES] for i in range(0, len(paths), _PROCESS_TASK_FILES)]
    held: list[np.ndarray] = []
    results = forked_imap(lambda t: _decode_task(t, mode), tasks, workers)
    with closing(results):  # an error here, or a reader that stops, stops the workers at once
        for task, decoded in zip(tasks, results, strict=True):
            held += decode_files(task, mode) if decoded is None else list(decoded)
            if decoded is not None:
                advance(len(task))
            while len(held) >= chunk:
                yield held[:chunk]
                held = held[chunk:]
    if held:
        yield held


def _decode_task(paths: list[str], mode: str | None) -> np.ndarray | list[np.ndarray] | None:
    """A worker's chunk: one array when the images share a shape (cheap to send back), None on any
    failure (the parent decodes the chunk itself)."""
    try:
        images = _decode_chunk(paths, mode)
    except Exception:
        return None
    return np.stack(images) if len({a.shape for a in images}) == 1 else images


def decode_alike(paths: list[str], mode: str | None, size: int | None = None
                 ) -> np.ndarray | dict[tuple[int, ...], str]:
    """Every file of ``paths`` decoded into one uint8 array, when they all decode to one shape (and,
    given ``size``, that shape is ``size`` x ``size``); otherwise the shapes seen, a file of each,
    found as soon as one differs (one shape only: not ``size`` x ``size``).

    Many small JPEGs (CIFAR's) are decoded by forked workers, one per core, straight into the array
    in shared memory (``shared_array``). Each used to send its images back through a pipe to be
    copied into the array here, into NumPy's fresh memory: of the 3.6 s it took to decode CIFAR-10's
    50,000 training files on the 2-core machine, 1.4 s went to that copy and 0.4 s to the decoding
    this process waited for. Same decoder, same pixels; a file that does not decode fails as it
    does in ``decode_in_chunks``, naming every such file from its chunk on."""
    from trueval.integrity.console import advance
    from trueval.integrity.forked import forked_imap

    done = [0]
    with _naming_unreadable(paths, mode, done):
        first = _decode_chunk(paths[:1], mode)[0]  # decoded again with its span, which moves the bar
        if size and first.shape[:2] != (size, size):
            return {first.shape: paths[0]}
        out = shared_array((len(paths), *first.shape), np.uint8)
        spans = [(s, min(s + _PROCESS_TASK_FILES, len(paths))) for s in range(0, len(paths), _PROCESS_TASK_FILES)]
        forked = cores() >= 2 and len(paths) >= _PROCESS_MIN_FILES and not _heavy(paths[0]) and can_fork()

        def fill(span: tuple[int, int], strict: bool = not forked) -> dict[tuple[int, ...], str] | None | bool:
            """Decode a span into ``out``: True, or the other shapes found (nothing written), or (not
            ``strict``: in a worker) None when it failed, for this process to decode again and raise."""
            chunk = paths[span[0]:span[1]]
            try:  # decode_files uses threads where they help, and moves the bar itself
                images = _decode_chunk(chunk, mode) if forked else decode_files(chunk, mode)
            except Exception:
                if strict:
                    raise
                return None
            unlike: dict[tuple[int, ...], str] = {}
            for p, a in zip(chunk, images):
                if a.shape != first.shape or a.dtype != np.uint8:
                    unlike.setdefault(a.shape, p)  # the first file of each shape
            if unlike:
                return unlike
            out[span[0]:span[1]] = np.stack(images) if len(images) > 1 else images[0][None]
            return True

        results = forked_imap(fill, spans, cores() if forked else 1)
        with closing(results):  # an error here, or another shape found, stops the workers at once
            for span, filled in zip(spans, results, strict=True):
                if filled is None:  # what the worker could not decode, decoded here: the error names the file
                    filled = fill(span, strict=True)
                if filled is not True:
                    return {first.shape: paths[0], **filled}
                if forked:
                    advance(span[1] - span[0])
                done[0] = span[1]
    return out


def decode_files(paths: list[str], mode: str | None, what: str | None = None) -> list[np.ndarray]:
    """uint8 HWC pixels of ``paths`` (in order), decoded on every core when the files are heavy.

    torchvision's decoders release the GIL while they decode, so threads share the work without
    copying the pixels between processes (a process pool that sent decoded 640 x 480 images back
    was measured 2.5x SLOWER than one thread on the 2-core machine). Small JPEGs (CIFAR's 1 kB
    files) are decoded in one batched torchvision call per chunk in this thread: 10,000 of them
    take 0.5 s of CPU, and thread hand-offs cost more than they save there. ``what``: show a
    progress stage of that name (otherwise the running gate stage, if any, advances)."""
    from trueval.integrity.console import advance, stage

    if what is not None:
        with stage(what, total=len(paths)):
            return decode_files(paths, mode)
    workers = cores()
    if workers < 2 or len(paths) < 2 * _TASK_FILES or not _heavy(paths[0]):
        out = []
        for i in range(0, len(paths), 8 * _TASK_FILES):
            chunk = paths[i:i + 8 * _TASK_FILES]
            out += _decode_chunk(chunk, mode)
            advance(len(chunk))
        return out
    from concurrent.futures import ThreadPoolExecutor

    chunks = [paths[i:i + _TASK_FILES] for i in range(0, len(paths), _TASK_FILES)]
    out = []
    with ThreadPoolExecutor(workers) as pool:
        for chunk, decoded in zip(chunks, pool.map(lambda c: _decode_chunk(c, mode), chunks)):
            out += decoded
            advance(len(chunk))
    return out


def _heavy(path: str) -> bool:
    """Whether files like this one are worth a thread hand-off: anything but a small JPEG."""
    import os

    try:
        small = os.path.getsize(path) < _SMALL_JPEG_BYTES
    except OSError:
        return False
    return not (small and path.lower().endswith((".jpg", ".jpeg")))


def _decode_chunk(paths: list[str], mode: str | None) -> list[np.ndarray]:
    """Decode files; JPEG chunks in one batched torchvision call (its per-call Python overhead was
    a third of the decoding time for 32 x 32 JPEGs), anything unusual file by file."""
    if paths and mode in (None, "L", "RGB") and all(p.lower().endswith((".jpg", ".jpeg")) for p in paths):
        try:
            from torchvision.io import decode_jpeg

            raw = []
            for p in paths:
                with open(p, "rb") as fh:
                    raw.append(fh.read())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                data = [torch.frombuffer(r, dtype=torch.uint8) for r in raw]
            read_mode = _read_mode(mode)
            images = decode_jpeg(data, mode=read_mode, apply_exif_orientation=True)
            if all(img.shape[0] in (1, 3) for img in images):
                return [np.ascontiguousarray(img.numpy().transpose(1, 2, 0)) for img in images]
        except Exception:  # a file the batch decoder refuses: fall back to one by one
            pass
    return [decode_file(p, mode) for p in paths]


def decode_file(path: str, mode: str | None = None) -> np.ndarray:
    """uint8 HWC like ``load_image`` (upright: EXIF orientation applied), through torchvision's decoders (about 2x faster than PIL);
    anything torchvision does not decode exactly like PIL (16-bit, palette, CMYK...) goes to PIL."""
    try:
        from torchvision.io import decode_image

        with open(path, "rb") as fh:
            raw = fh.read()
        with warnings.catch_warnings():  # read-only buffer: the decoder only reads it
            warnings.simplefilter("ignore", UserWarning)
            data = torch.frombuffer(raw, dtype=torch.uint8)
        read_mode = _read_mode(mode)
        img = decode_image(data, mode=read_mode, apply_exif_orientation=True)
        if img.dtype != torch.uint8 or img.shape[0] not in (1, 3):
            if img.shape[0] == 4 and img.dtype == torch.uint8 and mode is None:
                img = img[:3]  # PIL's convert("RGB") drops alpha the same way
            else:
                raise ValueError("unusual pixel format")
        return np.ascontiguousarray(img.numpy().transpose(1, 2, 0))
    except Exception:  # anything torchvision cannot read exactly like PIL: let PIL do it
        return load_image(path, mode)


def _prints_of_batch(batch, want_thumbs: bool) -> Prints:
    hashes = np.array([pixel_hash(img) for img in batch], dtype="S16")
    if not want_thumbs:
        return Prints(hashes, None, None, None)
    if isinstance(batch, np.ndarray):
        thumbs, boxes, contrast, views, value, low = _thumbs_same_size(batch)
        side = np.full(len(batch), min(batch.shape[1:3]), np.int16)
        aspect = np.full(len(batch), batch.shape[2] / batch.shape[1], np.float32)
    else:
        side = np.array([min(img.shape[:2]) for img in batch], np.int16)
        aspect = np.array([img.shape[1] / img.shape[0] for img in batch], np.float32)
        # zeros, not empty: the value thumbnails start as a rounding of these, rows of later shapes included
        # (overwritten when their shape comes; uninitialised memory made NaN casts warn)
        thumbs = np.zeros((len(batch), THUMB, THUMB), np.float32)
        boxes = np.empty((len(batch), 4), np.int16)
        contrast = np.empty(len(batch), np.float32)
        by_shape: dict[tuple, list[int]] = {}
        for i, img in enumerate(batch):
            by_shape.setdefault(img.shape, []).append(i)
        found = []
        value = low = None
        for idx in by_shape.values():
            t, b, c, v, val, lo = _thumbs_same_size(np.stack([batch[i] for i in idx]))
            thumbs[idx], boxes[idx], contrast[idx] = t, b, c
            if val is not None:
                if value is None:  # one-channel images of a mixed batch: their grayscale is their value and min
                    value, low = as_bytes(thumbs), as_bytes(thumbs)
                value[idx], low[idx] = val, lo
            elif value is not None:
                value[idx] = low[idx] = as_bytes(t)
            found.append(Views(np.asarray(idx, np.int64)[v.rows], v.thumbs, v.boxes))
        views = Views.concat(found)
    return Prints(hashes, thumbs, boxes, contrast, side, views=views if len(views) else None, value_thumbs=value,
                  aspect=aspect, low_thumbs=low)


def luma(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """float32 grayscale N x H x W (0..255) of uint8 N x H x W x C images."""
    if isinstance(images, torch.Tensor):
        x = images
    else:
        arr = np.asarray(images)
        x = torch.from_numpy(arr if arr.flags.writeable else arr.copy())  # torch wants writable memory
    if x.shape[-1] == 3:
        x = x.float()
        return x[..., 0] * _LUMA[0] + x[..., 1] * _LUMA[1] + x[..., 2] * _LUMA[2]
    return x[..., 0].float()


def as_bytes(thumbs: np.ndarray) -> np.ndarray:
    """Thumbnails (0..255 floats) rounded to uint8, the value thumbnails' storage."""
    return np.clip(np.rint(thumbs), 0, 255).astype(np.uint8)


def _thumbs_same_size(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, Views, np.ndarray | None,
                                                   np.ndarray | None]:
    """Grayscale thumbnails, their content boxes, contrast, letterbox views and (colour images) value and
    min-channel thumbnails."""
    gray = luma(images)  # N, H, W
    n, h, w = gray.shape
    boxes = content_boxes(gray)
    flat = gray.reshape(n, -1)
    mean = flat.mean(1)
    contrast = ((flat * flat).mean(1) - mean * mean).clamp(min=0).sqrt()
    fill = black_fill(gray) if min(h, w) > THUMB else None
    thumbs, tboxes = _thumbnails(gray, boxes, fill)
    value = low = None
    if images.ndim == 4 and images.shape[-1] == 3:
        arr = np.asarray(images)
        # torch's max over the channels: numpy's reduction over an axis of 3 took 13x as long (3.8 s
        # for BCCD's 364 photos, 2.2 s for CIFAR-10)
        rgb = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        top, bottom = rgb.amax(-1), rgb.amin(-1)
        if top.shape[1:] == (THUMB, THUMB):
            value, low = top.numpy(), bottom.numpy()
        else:
            value = as_bytes(_thumbnails(top.float(), boxes, fill)[0])
            low = as_bytes(_thumbnails(bottom.float(), boxes, fill)[0])
    return thumbs, tboxes, contrast.numpy(), _letterbox_views(gray, boxes), value, low


def _letterbox_views(gray: torch.Tensor, boxes: torch.Tensor) -> Views:
    """Thumbnails of the content between letterbox (or pillarbox) bars, for the images that have them."""
    n, h, w = gray.shape
    top, bottom, left, right = boxes[:, 0], h - boxes[:, 1], boxes[:, 2], w - boxes[:, 3]

    def bars(a: torch.Tensor, b: torch.Tensor, side: int) -> torch.Tensor:
        return (torch.minimum(a, b) >= max(2.0, _BAR_MIN * side)) & (
            (a - b).abs() <= 1 + _BAR_SKEW * torch.maximum(a, b))

    def bare(a: torch.Tensor, b: torch.Tensor, side: int) -> torch.Tensor:
        return torch.maximum(a, b) <= max(1.0, _BAR_OTHER * side)

    letterbox = bars(top, bottom, h) & bare(left, right, w)
    pillarbox = bars(left, right, w) & bare(top, bottom, h)
    picked = []
    for i in torch.nonzero(letterbox | pillarbox).flatten().tolist():
        t, b, lft, r = boxes[i].tolist()
        if letterbox[i]:  # crop rows only
            lft, r = 0, w
            colours = gray[i, :t].median(), gray[i, b:].median()
        else:  # pillarbox: crop columns only
            t, b = 0, h
            colours = gray[i, :, :lft].median(), gray[i, :, r:].median()
        if (colours[0] - colours[1]).abs() > _BAR_COLOUR:
            continue  # two different colours: not padding
        content = gray[i:i + 1, t:b, lft:r]
        thumb, box = _thumbnails(content, content_boxes(content))
        picked.append((i, thumb[0], box[0]))
    if not picked:
        return Views.empty()
    return Views(np.array([p[0] for p in picked], np.int64), np.stack([p[1] for p in picked]),
                 np.stack([p[2] for p in picked]))


def black_fill(gray: torch.Tensor) -> torch.Tensor | None:
    """(N, H, W) True where a pixel is black fill connected to the image border (None: no image has any).

    Only images whose border is partly black, never mostly (a black background is content)."""
    dark = gray <= BLACK
    share = border_share(dark)
    rows = torch.nonzero((share > 0) & (share <= _MOSTLY_BLACK))[:, 0].tolist()
    if not rows:
        return None
    from scipy import ndimage

    fill = torch.zeros_like(dark)
    for i in rows:
        labels, count = ndimage.label(dark[i].numpy())
        touching = np.zeros(count + 1, bool)  # a lookup table: 6x faster than np.isin on 640 x 480
        touching[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
        touching[0] = False
        fill[i] = torch.from_numpy(touching[labels])
    return fill


def border_share(mask: torch.Tensor) -> torch.Tensor:
    """(N,) share of each (N, H, W) boolean mask's border pixels that are set."""
    return torch.cat([mask[:, 0, :], mask[:, -1, :], mask[:, :, 0], mask[:, :, -1]], 1).float().mean(1)


def _thumbnails(gray: torch.Tensor, boxes: torch.Tensor,
                fill: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """THUMB x THUMB thumbnails of same-size grayscale images, and their content boxes in thumbnail pixels.

    ``fill`` (``black_fill``): pixels left out of the averaging. A thumbnail pixel of a large image
    averages many source pixels, and a rotation's thin black wedges would make grey pixels that no
    fill detection tells from content (on stained-cell photos, 640 x 480, such corners kept every
    copy rotated by 3-10 degrees below the threshold); now a thumbnail pixel mostly of fill is
    black, the verifier's fill, and the others hold content only."""
    n, h, w = gray.shape
    if (h, w) != (THUMB, THUMB):
        thumbs = _resample(gray)
        rows = [] if fill is None else torch.nonzero(fill.flatten(1).any(1))[:, 0]
        if len(rows):
            keep = (~fill[rows]).float()
            share = _resample(keep)
            content = _resample(gray[rows] * keep) / share.clamp(min=1e-6)
            thumbs[rows] = torch.where(share >= 0.5, content, torch.zeros_like(content))
        scale = torch.tensor([THUMB / h, THUMB / h, THUMB / w, THUMB / w])
        b = boxes.float() * scale
        # round inwards so the box never includes a fill pixel
        boxes = torch.stack([b[:, 0].ceil(), b[:, 1].floor(), b[:, 2].ceil(), b[:, 3].floor()], 1).long()
    else:
        thumbs = gray
    return thumbs.numpy().astype(np.float32, copy=False), boxes.numpy().astype(np.int16)


def _resample(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W) -> (N, THUMB, THUMB), antialiased (a resized copy lands on the same grid)."""
    return F.interpolate(x[:, None], size=(THUMB, THUMB), mode="bilinear", antialias=True, align_corners=False)[:, 0]


def content_boxes(gray: torch.Tensor) -> torch.Tensor:
    """(N, 4) top, bottom, left, right of the content inside uniform fill borders (at most 30 % a side).

    A border row (column) is fill when its range is small, or, for fill that went through JPEG
    (ringing next to the content reaches 10-40 grey levels in a black bar), when its pixels keep
    close to their median (mean absolute deviation) and that median to the outermost row's."""
    n, h, w = gray.shape
    row_max, row_min = gray.amax(2), gray.amin(2)
    col_max, col_min = gray.amax(1), gray.amin(1)
    spread = (row_max.amax(1) - row_min.amin(1))[:, None]
    tol = (spread * _FILL_REL).clamp(min=_FILL_ABS)
    row_med, col_med = gray.median(2).values, gray.median(1).values
    row_dev = (gray - row_med[:, :, None]).abs().mean(2)
    col_dev = (gray - col_med[:, None, :]).abs().mean(1)
    dev_tol = (spread * _FILL_DEV_REL).clamp(min=_FILL_DEV_ABS)
    med_tol = (spread * _FILL_REL).clamp(min=_FILL_MED_ABS)

    def flat(lo: torch.Tensor, hi: torch.Tensor, med: torch.Tensor, dev: torch.Tensor, edge: int) -> torch.Tensor:
        near_edge = (med - med[:, edge:edge + 1] if edge == 0 else med - med[:, -1:]).abs() <= med_tol
        return ((hi - lo) <= tol) | ((dev <= dev_tol) & near_edge)

    def leading(mask: torch.Tensor, limit: int) -> torch.Tensor:
        """Number of leading True per row (first False, or all), capped."""
        stop = (~mask).int().argmax(1)
        stop = torch.where(mask.all(1), torch.full_like(stop, mask.shape[1]), stop)
        return stop.clamp(max=limit)

    lim_h, lim_w = int(h * _FILL_MAX), int(w * _FILL_MAX)
    top = leading(flat(row_min, row_max, row_med, row_dev, 0), lim_h)
    bottom = leading(flat(row_min, row_max, row_med, row_dev, -1).flip(1), lim_h)
    left = leading(flat(col_min, col_max, col_med, col_dev, 0), lim_w)
    right = leading(flat(col_min, col_max, col_med, col_dev, -1).flip(1), lim_w)
    return torch.stack([top, h - bottom, left, w - right], 1)


def resized(prints: Prints, size: int) -> Prints:
    """The same fingerprints with thumbnails resampled to ``size`` pixels a side (boxes rounded inwards)."""
    assert prints.thumbs is not None and prints.boxes is not None
    current = prints.thumbs.shape[-1]
    if current == size:
        return prints

    def resample(thumbs: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(thumbs, dtype=np.float32))[:, None]
        return F.interpolate(t, size=(size, size), mode="bilinear", antialias=size < current,
                             align_corners=False)[:, 0].numpy()

    b = prints.boxes.astype(np.float64) * (size / current)
    boxes = np.stack([np.ceil(b[:, 0] - 1e-6), np.floor(b[:, 1] + 1e-6), np.ceil(b[:, 2] - 1e-6),
                      np.floor(b[:, 3] + 1e-6)], 1).astype(np.int16)
    value = None if prints.value_thumbs is None else as_bytes(resample(prints.value_thumbs))
    low = None if prints.low_thumbs is None else as_bytes(resample(prints.low_thumbs))
    return Prints(prints.hashes, resample(prints.thumbs), boxes, prints.contrast, prints.side, value_thumbs=value,
                  aspect=prints.aspect, low_thumbs=low)
