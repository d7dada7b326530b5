"""Find and load a model's weights: this project's checkpoints, stock Spleeter checkpoints, and the
published ``spleeter:2stems/4stems/5stems`` models through Spleeter's own model provider.

Never silently runs an untrained model: a model with trainable variables and no checkpoint is an
error (stock Spleeter, when its download fails, can leave an empty model folder behind and then
write pass-through stems; see its issues #757/#817).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

from ..config import model_dir_of
from ..errors import ModelNotFoundError
from ..log import logger


def _has_checkpoint(path: Path) -> bool:
    return (path / "checkpoint").is_file()


def resolve_pretrained(cfg: dict) -> Optional[Path]:
    """The folder that should hold ``cfg``'s checkpoint, downloading Spleeter's published models when
    the config is a ``spleeter:`` preset (``MODEL_PATH``, default ``pretrained_models``)."""
    source = cfg.get("_source", "")
    model_dir = cfg.get("model_dir")
    if source.startswith("spleeter:") and model_dir:
        base = Path(os.environ.get("MODEL_PATH", "pretrained_models"))
        target = Path(model_dir) if Path(model_dir).is_absolute() else base / model_dir
        if _has_checkpoint(target):
            return target
        from spleeter.model.provider import ModelProvider

        existed = target.exists()
        try:
            target.mkdir(parents=True, exist_ok=True)
            provider = ModelProvider.default()
            logger.info("Downloading %s weights into %s", source, target)
            provider.download(target.name, str(target))
            ModelProvider.writeProbe(str(target))
        except Exception as exc:  # network errors come in many types (httpx, OSError, tarfile)
            if not existed:
                shutil.rmtree(target, ignore_errors=True)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelNotFoundError(
                f"{source}: pretrained weights are not in {target} and could not be downloaded ({reason}); "
                f"get {target.name}.tar.gz from Spleeter's release v1.4.0 and extract it into {target} "
                f"(or set MODEL_PATH to the folder that holds '{target.name}/'), or use the bundled offline "
                f"model with -p demo"
            ) from None
        if not _has_checkpoint(target):
            raise ModelNotFoundError(f"{source}: download finished but {target} holds no checkpoint; "
                                     f"delete {target} and retry")
        return target
    path = model_dir_of(cfg)
    if path is not None and not path.is_absolute() and not path.exists():
        alt = Path(os.environ.get("MODEL_PATH", "pretrained_models")) / path
        if alt.exists():
            return alt
    return path


def load_weights(estimator, cfg: dict) -> Optional[str]:
    """Load the checkpoint of ``cfg`` into ``estimator`` (built). Returns the checkpoint path, or None
    for models without trainable variables."""
    import tensorflow as tf

    from ..models.spleeter_ckpt import is_spleeter_checkpoint, load_spleeter_checkpoint

    estimator.build()
    has_vars = bool(estimator.body.variables)
    path = resolve_pretrained(cfg)
    source = cfg.get("_source", "<config>")
    if path is None or not _has_checkpoint(path):
        if not has_vars:
            return None
        where = f"model_dir '{path}'" if path is not None else "no 'model_dir' key"
        raise ModelNotFoundError(f"{source}: no checkpoint found ({where}); train the model with "
                                 f"'spleeter-ext train -p {source}' or point 'model_dir' at a trained model")
    if is_spleeter_checkpoint(path):
        if not hasattr(estimator.body, "unets"):
            raise ModelNotFoundError(f"{path}: a stock Spleeter checkpoint fits only the Spleeter U-Net models, "
                                     f"not '{cfg['model']['type']}'")
        used = load_spleeter_checkpoint(estimator.body, path)
        logger.debug("Loaded stock Spleeter checkpoint %s", used)
        return used
    ckpt_path = tf.train.latest_checkpoint(str(path))
    if ckpt_path is None:
        raise ModelNotFoundError(f"{path}: the 'checkpoint' file names no readable checkpoint; retrain or restore it")
    ckpt = tf.train.Checkpoint(model=estimator.body)
    status = ckpt.restore(ckpt_path)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as exc:
        raise ModelNotFoundError(f"{ckpt_path}: checkpoint does not match the config's model "
                                 f"({str(exc).splitlines()[0][:200]}); use the config saved with it") from None
    logger.debug("Loaded checkpoint %s", ckpt_path)
    return ckpt_path
