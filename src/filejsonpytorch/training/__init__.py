"""Training, one file per part; `train.py` (the command) lists them in the order a run meets them."""
