"""MPEG audio (mp3) streams read frame by frame: how many samples a file really holds, whether its last frame is cut
short, and a stream libsndfile decodes to its true end.

libsndfile (through libmpg123) takes an mp3's length from its Xing/Info header, or, without one, estimates it from
the first frame's bit rate and the file's size; it then stops reading at that estimate. A VBR file without a Xing
header is thus refused as truncated (the estimate is too long) or silently cut short (too short). Walking the frame
headers gives the true length, and a file whose header is missing or wrong is decoded behind a Xing frame that
states it (:func:`with_true_header`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

# bit rates in kbit/s by [MPEG-1?][layer 1, 2, 3][index]
_BITRATES = {
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class Header:
    """One frame header."""

    version: int  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    layer: int
    bitrate: int  # bit/s
    sr: int
    padding: int
    mono: bool
    raw: bytes

    @property
    def samples(self) -> int:
        if self.layer == 1:
            return 384
        return 1152 if (self.layer == 2 or self.version == 3) else 576

    @property
    def length(self) -> int:
        if self.layer == 1:
            return (12 * self.bitrate // self.sr + self.padding) * 4
        per = 144 if (self.layer == 2 or self.version == 3) else 72
        return per * self.bitrate // self.sr + self.padding

    @property
    def side_info(self) -> int:
        """Bytes of Layer III side information after the 4-byte header (where a Xing tag starts)."""
        if self.version == 3:
            return 17 if self.mono else 32
        return 9 if self.mono else 17


def parse_header(b: bytes) -> Header | None:
    """The frame header in the first 4 bytes of ``b``; None when they are not a valid one (or free format)."""
    if len(b) < 4 or b[0] != 0xFF or (b[1] & 0xE0) != 0xE0:
        return None
    version, layer_bits = (b[1] >> 3) & 3, (b[1] >> 1) & 3
    rate_i, sr_i = b[2] >> 4, (b[2] >> 2) & 3
    if version == 1 or layer_bits == 0 or rate_i in (0, 15) or sr_i == 3:
        return None
    layer = 4 - layer_bits
    return Header(
        version=version,
        layer=layer,
        bitrate=_BITRATES[(version == 3, layer)][rate_i] * 1000,
        sr=_RATES[version][sr_i],
        padding=(b[2] >> 1) & 1,
        mono=(b[3] >> 6) == 3,
        raw=bytes(b[:4]),
    )


@dataclass
class Stream:
    """What a walk over an mp3's frames found.

    Attributes
    ----------
    start : int
        Byte offset of the first audio frame (after an ID3v2 tag and a Xing/Info frame).
    frames : int
        Complete audio frames.
    samples : int
        Samples (per channel) they hold, at ``sr``.
    sr : int
    cut : bool
        The last frame is cut short: the file was truncated.
    xing_frames : int or None
        The frame count a Xing/Info header states, None without one.
    first : Header or None
    """

    start: int
    frames: int
    samples: int
    sr: int
    cut: bool
    xing_frames: int | None
    first: Header | None

    @property
    def seconds(self) -> float:
        return self.samples / self.sr if self.sr else 0.0


def _xing_count(frame: bytes, h: Header) -> tuple[bool, int | None]:
    """Whether a frame is a Xing/Info frame, and the frame count it states."""
    i = 4 + h.side_info
    tag = frame[i : i + 4]
    if tag not in (b"Xing", b"Info"):
        return False, None
    flags = int.from_bytes(frame[i + 4 : i + 8], "big")
    count = int.from_bytes(frame[i + 8 : i + 12], "big") if flags & 1 else None
    return True, count


def walk(path: str | Path) -> Stream | None:
    """Walk the frames of an mp3 file. None when it holds no MPEG audio frames genrelib can follow (free format,
    or not MPEG at all): the caller then trusts libsndfile."""
    data = Path(path).read_bytes()
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    first = None
    frames = samples = 0
    start = pos
    xing = None
    cut = False
    n = len(data)
    while pos + 4 <= n:
        h = parse_header(data[pos : pos + 4])
        if h is None or (first is not None and (h.sr != first.sr or h.layer != first.layer)):
            if first is None and pos - start < 65536:  # junk before the first frame: look further
                pos += 1
                continue
            if data[pos : pos + 3] == b"TAG" or data[pos : pos + 8] == b"APETAGEX" or not data[pos:].strip(b"\0"):
                break  # trailing tags or padding: the audio ended
            nxt = _resync(data, pos + 1, first)
            if nxt is None:
                break
            pos = nxt
            continue
        if h.length < 4:
            return None
        if pos + h.length > n:
            cut = True
            break
        if first is None:
            first = h
            start = pos
            is_xing, xing = _xing_count(data[pos : pos + h.length], h)
            if is_xing:
                start = pos + h.length
                pos += h.length
                continue
        frames += 1
        samples += h.samples
        pos += h.length
    if not cut and 0 < n - pos < 4 and data[pos:].strip(b"\0"):
        cut = True  # the file ends inside a frame header
    if first is None or frames == 0:
        return None
    return Stream(start=start, frames=frames, samples=samples, sr=first.sr, cut=cut, xing_frames=xing, first=first)


def _resync(data: bytes, pos: int, first: Header | None) -> int | None:
    """The next offset where two consecutive valid frames start (junk inside a stream is skipped)."""
    end = min(len(data) - 4, pos + 65536)
    while pos < end:
        pos = data.find(b"\xff", pos, end)
        if pos < 0:
            return None
        h = parse_header(data[pos : pos + 4])
        if h is not None and (first is None or (h.sr == first.sr and h.layer == first.layer)):
            h2 = parse_header(data[pos + h.length : pos + h.length + 4])
            if h2 is not None or pos + h.length == len(data):
                return pos
        pos += 1
    return None


def needs_true_header(s: Stream) -> bool:
    """Whether libsndfile would get the file's length wrong: no Xing frame count, or one the frames contradict."""
    return s.xing_frames is None or s.xing_frames != s.frames


def with_true_header(path: str | Path, s: Stream) -> io.BytesIO:
    """The file's audio frames behind a Xing frame stating their true count, for libsndfile to decode to the end."""
    h = s.first
    assert h is not None
    data = Path(path).read_bytes()
    # A Xing frame: the first frame's header (no padding), zeroed side information, "Xing", flags (frames), count.
    head = bytearray(h.raw)
    head[2] &= ~0x02 & 0xFF
    length = Header(h.version, h.layer, h.bitrate, h.sr, 0, h.mono, bytes(head)).length
    body = b"Xing" + (1).to_bytes(4, "big") + s.frames.to_bytes(4, "big")
    need = 4 + h.side_info + len(body)
    if length < need:  # a low-rate first frame is too small for the tag: borrow a higher bit rate's size
        for i in range(14, 0, -1):
            head[2] = (head[2] & 0x0F) | (i << 4)
            trial = parse_header(bytes(head))
            if trial is not None and trial.length >= need:
                length = trial.length
                break
    frame = bytes(head) + bytes(h.side_info) + body
    frame += bytes(length - len(frame))
    return io.BytesIO(frame + data[s.start :])
