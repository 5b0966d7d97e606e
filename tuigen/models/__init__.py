"""Plain torch nn.Modules and samplers. Knows nothing of the store or the runner."""
