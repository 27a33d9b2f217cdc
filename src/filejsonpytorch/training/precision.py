"""Mixed precision (--amp) for training on a GPU: the forward pass and the loss under
autocast (bf16, or fp16 with a gradient scaler that keeps small gradients from vanishing).
Off, the same calls pass everything through unchanged, so CPU runs take the same path."""

import torch

from ..errors import UsageError

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp, device):
    if amp != "off" and device.type != "cuda":
        raise UsageError(f"--amp {amp}: mixed precision is for training on a GPU; this run trains on the "
                         f"{device.type} in float32 (leave out --amp, or give --cuda true on a machine with a GPU)")


class Precision:
    def __init__(self, amp, device):
        check_amp(amp, device)
        self.device_type, self.dtype = device.type, DTYPES.get(amp)
        # fp16's narrow range needs the loss scaled; disabled, the scaler passes everything through
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.dtype is not None)
