"""filejsonpytorch: the PyTorch backend of the GATE LearningFramework."""

__version__ = "0.1.0"
