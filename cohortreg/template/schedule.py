"""Which registration settings each round of a template build uses (template.presets).

ANTs' antsMultivariateTemplateConstruction2.sh registers the early iterations as finely as the
last, although their template is still blurred; a cheaper preset for the early rounds (e.g.
``presets: [fast, fast, default, default]``) spends the time where the template is sharp. Round 0
is affine only; deformable round k (1..iterations) takes presets[k-1], and every later round
(the final round that makes the labels) the last preset listed. An explicit key of the method's
params still wins over its preset, as everywhere else.
"""

from __future__ import annotations

from typing import Any, Sequence


def round_params(params: dict[str, Any], presets: Sequence[str], k: int) -> dict[str, Any]:
    """The method params of round k; unchanged without presets (so a build's params do not move)."""
    if not presets or k < 1:
        return dict(params)
    return {**params, "preset": presets[min(k, len(presets)) - 1]}
