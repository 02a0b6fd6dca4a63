"""The fast CPU GRU against ``nn.GRU``: outputs, final states and every gradient to 1e-5 over several shapes and layer
counts, dropout between layers, where the encoder uses it, and a task trained with it that loads and exports."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

import seqlit.models.gru_fast as gru_fast_module
from seqlit import runtime
from seqlit.data.classification.synthetic import SyntheticDataModule
from seqlit.errors import InputError
from seqlit.models import RecurrentEncoder
from seqlit.models.gru_fast import CHUNK, fast_gru
from seqlit.run.export import export_task
from seqlit.tasks import Classifier

TOL = dict(atol=1e-5, rtol=1e-5)
QUICK = dict(logger=False, enable_progress_bar=False, enable_model_summary=False)


def outputs_and_grads(run, gru: torch.nn.GRU, x: torch.Tensor, h0: torch.Tensor | None) -> list[torch.Tensor]:
    """Outputs, final state and the gradients of inputs, start state and every parameter, under one loss."""
    gru.zero_grad()
    xi = x.clone().requires_grad_()
    hi = None if h0 is None else h0.clone().requires_grad_()
    out, h_n = run(xi, hi)
    (out.sin().sum() + (h_n * h_n).sum()).backward()  # weighs every step's output and the final state differently
    grads = [xi.grad] + ([] if hi is None else [hi.grad])
    return [out, h_n, *grads, *(p.grad.clone() for p in gru.parameters())]


@pytest.mark.parametrize(
    "batch, steps, features, hidden, layers",
    [(3, 1, 2, 4, 1), (4, 9, 3, 6, 2), (2, CHUNK, 4, 5, 1), (5, 2 * CHUNK + 7, 4, 8, 3), (1, 100, 1, 3, 2)],
)
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_gru_matches_nn_gru(batch, steps, features, hidden, layers, with_state, dtype):
    torch.manual_seed(steps + layers)
    gru = torch.nn.GRU(features, hidden, num_layers=layers, batch_first=True, dtype=dtype)
    if dtype == torch.float64:  # weights and biases far from zero, as chrono sets the gates: every term counts
        with torch.no_grad():  # (float32 keeps torch's scale, where summing 100s of steps stays within 1e-5)
            for p in gru.parameters():
                p.mul_(3.0)
    x = torch.randn(batch, steps, features, dtype=dtype)
    h0 = torch.randn(layers, batch, hidden, dtype=dtype) if with_state else None
    ref = outputs_and_grads(lambda x, h: gru(x, h), gru, x, h0)
    fast = outputs_and_grads(lambda x, h: fast_gru(gru, x, h), gru, x, h0)
    assert len(fast) == len(ref) == 3 + with_state + 4 * layers
    for a, b in zip(ref, fast, strict=True):
        torch.testing.assert_close(b, a, **TOL)


def test_fast_gru_draws_the_same_dropout_between_layers():
    gru = torch.nn.GRU(3, 5, num_layers=3, dropout=0.5, batch_first=True).train()
    x = torch.randn(4, 9, 3)
    torch.manual_seed(3)
    ref = outputs_and_grads(lambda x, h: gru(x, h), gru, x, None)
    torch.manual_seed(3)
    fast = outputs_and_grads(lambda x, h: fast_gru(gru, x, h), gru, x, None)
    for a, b in zip(ref, fast, strict=True):
        torch.testing.assert_close(b, a, **TOL)


def test_fast_gru_gradient_only_through_the_final_state():
    """A loss on the final state alone (``last`` pooling) sends no gradient to the outputs: still nn.GRU's."""
    gru = torch.nn.GRU(2, 4, num_layers=2, batch_first=True)
    x = torch.randn(3, 40, 2, requires_grad=True)
    grads = []
    for run in (gru, lambda x: fast_gru(gru, x)):
        gru.zero_grad()
        x.grad = None
        run(x)[1].sum().backward()
        grads.append([x.grad, *(p.grad.clone() for p in gru.parameters())])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, **TOL)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_the_encoder_runs_it_where_it_applies(monkeypatch):
    calls = []
    monkeypatch.setattr(gru_fast_module, "fast_gru", lambda *a: calls.append(1) or fast_gru(*a))  # looked up per call
    torch.manual_seed(0)
    fast = RecurrentEncoder(input_size=3, hidden_size=5, cell="gru", num_layers=2, gate_init="chrono", chrono_t_max=9)
    plain = RecurrentEncoder(input_size=3, hidden_size=5, cell="gru", num_layers=2, gru_impl="torch")
    plain.load_state_dict(fast.state_dict())  # one nn.GRU module either way: the same state dict
    assert fast.gru_impl == "fast" and isinstance(fast.rnn, torch.nn.GRU)
    x, lengths = torch.randn(4, 9, 3), torch.tensor([9, 2, 5, 1])
    a, b = fast(x), plain(x)
    assert len(calls) == 1
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, **TOL)
    fast(x, lengths)  # a packed batch keeps nn.GRU
    RecurrentEncoder(input_size=3, hidden_size=5, cell="gru", bidirectional=True)(x)  # so does a bidirectional one
    fast.gru_impl = "torch"  # the attribute switches a built encoder: no parameter depends on it
    fast(x)
    assert len(calls) == 1
    traced = torch.jit.trace(RecurrentEncoder(input_size=3, hidden_size=5, cell="gru"), x, check_trace=False)
    assert len(calls) == 1 and "aten::gru" in str(traced.inlined_graph)  # a traced graph records nn.GRU


def test_the_encoder_rejects_an_unknown_gru_impl():
    with pytest.raises(InputError, match="gru_impl"):
        RecurrentEncoder(input_size=3, hidden_size=4, cell="gru", gru_impl="cuda")


def test_a_classifier_trained_with_it_loads_and_exports(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(gru_fast_module, "fast_gru", lambda *a: calls.append(1) or fast_gru(*a))  # looked up per call
    dm = SyntheticDataModule(mode="patterns", num_classes=3, seq_len=40, num_features=2, signal_length=2, train_size=60,
                             val_size=20, test_size=20, batch_size=20, crop_min_length=8)  # fmt: skip
    torch.manual_seed(0)
    task = Classifier(cell="gru", hidden_size=6, num_layers=2, gate_init="chrono", lr=0.01)
    trainer = L.Trainer(max_epochs=2, default_root_dir=tmp_path, enable_checkpointing=False, **QUICK)
    trainer.fit(task, dm)
    assert calls and trainer.global_step == 6  # the training steps ran the fast path
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    again = Classifier.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True).eval()
    assert again.net.encoder.gru_impl == "fast"
    x = dm.datasets["test"].tensors["x"]
    with torch.no_grad():
        expected = task.eval().probabilities(task(x))
        torch.testing.assert_close(again.probabilities(again(x)), expected, **TOL)
        task.net.encoder.gru_impl = "torch"
        torch.testing.assert_close(task.probabilities(task(x)), expected, **TOL)  # nn.GRU reads the same weights
    model = runtime.load(export_task(again, tmp_path / "out"))
    lengths = np.full(len(x), x.shape[1])
    np.testing.assert_allclose(model.classify(x.numpy(), lengths), expected.numpy(), **TOL)
