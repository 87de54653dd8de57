"""Statistical tests used by the analyses, each pinned to one documented variant.

Thin wrappers fix the variant of tests that maintained libraries have (chi-square, t, Shapiro-Wilk,
logistic regression); the rest is implemented here because no maintained Python library has it
in the form the study used: Fisher's exact test on 2 x k tables with R's conditional-MLE odds
ratio, SPSS-style forward LR selection, and Gray's test for cumulative incidence. Firth's
logistic regression comes from firthmodels (it matches R logistf). docs/statistics.md lists
every variant and the R call it matches;
tests/test_stats_reference.py checks each against R.

Every public function returns a plain JSON-serialisable dict with ``test``, ``statistic`` and
``p_value`` (None where a procedure has no single statistic).
"""

from .categorical import chi2_or_fisher, cmh, fisher_exact, pearson_chi2
from .competing import cuminc
from .continuous import compare_continuous, describe, mann_whitney, shapiro, student_t, welch_t
from .regression import firth_logistic, forward_lr, linear, logistic

__all__ = [
    "chi2_or_fisher",
    "cmh",
    "compare_continuous",
    "cuminc",
    "describe",
    "firth_logistic",
    "fisher_exact",
    "forward_lr",
    "linear",
    "logistic",
    "mann_whitney",
    "pearson_chi2",
    "shapiro",
    "student_t",
    "welch_t",
]
