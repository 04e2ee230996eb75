"""DVC stage entry points: one module per stage, each reading params.yaml."""
