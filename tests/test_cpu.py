"""The training process's CPU settings (training/cpu.py): steps stop page-faulting, and
subnormal numbers are zeros in every thread while training runs, and only then."""

import platform
import subprocess
import sys

import pytest

from conftest import train_env
from filejsonpytorch.training.cpu import cpu_settings

# an embedding the size of sentence polarity's, stepped as the trainer steps it; prints the
# minor page faults per step
STEPS = """
import resource, sys, torch
from filejsonpytorch.training.adam import Adam
from filejsonpytorch.training.cpu import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.set_num_threads(1)
embedding, linear = torch.nn.Embedding(15396, 100), torch.nn.Linear(100, 2)
optimizer = Adam([*embedding.parameters(), *linear.parameters()])
def step():
    words = torch.randint(0, 15396, (32, 20))
    optimizer.zero_grad()
    linear(embedding(words).mean(1)).logsumexp(1).sum().backward()
    optimizer.step()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(30):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 30)
"""

# Adam's first moment of a weight without gradient, shrunk into the subnormal range, in a
# tensor large enough that torch splits the product between its threads
SUBNORMALS = """
import sys, torch
from contextlib import nullcontext
from filejsonpytorch.training.cpu import cpu_settings
with cpu_settings() if sys.argv[1] == "training" else nullcontext():
    torch.set_num_threads(2)
    moments = torch.full((2_000_000,), 2e-38) * 0.5
    print(int((moments * 0.9 != 0).sum()))
"""


def run(program, mode):
    done = subprocess.run([sys.executable, "-c", program, mode], capture_output=True, text=True, env=train_env(),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_large_embeddings_steps_reuse_freed_memory_instead_of_faulting_in_new_pages():
    default, kept = run(STEPS, "default"), run(STEPS, "keep")
    assert default > 500  # the gradient's and Adam's 6 MB blocks, new pages every step
    assert kept < default / 10


def test_another_c_library_is_left_as_it_is(monkeypatch):
    from filejsonpytorch.training import cpu
    monkeypatch.setattr(cpu.platform, "libc_ver", lambda: ("", ""))
    assert cpu.keep_freed_memory() is False


X86 = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="flushing is x86's (SSE) here")


@X86
def test_subnormal_numbers_are_zeros_in_every_thread_while_training():
    assert run(SUBNORMALS, "default") == 2_000_000
    assert run(SUBNORMALS, "training") == 0


@X86
def test_the_thread_gets_subnormal_numbers_back_when_training_ends():
    tiny = float("1e-310")  # subnormal in Python's float (a double) too
    with cpu_settings():
        assert tiny * 3.0 == 0.0
    assert tiny * 3.0 == 3e-310
