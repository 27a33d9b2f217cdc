"""Tests for the linear-chain CRF against brute-force enumeration of all tag paths."""

import itertools

import pytest
import torch

from filejsonpytorch.chunks import is_chunk_labelling
from filejsonpytorch.modules.crf import CRF, chunk_transitions

LF_LABELS = ["PER|B", "PER|I", "LOC|B", "LOC|I", "O"]
SHAPES = [(num_tags, max_len) for num_tags in (3, 4) for max_len in (1, 2, 3, 4)]


def random_batch(num_tags, max_len, seed):
    """Emissions, mask and random tags for a batch with every length 1..max_len."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(list(range(max_len, 0, -1)) + [max_len])
    shape = (len(lengths), max_len, num_tags)
    emissions = torch.randn(shape, generator=generator, dtype=torch.float64)
    mask = torch.arange(max_len).unsqueeze(0) < lengths.unsqueeze(1)
    tags = torch.randint(num_tags, (len(lengths), max_len), generator=generator)
    return emissions, mask, tags


def random_crf(num_tags, seed, allowed=None):
    torch.manual_seed(seed)
    crf = CRF(num_tags, allowed).double()
    with torch.no_grad():  # larger than the init so the tests are not near-uniform
        for parameter in crf.parameters():
            parameter.normal_()
    return crf


def random_allowed(num_tags, seed):
    """Random constraints that leave at least one allowed start and successor per tag."""
    generator = torch.Generator().manual_seed(seed)
    allowed = torch.rand(num_tags + 1, num_tags, generator=generator) < 0.6
    allowed[torch.arange(num_tags + 1), torch.arange(num_tags + 1) % num_tags] = True
    return allowed


def is_allowed(path, allowed):
    num_tags = allowed.shape[1]
    if not allowed[num_tags, path[0]]:
        return False
    return all(allowed[prev, nxt] for prev, nxt in zip(path, path[1:]))


def all_paths(num_tags, length, allowed=None):
    paths = itertools.product(range(num_tags), repeat=length)
    return [path for path in paths if allowed is None or is_allowed(path, allowed)]


def path_score(crf, emissions, path):
    """Score of one path with the learned parameters (no constraint penalties)."""
    score = crf.start[path[0]] + crf.end[path[-1]]
    score = score + sum(emissions[t, tag] for t, tag in enumerate(path))
    return score + sum(crf.transitions[prev, nxt] for prev, nxt in zip(path, path[1:]))


def brute_force(crf, emissions, mask, allowed=None):
    """Per sequence: (paths, tensor of their scores)."""
    results = []
    for sequence, sequence_mask in zip(emissions, mask):
        length = int(sequence_mask.sum())
        paths = all_paths(crf.num_tags, length, allowed)
        scores = torch.stack([path_score(crf, sequence, path) for path in paths])
        results.append((paths, scores))
    return results


def brute_force_marginals(crf, emissions, mask, allowed=None):
    expected = torch.zeros_like(emissions)
    for b, (paths, scores) in enumerate(brute_force(crf, emissions, mask, allowed)):
        probabilities = torch.softmax(scores, dim=0)
        for path, probability in zip(paths, probabilities):
            expected[b, torch.arange(len(path)), torch.tensor(path)] += probability
    return expected


@pytest.mark.parametrize("num_tags,max_len", SHAPES)
def test_log_partition_matches_brute_force(num_tags, max_len):
    crf = random_crf(num_tags, seed=1)
    emissions, mask, _ = random_batch(num_tags, max_len, seed=2)
    expected = torch.stack([torch.logsumexp(s, 0) for _, s in brute_force(crf, emissions, mask)])
    torch.testing.assert_close(crf.log_partition(emissions, mask), expected)


@pytest.mark.parametrize("num_tags,max_len", SHAPES)
def test_neg_log_likelihood_matches_brute_force(num_tags, max_len):
    crf = random_crf(num_tags, seed=3)
    emissions, mask, tags = random_batch(num_tags, max_len, seed=4)
    expected = 0.0
    for b, (paths, scores) in enumerate(brute_force(crf, emissions, mask)):
        gold = tuple(tags[b, : len(paths[0])].tolist())
        expected = expected - torch.log_softmax(scores, 0)[paths.index(gold)]
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, tags, mask), expected)


def test_neg_log_likelihood_ignores_tags_at_padding():
    crf = random_crf(3, seed=5)
    emissions, mask, tags = random_batch(3, 4, seed=6)
    padded_with_ignore_index = tags.masked_fill(~mask, -100)
    torch.testing.assert_close(
        crf.neg_log_likelihood(emissions, padded_with_ignore_index, mask),
        crf.neg_log_likelihood(emissions, tags, mask),
    )


@pytest.mark.parametrize("num_tags,max_len", SHAPES)
def test_viterbi_is_argmax_path(num_tags, max_len):
    crf = random_crf(num_tags, seed=7)
    emissions, mask, _ = random_batch(num_tags, max_len, seed=8)
    best = crf.viterbi(emissions, mask)
    assert best.dtype == torch.long and best.shape == mask.shape
    for b, (paths, scores) in enumerate(brute_force(crf, emissions, mask)):
        expected = paths[int(scores.argmax())]
        assert best[b, : len(expected)].tolist() == list(expected)
        assert best[b, len(expected) :].eq(0).all()


@pytest.mark.parametrize("num_tags,max_len", SHAPES)
def test_marginals_match_brute_force(num_tags, max_len):
    crf = random_crf(num_tags, seed=9)
    emissions, mask, _ = random_batch(num_tags, max_len, seed=10)
    marginals = crf.marginals(emissions, mask)
    torch.testing.assert_close(marginals, brute_force_marginals(crf, emissions, mask))
    torch.testing.assert_close(marginals.sum(2), mask.to(marginals.dtype))


@pytest.mark.parametrize("num_tags,max_len", SHAPES)
def test_constrained_crf_matches_brute_force_over_allowed_paths(num_tags, max_len):
    allowed = random_allowed(num_tags, seed=num_tags * 10 + max_len)
    crf = random_crf(num_tags, seed=11, allowed=allowed)
    emissions, mask, _ = random_batch(num_tags, max_len, seed=12)
    results = brute_force(crf, emissions, mask, allowed)

    expected_log_z = torch.stack([torch.logsumexp(scores, 0) for _, scores in results])
    torch.testing.assert_close(crf.log_partition(emissions, mask), expected_log_z)

    gold = torch.zeros_like(mask, dtype=torch.long)
    expected_nll = 0.0
    for b, (paths, scores) in enumerate(results):
        gold[b, : len(paths[-1])] = torch.tensor(paths[-1])
        expected_nll = expected_nll - torch.log_softmax(scores, 0)[-1]
    torch.testing.assert_close(crf.neg_log_likelihood(emissions, gold, mask), expected_nll)

    best = crf.viterbi(emissions, mask)
    for b, (paths, scores) in enumerate(results):
        expected = paths[int(scores.argmax())]
        assert best[b, : len(expected)].tolist() == list(expected)

    expected_marginals = brute_force_marginals(crf, emissions, mask, allowed)
    torch.testing.assert_close(crf.marginals(emissions, mask), expected_marginals)


def test_viterbi_never_outputs_disallowed_transitions():
    allowed = chunk_transitions(LF_LABELS)
    crf = random_crf(len(LF_LABELS), seed=13, allowed=allowed)
    generator = torch.Generator().manual_seed(14)
    emissions = torch.randn(64, 12, len(LF_LABELS), generator=generator, dtype=torch.float64)
    inside = [LF_LABELS.index("PER|I"), LF_LABELS.index("LOC|I")]
    emissions[:, :, inside] += 3.0  # tempt the decoder towards orphan inside labels
    lengths = torch.randint(1, 13, (64,), generator=generator)
    mask = torch.arange(12).unsqueeze(0) < lengths.unsqueeze(1)
    best = crf.viterbi(emissions, mask)
    for path, length in zip(best.tolist(), lengths.tolist()):
        assert is_allowed(path[:length], allowed)


def test_disallowed_transitions_are_a_buffer_with_fixed_score():
    allowed = chunk_transitions(LF_LABELS)
    crf = CRF(len(LF_LABELS), allowed)
    parameter_names = {name for name, _ in crf.named_parameters()}
    assert parameter_names == {"transitions", "start", "end"}
    assert {"allowed_transitions", "allowed_start"} <= set(crf.state_dict())
    person_b, location_i = LF_LABELS.index("PER|B"), LF_LABELS.index("LOC|I")
    assert crf._transition_scores()[person_b, location_i] == -10000.0
    assert crf._start_scores()[location_i] == -10000.0


def test_chunk_transitions_for_lf_labels():
    allowed = chunk_transitions(LF_LABELS)
    assert allowed.dtype == torch.bool and allowed.shape == (6, 5)
    index = {label: i for i, label in enumerate(LF_LABELS)}

    def may_follow(prev, nxt):
        return bool(allowed[index[prev], index[nxt]])

    assert may_follow("PER|B", "PER|I")
    assert may_follow("PER|I", "PER|I")
    assert may_follow("PER|I", "O")
    assert may_follow("O", "LOC|B")
    assert may_follow("PER|I", "LOC|B")
    assert may_follow("PER|B", "PER|B")
    assert not may_follow("O", "PER|I")
    assert not may_follow("LOC|B", "PER|I")
    assert not may_follow("LOC|I", "PER|I")
    assert not may_follow("PER|B", "LOC|I")
    start = allowed[len(LF_LABELS)]
    assert start.tolist() == [True, False, True, False, True]


def test_chunk_transitions_for_overlapping_lf_labels():
    labels = ["PER|B", "PER|I", "LOC|B", "LOC|I", "PER|B,LOC|I", "PER|I,LOC|I", "O"]
    allowed = chunk_transitions(labels)
    index = {label: i for i, label in enumerate(labels)}
    assert allowed[index["LOC|B"], index["PER|B,LOC|I"]]
    assert allowed[index["PER|B,LOC|I"], index["PER|I,LOC|I"]]
    assert allowed[index["PER|I,LOC|I"], index["LOC|I"]]
    assert not allowed[index["PER|I"], index["PER|B,LOC|I"]]
    assert not allowed[index["LOC|I"], index["PER|I,LOC|I"]]
    assert not allowed[len(labels), index["PER|B,LOC|I"]]


def test_chunk_transitions_for_conll_labels():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    allowed = chunk_transitions(labels)
    index = {label: i for i, label in enumerate(labels)}
    assert allowed[index["B-PER"], index["I-PER"]]
    assert allowed[index["I-LOC"], index["I-LOC"]]
    assert not allowed[index["O"], index["I-PER"]]
    assert not allowed[index["B-LOC"], index["I-PER"]]
    assert allowed[len(labels)].tolist() == [True, True, False, True, False]


@pytest.mark.parametrize(
    "labels",
    [
        ["NN", "NNS", "VB", "DT", "JJ", "IN"],
        ["O"],
        ["PER|B", "PER|I", "NN"],
        ["PER|B", "I-PER", "O"],
        ["PER|X", "O"],
    ],
)
def test_non_chunk_labels_give_no_constraints(labels):
    assert not is_chunk_labelling(labels)
    assert chunk_transitions(labels) is None


def test_chunk_labels_are_recognised():
    assert is_chunk_labelling(LF_LABELS)
    assert is_chunk_labelling(["B-PER", "I-PER", "O"])
    assert is_chunk_labelling(["B", "I", "O"])


def test_gradients_flow():
    torch.manual_seed(15)
    crf = CRF(4)
    emissions, mask, tags = random_batch(4, 5, seed=16)
    emissions = emissions.float().requires_grad_()
    crf.neg_log_likelihood(emissions, tags, mask).backward()
    for tensor in [emissions, *crf.parameters()]:
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all()
        assert tensor.grad.abs().sum() > 0


def test_init_is_small_and_deterministic_given_the_seed():
    torch.manual_seed(17)
    first = CRF(5)
    torch.manual_seed(17)
    second = CRF(5)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
        assert a.abs().max() <= 0.1


def test_works_in_inference_mode_with_single_step_sequences():
    crf = CRF(3, chunk_transitions(["X|B", "X|I", "O"]))
    emissions = torch.randn(2, 1, 3)
    mask = torch.ones(2, 1, dtype=torch.bool)
    with torch.inference_mode():
        assert crf.viterbi(emissions, mask).shape == (2, 1)
        assert crf.log_partition(emissions, mask).shape == (2,)
        torch.testing.assert_close(crf.marginals(emissions, mask).sum(2), torch.ones(2, 1))
        assert torch.isfinite(crf.neg_log_likelihood(emissions, torch.zeros(2, 1).long(), mask))


def test_half_precision_emissions_are_computed_in_float32():
    crf = CRF(3)
    emissions, mask, _ = random_batch(3, 4, seed=18)
    result = crf.log_partition(emissions.half(), mask)
    assert result.dtype == torch.float32
    expected = crf.log_partition(emissions.float(), mask)
    torch.testing.assert_close(result, expected, atol=1e-2, rtol=0)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        CRF(3, torch.ones(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError):
        CRF(3).log_partition(torch.randn(2, 4, 5), torch.ones(2, 4, dtype=torch.bool))


def synthetic_chunk_data(num_sequences, length, seed):
    """Token 0 -> tag 0 (B), token 2 -> tag 2 (O); the ambiguous token 1 is tagged
    1 (I) when it continues a chunk and 2 (O) otherwise, which needs the transitions."""
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(3, (num_sequences, length), generator=generator)
    tags = torch.empty_like(tokens)
    for b in range(num_sequences):
        previous = 2
        for t in range(length):
            token = int(tokens[b, t])
            tag = token if token != 1 else (1 if previous in (0, 1) else 2)
            tags[b, t] = previous = tag
    return tokens, tags


def test_training_learns_a_transition_pattern():
    torch.manual_seed(19)
    tokens, tags = synthetic_chunk_data(32, 8, seed=20)
    lengths = torch.randint(4, 9, (32,), generator=torch.Generator().manual_seed(21))
    mask = torch.arange(8).unsqueeze(0) < lengths.unsqueeze(1)
    emitter = torch.nn.Embedding(3, 3)
    crf = CRF(3)
    optimizer = torch.optim.Adam([*emitter.parameters(), *crf.parameters()], lr=0.05)

    def loss():
        return crf.neg_log_likelihood(emitter(tokens), tags, mask) / mask.sum()

    initial = loss().item()
    for _ in range(300):
        optimizer.zero_grad()
        current = loss()
        current.backward()
        optimizer.step()
    assert loss().item() < 0.1 * initial

    test_tokens, test_tags = synthetic_chunk_data(16, 10, seed=22)
    test_mask = torch.ones_like(test_tokens, dtype=torch.bool)
    with torch.inference_mode():
        predicted = crf.viterbi(emitter(test_tokens), test_mask)
    assert torch.equal(predicted, test_tags)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda():
    crf = CRF(5, chunk_transitions(LF_LABELS)).cuda()
    emissions, mask, tags = random_batch(5, 4, seed=23)
    emissions, mask, tags = emissions.float().cuda(), mask.cuda(), tags.cuda()
    cpu_crf = CRF(5, chunk_transitions(LF_LABELS))
    cpu_crf.load_state_dict(crf.state_dict())
    with torch.inference_mode():
        for method in (cpu_crf.log_partition, cpu_crf.viterbi, cpu_crf.marginals):
            on_gpu = getattr(crf, method.__name__)(emissions, mask).cpu()
            torch.testing.assert_close(on_gpu, method(emissions.cpu(), mask.cpu()))
    crf.neg_log_likelihood(emissions, tags, mask).backward()
    assert torch.isfinite(crf.transitions.grad).all()


def log_space_marginals(crf, emissions, mask):
    """The marginals through the log-space recursions (the path taken when a gradient is needed)."""
    with torch.enable_grad():
        return crf.marginals(emissions.clone().requires_grad_(), mask).detach()


@pytest.mark.parametrize("scale", [1.0, 8.0])
def test_inference_marginals_equal_the_log_space_recursions_on_long_padded_batches(scale):
    allowed = chunk_transitions(LF_LABELS)
    crf = random_crf(len(LF_LABELS), seed=13, allowed=allowed)
    generator = torch.Generator().manual_seed(14)
    emissions = scale * torch.randn(6, 60, len(LF_LABELS), generator=generator, dtype=torch.float64)
    lengths = torch.tensor([60, 59, 31, 2, 1, 60])
    mask = torch.arange(60).unsqueeze(0) < lengths.unsqueeze(1)

    with torch.no_grad():
        fast = crf.marginals(emissions, mask)

    torch.testing.assert_close(fast, log_space_marginals(crf, emissions, mask), rtol=0, atol=1e-9)
    assert fast[~mask].eq(0).all()


def test_marginals_stay_exact_when_the_scaled_recursion_would_underflow():
    crf = random_crf(len(LF_LABELS), seed=15, allowed=chunk_transitions(LF_LABELS))
    emissions = torch.zeros(1, 5, len(LF_LABELS), dtype=torch.float64)
    mask = torch.ones(1, 5, dtype=torch.bool)
    # outside, then inside a chunk that was never opened: in probability space every path is 0
    emissions[0, 1, LF_LABELS.index("O")] = 5000.0
    emissions[0, 2, LF_LABELS.index("PER|I")] = 5000.0
    assert crf._scaled_marginals(emissions, mask) is None
    with torch.no_grad():
        marginals = crf.marginals(emissions, mask)
    assert torch.isfinite(marginals).all()
    torch.testing.assert_close(marginals, log_space_marginals(crf, emissions, mask))
