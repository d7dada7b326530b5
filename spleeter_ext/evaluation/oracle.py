"""Oracle separations (IRM, IBM, multichannel Wiener filter) and the mixture floor, from the true sources.

Definitions and how they compare with SiSEC18's oracle rows: docs/evaluation.md.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..errors import ParameterError
from ..log import logger
from .stft import BlockSTFT

__all__ = ["irm", "ibm", "oracle_mwf", "mixture_as_estimate", "ORACLES", "oracle_estimates"]


def _check_inputs(mixture: np.ndarray, sources: np.ndarray, where: str) -> Tuple[np.ndarray, np.ndarray]:
    # no float64 copy of whole tracks here: blocks are converted as they are read
    mixture = np.asarray(mixture)
    sources = np.asarray(sources)
    for name, arr in (("mixture", mixture), ("sources", sources)):
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ParameterError(f"{where}: {name} must hold real samples, got dtype {arr.dtype}")
    if mixture.ndim != 2 or mixture.shape[1] > mixture.shape[0]:
        raise ParameterError(f"{where}: mixture must have shape (n_samples, n_channels), got {mixture.shape}")
    if sources.ndim != 3 or sources.shape[1:] != mixture.shape:
        raise ParameterError(
            f"{where}: sources must have shape (n_sources, {mixture.shape[0]}, {mixture.shape[1]}) to match the "
            f"mixture, got {sources.shape}; trim or pad the stems to the mixture's length")
    if sources.shape[0] < 1:
        raise ParameterError(f"{where}: sources is empty; pass at least one source")
    return mixture, sources


def _geometry(n_samples: int, n_fft: int, hop: int, block_frames: int) -> BlockSTFT:
    return BlockSTFT(n_samples, n_fft=n_fft, hop=hop, block_frames=block_frames)


def _apply_masks(mixture: np.ndarray, sources: np.ndarray, mask_fn: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 n_fft: int, hop: int, block_frames: int) -> np.ndarray:
    """Apply real masks ``mask_fn(S, X)`` (``(J, T, F, C)``) to the mixture STFT, block by block."""
    geometry = _geometry(mixture.shape[0], n_fft, hop, block_frames)
    out = geometry.new_output((sources.shape[0],), mixture.shape[1])
    for t0, t1 in geometry.blocks():
        X = geometry.analyse(mixture, t0, t1)
        S = geometry.analyse(sources, t0, t1)
        geometry.synthesise_into(out, mask_fn(S, X) * X, t0)
    return geometry.finish(out)


def irm(mixture: np.ndarray, sources: np.ndarray, alpha: float = 2, n_fft: int = 4096, hop: int = 1024,
        block_frames: int = 256) -> np.ndarray:
    """Ideal ratio mask: ``M_j = |S_j|^α / Σ_k |S_k|^α`` per channel and bin, applied to the mixture.

    ``alpha=1`` is SiSEC18's IRM1 (magnitude ratio), ``alpha=2`` IRM2 (power ratio, the single-channel
    Wiener filter with oracle spectrograms; the best SiSEC18 oracle).  In bins where every source is
    zero the masks are ``1 / n_sources``, so the masks always sum to one and the estimates sum to the
    mixture (up to STFT round-off).
    """
    mixture, sources = _check_inputs(mixture, sources, "irm")
    if not alpha > 0:
        raise ParameterError(f"irm: alpha must be > 0, got {alpha!r}; use 1 (IRM1) or 2 (IRM2)")
    n_sources = sources.shape[0]

    def masks(S: np.ndarray, X: np.ndarray) -> np.ndarray:
        power = np.abs(S) ** alpha
        total = power.sum(axis=0)
        empty = total == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = power / total
        ratio[:, empty] = 1.0 / n_sources
        return ratio

    return _apply_masks(mixture, sources, masks, n_fft, hop, block_frames)


def ibm(mixture: np.ndarray, sources: np.ndarray, alpha: float = 1, theta: float = 0.5, n_fft: int = 4096,
        hop: int = 1024, block_frames: int = 256) -> np.ndarray:
    """Ideal binary mask: bin kept for source j when ``|S_j|^α >= θ · |X|^α`` (per channel).

    As sigsep-mus-oracle's ``IBM.py`` the ratio is taken against the *mixture* (IBM1: ``alpha=1``,
    IBM2: ``alpha=2``; ``theta=0.5`` is a majority vote).  Binary masks need not sum to one, so the
    estimates do not sum to the mixture.
    """
    mixture, sources = _check_inputs(mixture, sources, "ibm")
    if not alpha > 0:
        raise ParameterError(f"ibm: alpha must be > 0, got {alpha!r}; use 1 (IBM1) or 2 (IBM2)")
    if not 0 < theta <= 1:
        raise ParameterError(f"ibm: theta must be in (0, 1], got {theta!r}; 0.5 is the SiSEC18 value")

    def masks(S: np.ndarray, X: np.ndarray) -> np.ndarray:
        return (np.abs(S) ** alpha >= theta * np.abs(X) ** alpha).astype(np.float64)

    return _apply_masks(mixture, sources, masks, n_fft, hop, block_frames)


def _solve_small(C: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve ``C z = b`` for stacks of small Hermitian systems (``C``: ``(..., K, K)``, ``b``: ``(..., K)``)."""
    K = C.shape[-1]
    if K == 1:
        return b / C[..., 0]
    if K == 2:  # closed form (norbert's ``_invert`` does the same), far faster than batched LAPACK
        det = C[..., 0, 0] * C[..., 1, 1] - C[..., 0, 1] * C[..., 1, 0]
        z0 = (C[..., 1, 1] * b[..., 0] - C[..., 0, 1] * b[..., 1]) / det
        z1 = (C[..., 0, 0] * b[..., 1] - C[..., 1, 0] * b[..., 0]) / det
        return np.stack([z0, z1], axis=-1)
    return np.linalg.solve(C, b[..., None])[..., 0]


def oracle_mwf(mixture: np.ndarray, sources: np.ndarray, n_fft: int = 4096, hop: int = 1024,
               block_frames: int = 256, eps: Optional[float] = None) -> np.ndarray:
    """Multichannel Wiener filter with oracle local Gaussian model parameters (SiSEC18 "MWF").

    Own vectorised, block-wise implementation of the full-rank local Gaussian model of Duong, Vincent
    & Gribonval (IEEE TASLP 2010) with the estimators of norbert 0.2.1, and equal to chaining
    norbert's helpers on the whole-track STFTs (checked in the tests):

    * ``v_j(t, f) = mean_c |S_j(t, f, c)|²`` (``norbert.get_local_gaussian_model``);
    * ``R_j(f) = Σ_t S_j S_jᴴ / (eps + Σ_t v_j)``: time-invariant full-rank spatial covariance, from
      the true source over the whole track (first pass);
    * ``Cxx = Σ_j v_j R_j + sqrt(eps)·I`` (``norbert.get_mix_model`` plus the regularisation of
      ``norbert.expectation_maximization``), ``Ŝ_j = v_j R_j Cxx⁻¹ X`` (``norbert.wiener_gain`` and
      ``apply_filter``; second pass).

    ``eps`` defaults to the float64 machine epsilon, norbert's default for double precision.
    The gains sum to the identity up to the regularisation, so the estimates sum to the mixture
    except in near-silent bins.
    """
    mixture, sources = _check_inputs(mixture, sources, "oracle_mwf")
    eps = float(np.finfo(np.float64).eps if eps is None else eps)
    if not eps > 0:
        raise ParameterError(f"oracle_mwf: eps must be > 0, got {eps!r}")
    n_sources, _, n_channels = sources.shape
    geometry = _geometry(mixture.shape[0], n_fft, hop, block_frames)

    # pass 1: spatial covariance matrices over the whole track
    cov = np.zeros((n_sources, geometry.n_bins, n_channels, n_channels), dtype=np.complex128)
    weight = np.full((n_sources, geometry.n_bins), eps)
    for t0, t1 in geometry.blocks():
        S = geometry.analyse(sources, t0, t1)  # (J, T, F, C)
        cov += np.einsum("jtfc,jtfd->jfcd", S, S.conj())
        weight += np.mean(np.abs(S) ** 2, axis=-1).sum(axis=1)
    R = cov / weight[..., None, None]

    # pass 2: Wiener filtering
    regularisation = np.sqrt(eps) * np.eye(n_channels)
    out = geometry.new_output((n_sources,), n_channels)
    for t0, t1 in geometry.blocks():
        X = geometry.analyse(mixture, t0, t1)  # (T, F, C)
        S = geometry.analyse(sources, t0, t1)
        v = np.mean(np.abs(S) ** 2, axis=-1)  # (J, T, F)
        Cxx = np.einsum("jtf,jfcd->tfcd", v, R) + regularisation
        z = _solve_small(Cxx, X)  # Cxx⁻¹ X, (T, F, C)
        estimates = v[..., None] * np.einsum("jfcd,tfd->jtfc", R, z)
        geometry.synthesise_into(out, estimates, t0)
    return geometry.finish(out)


def mixture_as_estimate(mixture: np.ndarray, n_sources: int) -> np.ndarray:
    """The floor ("MIX" in SiSEC18): every estimate is the mixture itself, ``(n_sources, n_samples, n_channels)``."""
    mixture = np.asarray(mixture, dtype=np.float64)
    if mixture.ndim != 2 or mixture.shape[1] > mixture.shape[0]:
        raise ParameterError("mixture_as_estimate: mixture must have shape (n_samples, n_channels), "
                             f"got {mixture.shape}")
    if isinstance(n_sources, bool) or not isinstance(n_sources, (int, np.integer)) or n_sources < 1:
        raise ParameterError(f"mixture_as_estimate: n_sources must be a positive integer, got {n_sources!r}")
    return np.repeat(mixture[None], int(n_sources), axis=0)


def _mix(mixture: np.ndarray, sources: np.ndarray, **_: object) -> np.ndarray:
    return mixture_as_estimate(mixture, np.asarray(sources).shape[0])


#: SiSEC18 oracle names -> functions ``f(mixture, sources, **stft_kwargs)``.
ORACLES: Dict[str, Callable[..., np.ndarray]] = {
    "IRM1": lambda m, s, **kw: irm(m, s, alpha=1, **kw),
    "IRM2": lambda m, s, **kw: irm(m, s, alpha=2, **kw),
    "IBM1": lambda m, s, **kw: ibm(m, s, alpha=1, theta=0.5, **kw),
    "IBM2": lambda m, s, **kw: ibm(m, s, alpha=2, theta=0.5, **kw),
    "MWF": oracle_mwf,
    "MIX": _mix,
}


def oracle_estimates(method: str, mixture: np.ndarray, sources: np.ndarray, **stft_kwargs) -> np.ndarray:
    """Run the oracle called ``method`` (a key of :data:`ORACLES`); ``stft_kwargs`` go to the STFT."""
    try:
        fn = ORACLES[method]
    except KeyError:
        raise ParameterError(f"oracle_estimates: unknown oracle {method!r}; choose one of {sorted(ORACLES)}") from None
    logger.debug("oracle %s on %d samples x %d sources", method, np.shape(mixture)[0], np.shape(sources)[0])
    return fn(mixture, sources, **stft_kwargs)
