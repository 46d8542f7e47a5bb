"""Progress lines: every tenth of the work, or every ``seconds`` when the work is slow, and one at the end."""

import logging

from genrelib.progress import Progress


def test_lines_every_tenth_and_at_the_end(caplog):
    caplog.set_level(logging.INFO, logger="genrelib.progress")
    p = Progress(1000, "mfcc features", bar=False, seconds=3600)
    for _ in range(40):
        p.update(25, skipped=3)
    p.close()
    p.close()  # once
    lines = [r.getMessage() for r in caplog.records if r.name == "genrelib.progress"]
    assert [line.split()[2] for line in lines] == [f"{k}/1000" for k in range(100, 1001, 100)]
    assert lines[0].startswith("mfcc features: 100/1000 files (10%), 3 skipped, ") and lines[0].endswith(" s")
    assert lines[-1].startswith("mfcc features: 1000/1000 files (100%), 3 skipped")


def test_lines_every_few_seconds_when_slow(caplog):
    caplog.set_level(logging.INFO, logger="genrelib.progress")
    p = Progress(1000, "mel features", bar=False, seconds=0.0)  # every update is "10 s later"
    for _ in range(3):
        p.update()
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split()[2] for line in lines] == ["1/1000", "2/1000", "3/1000"]
    assert "(0%)" in lines[0]


def test_on_a_terminal_only_notices_and_epoch_lines_show():
    import io
    import logging

    from genrelib.cli.run import _progress_lines, _progress_lines_off

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    handler = _progress_lines(stream)
    try:
        log = logging.getLogger("genrelib.progress")
        log.info("features: 3/10 files (30%%), 0 skipped, 1 s")  # a bar shows that on a terminal
        log.info("seed_cnn epoch 1/2: loss 1.000, 2 s", extra={"every_time": True})
        log.warning("waiting for the store lock")
    finally:
        _progress_lines_off(handler)
    assert stream.getvalue().splitlines() == [
        "genrelib: seed_cnn epoch 1/2: loss 1.000, 2 s",
        "genrelib: waiting for the store lock",
    ]
