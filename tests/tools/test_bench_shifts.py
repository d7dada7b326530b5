"""The shifts benchmark runs end to end on a tiny generated set and writes its section (the measurement itself:
`python -m tools.bench.shifts --data data/synthetic-realistic`, docs/benchmarks.md)."""
from tools.bench import shifts


def test_shifts_section_on_generated_audio(synth_data, tmp_path):
    out = tmp_path / "bench.md"
    shifts.main(["--data", str(synth_data), "--shifts", "0,2", "--max-tracks", "1", "--out", str(out)])
    text = out.read_text()
    assert "<!-- bench:shifts -->" in text and "<!-- /bench:shifts -->" in text
    rows = [line for line in text.splitlines() if line.startswith("| 0 |") or line.startswith("| 2 |")]
    assert len(rows) == 2
    # the unshifted run is its own reference; two shifts average two separations of the same audio
    assert "| +0.00 |" in rows[0]
    assert "nan" not in rows[1]
