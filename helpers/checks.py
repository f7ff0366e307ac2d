"""Exercise checks, kept under their old name for the chapters (`from helpers import checks`;
`checks.check_auroc(my_auroc)`). The checks live in `helpers.course.checks`, one module per
chapter; see `helpers.course.checks._common` for the convention
(`check_<name>(student, *, seed=None) -> str`, `CheckFailed` on a broken property)."""

from helpers.course.checks import CHECKS
from helpers.course.checks._common import PEPTIDES, CheckFailed, _run, _stub_or  # noqa: F401  (re-exported)
from helpers.course.checks.ch01 import check_auroc, check_mcc  # noqa: F401
from helpers.course.checks.ch02 import check_finite_differences, check_gradient_x_input  # noqa: F401
from helpers.course.checks.ch03 import check_integrated_gradients, check_path_rule  # noqa: F401
from helpers.course.checks.ch04 import check_clip_renormalise, check_smoothgrad  # noqa: F401
from helpers.course.checks.ch05 import check_deeplift_dense, check_rescale_multiplier  # noqa: F401
from helpers.course.checks.ch06 import check_occlusion, check_window_occlusion  # noqa: F401
from helpers.course.checks.ch07 import check_permutation_shapley, check_shapley  # noqa: F401
from helpers.course.checks.ch08 import check_lime_least_squares, check_weighted_ridge  # noqa: F401
from helpers.course.checks.ch09 import check_conjugate_gradient, check_hvp  # noqa: F401
from helpers.course.checks.ch10 import check_best_substitution, check_edit_distance  # noqa: F401
from helpers.course.checks.ch11 import check_centre_shapes, check_table_lookup  # noqa: F401
from helpers.course.checks.ch12 import check_average_path_length, check_mimic_tree  # noqa: F401
from helpers.course.checks.ch13 import check_deletion_curve, check_spearman  # noqa: F401
from helpers.course.checks.ch14 import check_class_difference, check_helix_descriptors  # noqa: F401

__all__ = ["CHECKS", "CheckFailed", *CHECKS]
