"""Use this package's methods from an installed upstream mdistiller (megvii-research/mdistiller).

    import mdistiller_ddkd.upstream
    mdistiller_ddkd.upstream.register()    # then upstream's tools/train.py accepts DISTILLER.TYPE DDKD

``register()`` adds every distiller of ours that upstream's ``mdistiller.distillers.distiller_dict`` lacks
(DDKD, DIFFKD, DIST, ...) and each one's config node that ``mdistiller.engine.cfg.CFG`` lacks. Entries
upstream already has are never replaced or modified. Our classes are built the upstream way,
``Cls(student, teacher, cfg)``, work with upstream's models (same ``(logits, feats)`` API) and follow
upstream's ``.cuda()`` / DataParallel usage. Methods whose construction needs more than that (the
train-set size, as CRD) are not added; upstream has its own CRD anyway.
"""

from __future__ import annotations

from typing import Dict, List

from .distillers import Distiller, config_nodes, distiller_dict

_INSTALL_HINT = (
    "mdistiller_ddkd.upstream.register() extends an installed upstream mdistiller, which was not found: "
    "clone https://github.com/megvii-research/mdistiller and `pip install -e .` it (or put the clone on "
    "PYTHONPATH). Without upstream, use this package's own tools (ddkd-train / tools/train.py)."
)


def _upstream_modules():
    try:
        import mdistiller  # noqa: F401
        import mdistiller.distillers as upstream_distillers
        from mdistiller.engine import cfg as upstream_cfg
    except ImportError as err:
        raise ImportError(f"{_INSTALL_HINT} ({err})") from err
    if not hasattr(upstream_distillers, "distiller_dict") or not hasattr(upstream_cfg, "CFG"):
        raise ImportError(f"the installed mdistiller has no distillers.distiller_dict / engine.cfg.CFG; "
                          f"{_INSTALL_HINT}")
    return upstream_distillers, upstream_cfg


def _built_like_upstream(cls) -> bool:
    """Whether ``cls(student, teacher, cfg)`` is how the class is built (no extra construction data)."""

    build = getattr(cls, "build", None)
    return build is None or getattr(build, "__func__", None) is Distiller.build.__func__


def missing_upstream() -> Dict[str, type]:
    """Our distillers that the installed upstream lacks and that upstream can build."""

    upstream_distillers, _ = _upstream_modules()
    theirs = upstream_distillers.distiller_dict
    return {name: cls for name, cls in sorted(distiller_dict.items())
            if name not in theirs and _built_like_upstream(cls)}


def register(verbose: bool = False) -> List[str]:
    """Add our missing distillers and config nodes to the installed upstream; returns the names added.

    Idempotent: a second call adds nothing. Raises ``ImportError`` (with instructions) without upstream.
    """

    upstream_distillers, upstream_cfg = _upstream_modules()
    added = missing_upstream()
    upstream_distillers.distiller_dict.update(added)

    cfg = upstream_cfg.CFG
    frozen = cfg.is_frozen()
    if frozen:
        cfg.defrost()
    new_nodes = []
    try:
        for name, node in sorted(config_nodes.items()):
            if name not in cfg:
                cfg[name] = node.clone()
                new_nodes.append(name)
    finally:
        if frozen:
            cfg.freeze()
    if verbose:
        print(f"[mdistiller_ddkd] added to upstream mdistiller: distillers {', '.join(added) or 'none'}; "
              f"config nodes {', '.join(new_nodes) or 'none'}")
    return list(added)
