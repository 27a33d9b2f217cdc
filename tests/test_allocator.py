"""Freed memory kept for the next step (training/allocator.py): steps stop page-faulting."""

import platform
import subprocess
import sys

import pytest

from conftest import train_env

# an embedding the size of sentence polarity's, stepped as the trainer steps it; prints the
# minor page faults per step
STEPS = """
import resource, sys, torch
from filejsonpytorch.training.adam import Adam
from filejsonpytorch.training.allocator import keep_freed_memory
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


def faults_per_step(mode):
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, env=train_env(),
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return float(done.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_a_large_embeddings_steps_reuse_freed_memory_instead_of_faulting_in_new_pages():
    default, kept = faults_per_step("default"), faults_per_step("keep")
    assert default > 500  # the gradient's and Adam's 6 MB blocks, new pages every step
    assert kept < default / 10


def test_another_c_library_is_left_as_it_is(monkeypatch):
    from filejsonpytorch.training import allocator
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator.keep_freed_memory() is False
