"""Names the models accept, importable without torch (config schemas validate against them)."""

SCHEDULES = ("linear", "cosine", "sigmoid", "quadratic")
OBJECTIVES = ("pred_noise", "pred_x0", "pred_v")
# How the Frechet distance's tr sqrt(S1 S2) is computed (metrics/fid.py fid_from_stats): "eigh"
# (default) by symmetric eigendecompositions, "pytorch-fid" by its calculate_frechet_distance (sqrtm).
FID_METHODS = ("eigh", "pytorch-fid")
DEFAULT_FID_METHOD = "eigh"
