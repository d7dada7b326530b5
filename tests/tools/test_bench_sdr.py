"""The fast-SDR benchmark prints one markdown row (smoke test on 1 s of audio)."""
from tools.bench import sdr as bench


def test_bench_prints_a_markdown_row(capsys):
    assert bench.main(["--seconds", "1", "--sources", "2", "--repeats", "1", "--header"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| benchmark |") and len(lines) == 3
    assert lines[2].startswith("| framewise SDR, 1 s frames | 1 s, 2 stereo sources") and lines[2].count("|") == 7
