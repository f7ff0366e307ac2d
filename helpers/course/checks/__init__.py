"""Exercise checks, one module per chapter (`ch01` ... `ch14`, `ch15`, ...); `_common` holds
what they share. `CHECKS` maps each check's name to its module, so the grader can load a
check fresh by name (`importlib.import_module(CHECKS[name])`) without importing them all."""

CHECKS = {
    "check_auroc": "ch01", "check_mcc": "ch01",
    "check_finite_differences": "ch02", "check_gradient_x_input": "ch02",
    "check_integrated_gradients": "ch03", "check_path_rule": "ch03",
    "check_clip_renormalise": "ch04", "check_smoothgrad": "ch04",
    "check_deeplift_dense": "ch05", "check_rescale_multiplier": "ch05",
    "check_occlusion": "ch06", "check_window_occlusion": "ch06",
    "check_permutation_shapley": "ch07", "check_shapley": "ch07",
    "check_lime_least_squares": "ch08", "check_weighted_ridge": "ch08",
    "check_conjugate_gradient": "ch09", "check_hvp": "ch09",
    "check_best_substitution": "ch10", "check_edit_distance": "ch10",
    "check_centre_shapes": "ch11", "check_table_lookup": "ch11",
    "check_average_path_length": "ch12", "check_mimic_tree": "ch12",
    "check_deletion_curve": "ch13", "check_spearman": "ch13",
    "check_class_difference": "ch14", "check_helix_descriptors": "ch14",
    "check_filter_pwm": "ch15", "check_saturation_mutagenesis": "ch15",
    "check_ale": "ch16", "check_partial_dependence": "ch16",
}
CHECKS = {name: f"{__name__}.{module}" for name, module in CHECKS.items()}
