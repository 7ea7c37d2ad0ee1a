"""The private scikit-learn names this package builds on, imported in this one place.

They are not scikit-learn's public API and may move between releases, so setup.cfg
bounds scikit-learn to the minor releases this package is tested with; a name that
moves breaks this module's imports, not code scattered across the package.
"""

from sklearn.base import _fit_context
from sklearn.linear_model._base import LinearClassifierMixin, SparseCoefMixin
from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import _check_partial_fit_first_call
from sklearn.utils.validation import _check_sample_weight

__all__ = [
    "Interval",
    "LinearClassifierMixin",
    "SparseCoefMixin",
    "StrOptions",
    "_check_partial_fit_first_call",
    "_check_sample_weight",
    "_fit_context",
    "_handle_zeros_in_scale",
    "_is_constant_feature",
    "_safe_indexing",
]
