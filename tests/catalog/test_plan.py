"""Output planning: ``separate``'s names on any filesystem, and clashes found by grouping claims."""
import os
from collections import defaultdict

import pytest

from spleeter_ext.catalog.job import CatalogJob
from spleeter_ext.catalog.plan import check_job, claims, clashes, outputs_of
from spleeter_ext.errors import ParameterError
from spleeter_ext.separate.naming import output_paths

INSTRUMENTS = ("vocals", "accompaniment")


def job(destination, **kw):
    return CatalogJob(params="demo", destination=destination, instruments=INSTRUMENTS, **kw)


def test_local_names_are_separates(tmp_path):
    song = str(tmp_path / "album" / "song.stem.mp4")
    for fmt in ("{filename}/{instrument}.{codec}", "{foldername}/{filename}-{instrument}.{codec}"):
        [expected] = output_paths([song], str(tmp_path / "out"), INSTRUMENTS, "flac", fmt)
        got = outputs_of(song, job(str(tmp_path / "out"), codec="flac", filename_format=fmt))
        assert got == {k: str(v) for k, v in expected.items()}


def test_remote_names(tmp_path):
    from tests.catalog.fakefs import FakeFileSystem  # noqa: F401 (registers fakefs://)

    got = outputs_of("fakefs://bucket/album/song.mp3", job("fakefs://out/stems", filename_format="{foldername}/"
                                                                                             "{filename}/{instrument}.{codec}"))
    assert got == {i: f"fakefs://out/stems/album/song/{i}.wav" for i in INSTRUMENTS}


def grouped(inputs, destination):
    groups = defaultdict(list)
    for path in inputs:
        for key, claim in claims(path, outputs_of(path, job(destination))):
            groups[key].append(claim)
    return dict(e for g in groups.values() for e in clashes(g))


def test_clashes_name_both_inputs_like_separate(tmp_path):
    a, b, c = (str(tmp_path / d / "song.wav") for d in ("a", "b", "c"))
    solo = str(tmp_path / "solo.wav")
    errors = grouped([a, b, c, solo], str(tmp_path / "out"))
    assert set(errors) == {a, b, c}
    with pytest.raises(ParameterError) as separate:
        output_paths([b, a], str(tmp_path / "out"), INSTRUMENTS, "wav")
    assert errors[a] in {str(separate.value), str(separate.value).replace("(vocals)", "(accompaniment)")
                         .replace("vocals.wav", "accompaniment.wav")}


def test_an_output_on_an_input_is_refused(tmp_path):
    victim = str(tmp_path / "out" / "song" / "vocals.wav")
    writer = str(tmp_path / "song.wav")
    errors = grouped([writer, victim], str(tmp_path / "out"))
    assert errors == {writer: f"{writer}: output {victim} would overwrite an input file; choose another -o or -f"}


def test_bad_codec_bitrate_or_template_fail_at_launch():
    with pytest.raises(ParameterError, match="codec"):
        check_job(job("out", codec="aiff"))
    with pytest.raises(ParameterError, match="bitrate"):
        check_job(job("out", codec="mp3", bitrate="fast"))
    with pytest.raises(ParameterError, match="would also be written"):
        check_job(job("out", filename_format="{filename}.{codec}"))
    check_job(job("out", codec="wav", bitrate="fast"))  # ignored for lossless codecs, as in separate
    assert os.path.isabs(outputs_of("x.wav", job("/o"))["vocals"])


def test_a_filesystem_beam_lacks_is_named_at_launch():
    from spleeter_ext.catalog.storage import check_reachable
    from spleeter_ext.errors import SpleeterExtError

    with pytest.raises(SpleeterExtError, match="no Beam filesystem for nosuchfs:// is installed"):
        check_reachable("nosuchfs://bucket/songs")
    check_reachable("/local/songs")
