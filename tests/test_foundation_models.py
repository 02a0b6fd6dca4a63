"""The recurrent encoder: every cell, shapes, variable lengths, and the from-scratch cell against torch.nn.RNN."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from seqlit.errors import InputError
from seqlit.models import CELLS, ForecastNet, RecurrentEncoder, ScratchRNN


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_scratch_matches_torch_rnn(num_layers, bidirectional, nonlinearity):
    torch.manual_seed(0)
    ref = torch.nn.RNN(
        4, 6, num_layers=num_layers, nonlinearity=nonlinearity, batch_first=True, bidirectional=bidirectional
    )
    mine = ScratchRNN(
        input_size=4, hidden_size=6, num_layers=num_layers, nonlinearity=nonlinearity, bidirectional=bidirectional
    )
    mine.load_state_dict(ref.state_dict())  # same parameter names and shapes as nn.RNN
    x = torch.randn(3, 9, 4)
    h0 = torch.randn(num_layers * (2 if bidirectional else 1), 3, 6)
    out_ref, h_ref = ref(x, h0)
    out, h = mine(x, h0)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_ref, atol=1e-5, rtol=1e-5)
    # gradients agree too
    out_ref.sum().backward()
    out.sum().backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(dict(mine.named_parameters())[name].grad, p.grad, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_scratch_with_lengths_matches_packed_rnn(bidirectional):
    torch.manual_seed(1)
    a = RecurrentEncoder(input_size=3, hidden_size=5, cell="rnn", num_layers=2, bidirectional=bidirectional)
    b = RecurrentEncoder(input_size=3, hidden_size=5, cell="scratch", num_layers=2, bidirectional=bidirectional)
    b.load_state_dict(a.state_dict())
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 3, 1, 5])
    ra, rb = a(x, lengths), b(x, lengths)
    torch.testing.assert_close(rb.outputs, ra.outputs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rb.last, ra.last, atol=1e-5, rtol=1e-5)
    assert rb.outputs[1, 3:].abs().max() == 0  # nothing past a sequence's end


@pytest.mark.parametrize("cell", CELLS)
def test_encoder_shapes_and_last_step(cell):
    enc = RecurrentEncoder(input_size=3, hidden_size=8, cell=cell, num_layers=2, bidirectional=True, dropout=0.1).eval()
    x = torch.randn(5, 6, 3)
    out = enc(x)
    assert out.outputs.shape == (5, 6, 16) and out.last.shape == (5, 16)
    # forward direction's last state is the last step's output; backward's is the first step's
    torch.testing.assert_close(out.last[:, :8], out.outputs[:, -1, :8])
    torch.testing.assert_close(out.last[:, 8:], out.outputs[:, 0, 8:])


@pytest.mark.parametrize("cell", CELLS)
def test_state_carries_over(cell):
    """Encoding a sequence in two chunks, passing the state along, equals encoding it whole."""
    enc = RecurrentEncoder(input_size=2, hidden_size=4, cell=cell).eval()
    x = torch.randn(3, 10, 2)
    whole = enc(x).outputs
    first = enc(x[:, :6])
    second = enc(x[:, 6:], state=first.state)
    torch.testing.assert_close(torch.cat([first.outputs, second.outputs], 1), whole, atol=1e-5, rtol=1e-5)


def test_forecast_net_shapes():
    net = ForecastNet(input_size=3, horizon=4, num_targets=2, hidden_size=8, cell="gru")
    assert net(torch.randn(5, 12, 3)).shape == (5, 4, 2)


@pytest.mark.parametrize(
    "kwargs, name",
    [(dict(cell="transformer"), "cell"), (dict(input_size=0), "input_size"), (dict(dropout=1.5), "dropout")],
)
def test_encoder_rejects_bad_arguments(kwargs, name):
    args = dict(input_size=3, hidden_size=4) | kwargs
    with pytest.raises(InputError, match=name):
        RecurrentEncoder(**args)


# --- the scratch cell's fast paths against its readable eager loop ---------------------------------------------------
@pytest.mark.parametrize("impl", ["fast", "script"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("masked, bidirectional", [(False, False), (True, False), (True, True)])
def test_scratch_fast_paths_match_eager(impl, nonlinearity, masked, bidirectional):
    """Outputs, final states and every gradient (inputs, start state, weights) agree with the eager loop to 1e-5."""
    torch.manual_seed(0)
    ref = ScratchRNN(
        input_size=3, hidden_size=6, num_layers=2, nonlinearity=nonlinearity, bidirectional=bidirectional, impl="eager"
    )
    fast = ScratchRNN(
        input_size=3, hidden_size=6, num_layers=2, nonlinearity=nonlinearity, bidirectional=bidirectional, impl=impl
    )
    fast.load_state_dict(ref.state_dict())  # same parameter names: checkpoints of either load into the other
    x = torch.randn(4, 9, 3)
    h0 = torch.randn(2 * (2 if bidirectional else 1), 4, 6)
    lengths = torch.tensor([9, 4, 1, 7]) if masked else None
    results = []
    for module in (ref, fast):
        xi, hi = x.clone().requires_grad_(), h0.clone().requires_grad_()
        out, h_n = module(xi, hi, lengths)
        (out.sin().sum() + (h_n * h_n).sum()).backward()  # a loss that weighs every output and state differently
        results.append([out, h_n, xi.grad, hi.grad, *(p.grad for p in module.parameters())])
    assert len(results[0]) == len(results[1]) == 4 + 8 * (2 if bidirectional else 1)
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
    if masked:  # past a sequence's end: zero outputs, and the gradient of those inputs is zero too
        assert torch.all(results[1][0][2, 1:] == 0) and torch.all(results[1][2][2, 1:] == 0)


def test_scratch_fast_path_is_the_default_and_learns():
    """The encoder's scratch cell runs the fast path by default; one SGD step on it lowers the loss like eager's."""
    enc = RecurrentEncoder(input_size=2, hidden_size=5, cell="scratch")
    assert enc.rnn.impl == "fast"
    losses = {}
    for impl in ("eager", "fast"):
        torch.manual_seed(1)
        model = RecurrentEncoder(input_size=2, hidden_size=5, cell="scratch", scratch_impl=impl)
        x, target = torch.randn(8, 6, 2), torch.randn(8, 5)
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        before = torch.nn.functional.mse_loss(model(x).last, target)
        before.backward()
        opt.step()
        losses[impl] = (before.item(), torch.nn.functional.mse_loss(model(x).last, target).item())
    assert losses["fast"][1] < losses["fast"][0]
    assert losses["fast"] == pytest.approx(losses["eager"], abs=1e-5)


def test_scratch_rejects_unknown_impl():
    with pytest.raises(InputError, match="impl"):
        ScratchRNN(input_size=3, hidden_size=4, impl="cuda")


def test_networks_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        RecurrentEncoder(3, 4)
    with pytest.raises(TypeError):
        ForecastNet(3, 2)


def test_only_the_scratch_cell_loads_the_scratch_code():
    """The other cells' import closure leaves the lesson and its fast twin out; the scratch cell loads what it runs."""
    probe = (
        "import sys; from seqlit.models import RecurrentEncoder; import seqlit.tasks.forecaster; "
        "RecurrentEncoder(input_size=2, hidden_size=3, cell='gru'); "
        "print(sorted(m for m in sys.modules if 'scratch' in m)); "
        "RecurrentEncoder(input_size=2, hidden_size=3, cell='scratch', scratch_impl='eager'); "
        "print(sorted(m for m in sys.modules if 'scratch' in m))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "['seqlit.models.scratch']"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_batch_without_padding_runs_dense_with_the_packed_paths_numbers(cell, monkeypatch):
    from torch.nn.utils import rnn as rnn_utils

    torch.manual_seed(0)
    enc = RecurrentEncoder(input_size=5, hidden_size=7, cell=cell, bidirectional=True, num_layers=2)
    x, lengths = torch.randn(4, 9, 5), torch.full((4,), 9)
    packed = rnn_utils.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = rnn_utils.pad_packed_sequence(enc.rnn(packed)[0], batch_first=True)
    packs: list[int] = []
    monkeypatch.setattr("seqlit.models.encoder.pack_padded_sequence", lambda *a, **k: packs.append(1))
    assert torch.equal(enc(x, lengths).outputs, expected) and not packs  # the same numbers, and no packing
