"""The catalog command line: inputs mixed with any Beam pipeline option, told apart by Beam's own parser."""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import ParameterError


def _beam_parser():
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # the same parser PipelineOptions builds
    parser.add_argument("inputs", nargs="*")
    return parser


def split_arguments(tokens: Sequence[str]) -> Tuple[List[str], Dict[str, Any]]:
    """``(inputs, Beam options that differ from their defaults)`` from a command line tail such as
    ``songs/ --project p --region=eu list.csv --save_main_session``.

    Raises :class:`ParameterError` for an option Beam does not know (a typo must not pass silently).
    """
    parser = _beam_parser()
    namespace, unknown = parser.parse_known_intermixed_args(list(tokens))
    bad = [t for t in unknown if t.startswith("-")]
    if bad:
        raise ParameterError(f"unknown option {bad[0]}: not an option of 'catalog' nor a Beam pipeline option; "
                             "see 'spleeter-ext catalog --help' and Beam's pipeline options")
    values = vars(namespace)
    inputs = list(values.pop("inputs")) + list(unknown)
    return inputs, {k: v for k, v in values.items() if v != parser.get_default(k)}


def default_threads(options: Dict[str, Any]) -> Optional[int]:
    """TensorFlow threads per worker: the cores shared out among local DirectRunner worker processes
    (``--direct_num_workers N --direct_running_mode multi_processing``); otherwise all cores."""
    if options.get("runner") not in (None, "DirectRunner", "direct", "FnApiRunner"):
        return None
    cores = os.cpu_count() or 1
    workers = options.get("direct_num_workers", 1) or cores  # 0: one per core
    if options.get("direct_running_mode", "in_memory") == "in_memory" or workers <= 1:
        return None
    return max(1, cores // workers)
