"""Names the models accept, importable without torch (config schemas validate against them)."""

SCHEDULES = ("linear", "cosine", "sigmoid", "quadratic")
OBJECTIVES = ("pred_noise", "pred_x0", "pred_v")
FID_METHODS = ("pytorch-fid", "eigh")  # how tr sqrt(S1 S2) is computed (metrics/fid.py fid_from_stats)
