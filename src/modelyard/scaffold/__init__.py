"""``modelyard init``: a new project with the continuous-training pipeline, a
validation suite, an agent configuration and a CI workflow (see `project`)."""
