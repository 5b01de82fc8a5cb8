"""ensemblelr: learning from many collider events at once.

Per-instance and per-ensemble likelihood-ratio estimators for scikit-learn, after
Nachman & Thaler, "E Pluribus Unum Ex Machina" (arXiv:2101.07263).

Conventions: events are 2-D arrays ``(n_events, n_features)``; ensembles are 3-D
arrays ``(n_ensembles, ensemble_size, n_features)`` with rows of NaN as padding.
Label 1 is signal (numerator of the likelihood ratio), 0 background; "log ratio"
is ``log p(x|1) / p(x|0)`` in natural log.
"""

from .bagging import BaggedPerInstanceClassifier
from .calibration import CalibratedLogRatio
from .ensembles import make_ensembles, make_mixture_ensembles
from .information import mutual_information
from .logratio import log_ratio_to_proba
from .per_ensemble import PerEnsembleClassifier
from .per_instance import PerInstanceClassifier
from .regression import ParametrizedRegressor, PerEnsembleRegressor
from .scoring import ensemble_scorer
from .transformers import EnsembleLogRatio, LogRatioTransformer

__version__ = "0.1.0"

__all__ = [
    "BaggedPerInstanceClassifier",
    "CalibratedLogRatio",
    "EnsembleLogRatio",
    "LogRatioTransformer",
    "ParametrizedRegressor",
    "PerEnsembleClassifier",
    "PerEnsembleRegressor",
    "PerInstanceClassifier",
    "ensemble_scorer",
    "log_ratio_to_proba",
    "make_ensembles",
    "make_mixture_ensembles",
    "mutual_information",
]
