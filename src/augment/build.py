"""The Keras layers of an aug config: the per-sample ops and the batch-mixing op.

Consecutive geometric (or photometric) ops fuse into one layer (`src.augment.fused`) unless
`aug.fused=false`; batch-mixing ops (mixup, cutmix) are built apart, since they mix labels and
always run in the tf.data pipeline (`src.augment.plan`).
"""

from __future__ import annotations

from typing import Any

import keras

from src.augment import image
from src.augment.fused import GEOMETRIC, PHOTOMETRIC, FusedGeometry, FusedPhotometric
from src.augment.registry import fill_mode
from src.augment.resolve import Entry, resolved_entries
from src.checks import is_int
from src.errors import ConfigError
from src.schema import aug_with_defaults


def _check_seed(seed: Any) -> None:
    if not is_int(seed):
        raise ConfigError(f"seed={seed!r} is not an integer; accepted: an integer such as 0")


def build_augmentation(aug_cfg: Any, modality: str, seed: int) -> keras.Sequential | None:
    """A `keras.Sequential(name="augmentation")` of the per-sample ops, or None when none apply.

    Layer i gets the explicit seed `seed + i`, so building never draws from Keras's global RNG:
    models built with and without augmentation get identical initial weights. Mixing ops are
    left out: `build_mixing` builds them.
    """
    _check_seed(seed)
    aug_cfg = aug_with_defaults(aug_cfg)
    entries = [e for e in resolved_entries(aug_cfg, modality) if not e.mixing]
    if not entries:
        return None
    layers = [e.build(seed + i) for i, e in enumerate(entries)]
    if aug_cfg["fused"]:
        layers = _fuse(entries, layers, fill_mode(aug_cfg), seed)
    return keras.Sequential(layers, name="augmentation")


_FAMILY = {**dict.fromkeys(GEOMETRIC, "geometric"), **dict.fromkeys(PHOTOMETRIC, "photometric")}


def _fuse(
    entries: list[Entry], layers: list[keras.layers.Layer], fill_mode: str, seed: int
) -> list[keras.layers.Layer]:
    """Runs of two or more consecutive geometric ops become one `FusedGeometry` layer, runs of
    photometric ops one `FusedPhotometric`.

    A single op keeps its own layer, so `aug=<op>` ablations are Keras's own op.
    """
    out: list[keras.layers.Layer] = []
    run: list[int] = []

    def family(entry: Entry) -> str | None:
        return _FAMILY.get(entry.name)

    def close() -> None:
        if len(run) > 1:
            fused = [(entries[i].name, entries[i].magnitude) for i in run]
            name = "fused_" + "_".join(n for n, _ in fused)
            if family(entries[run[0]]) == "geometric":
                out.append(FusedGeometry(fused, fill_mode, seed=seed + run[0], name=name))
            else:
                out.append(FusedPhotometric(fused, seed=seed + run[0], name=name))
        else:
            out.extend(layers[i] for i in run)
        run.clear()

    for i, entry in enumerate(entries):
        if run and family(entry) != family(entries[run[0]]):
            close()
        if family(entry) is not None:
            run.append(i)
        else:
            out.append(layers[i])
    close()
    return out


def build_mixing(aug_cfg: Any, modality: str, seed: int) -> keras.layers.Layer | None:
    """The batch-mixing op (mixup or cutmix) of the config, or None."""
    _check_seed(seed)
    mixing = [e for e in resolved_entries(aug_cfg, modality) if e.mixing]
    if len(mixing) > 1:
        raise ConfigError(
            f"aug.ops has {len(mixing)} batch-mixing ops ({', '.join(e.name for e in mixing)}); "
            f"accepted: at most one of {', '.join(image.MIXING)}"
        )
    return mixing[0].build(seed + 1000) if mixing else None
