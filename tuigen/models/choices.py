"""Names the models accept, importable without torch (config schemas validate against them)."""

SCHEDULES = ("linear", "cosine", "sigmoid", "quadratic")
OBJECTIVES = ("pred_noise", "pred_x0", "pred_v")
