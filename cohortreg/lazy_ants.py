"""Import antspyx without paying for the parts a registration job never uses.

``import ants`` (0.6.3) imports every subpackage at once: ``ants.learn`` pulls in scikit-learn,
``ants.plotting`` matplotlib, ``ants.deeplearn`` more of pandas, ``ants.math.quantile``
statsmodels and scipy.stats, ``ants.core`` pandas (for two methods), ``ants.utils`` requests (to
download sample data). That is about 2.4 s of a 2.8 s import on our 2-core machine, paid by every
job of every subject (preprocessing, skull stripping, affine, registration), and at 2 mm it was
a sixth of a whole torch registration job.

:func:`import_ants` imports ants with those modules replaced by placeholders, then takes the
placeholders out of ``sys.modules`` again. A placeholder imports the real module on first use
(``sm.OLS`` inside ``ants.quantile``, ``pd.DataFrame`` inside ``ants.label_stats``); the two
names ``ants.math.quantile`` imports from scipy.stats are stand-ins that import it when called.
The ``ants`` module gets a ``__getattr__`` (PEP 562):
the first use of a name the deferred subpackages export (``ants.plot``, ``ants.learn``,
``ants.regression_match_image``) imports them and fills the namespace as ``import ants`` would
have. Nothing in antspyx's registration, resampling, I/O or N4 code touches them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

ANTS_SUBPACKAGES = ("ants.learn", "ants.plotting", "ants.deeplearn")
OTHERS = ("statsmodels.api", "statsmodels.formula", "statsmodels.formula.api", "scipy.stats", "pandas", "requests")
# ``from module import name`` of a deferred module at ants' import time: the names that may be
# stand-ins (ants.math.quantile only calls them); any other name imports the module at once.
FROM_IMPORTS = {"scipy.stats": {"pearsonr", "rankdata"}, "pandas": {"DataFrame"}}

_importing = False
_pending: list[str] = []  # deferred ants subpackages whose names ``ants`` does not export yet


class _Placeholder(types.ModuleType):
    """Stands in for a module while ants is imported; afterwards, any use imports the real one."""

    def __getattr__(self, attr: str) -> Any:
        if _importing:
            if attr == "__all__":
                return []  # ``from .learn import *`` in ants/__init__: export nothing yet
            child = sys.modules.get(f"{self.__name__}.{attr}")
            if isinstance(child, _Placeholder):
                return child  # ``import statsmodels.formula.api as smf``
            if attr in FROM_IMPORTS.get(self.__name__, ()):
                return _DeferredCallable(self.__name__, attr)  # ``from scipy.stats import rankdata``
        if attr.startswith("__"):
            raise AttributeError(attr)  # import machinery probing __path__, __spec__, ...
        return getattr(_real_module(self.__name__), attr)


def _real_module(name: str) -> types.ModuleType:
    """The real module (imported now if need be), never the placeholder itself."""
    if isinstance(sys.modules.get(name), _Placeholder):
        del sys.modules[name]
    return importlib.import_module(name)


class _DeferredCallable:
    """A function or class imported from a deferred module: imports the module when first called."""

    def __init__(self, module: str, name: str) -> None:
        self._module, self._name = module, name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(_real_module(self._module), self._name)(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<deferred {self._module}.{self._name}>"


def _export_pending() -> None:
    """Import the deferred ants subpackages and export their names from ``ants``, as ants does."""
    ants = sys.modules["ants"]
    while _pending:
        name = _pending.pop(0)
        real = _real_module(name)
        setattr(ants, name.rsplit(".", 1)[1], real)
        public = getattr(real, "__all__", None) or [k for k in vars(real) if not k.startswith("_")]
        for key in public:
            ants.__dict__.setdefault(key, getattr(real, key))


def _ants_getattr(attr: str) -> Any:
    """``ants.<name>`` not found: export the deferred subpackages, then look again."""
    _export_pending()
    ants = sys.modules["ants"]
    if attr in ants.__dict__:
        return ants.__dict__[attr]
    raise AttributeError(f"module 'ants' has no attribute {attr!r}")


def import_ants() -> types.ModuleType:
    """``import ants`` with its plotting, learning and statistics modules deferred (as is, if
    ants is already imported)."""
    global _importing
    if "ants" in sys.modules:
        return sys.modules["ants"]
    placed = [name for name in (*ANTS_SUBPACKAGES, *OTHERS) if name not in sys.modules]
    for name in placed:
        sys.modules[name] = _Placeholder(name)
    _importing = True
    try:
        import ants
    finally:
        _importing = False
        for name in placed:
            if isinstance(sys.modules.get(name), _Placeholder):
                del sys.modules[name]
    _pending.extend(name for name in ANTS_SUBPACKAGES if name in placed)
    ants.__getattr__ = _ants_getattr  # type: ignore[attr-defined]
    return ants
