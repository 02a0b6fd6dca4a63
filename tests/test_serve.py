"""``seqlit serve`` as a real server subprocess on 127.0.0.1, called by a real HTTP client: answers per task, dynamic
batching under concurrent clients, one 4xx message naming the field for each bad request while it keeps serving,
/health and the OpenAPI page, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CONFIGS, QUIET, REPO, run_seqlit
from test_text_cli import make_corpus

pytest.importorskip("litserve")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port: int, path: str, body: bytes | None = None, timeout: float = 30) -> tuple[int, dict | str]:
    """One HTTP request; returns (status, parsed JSON or text)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST" if body else "GET",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        status, text = err.code, err.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Server:
    """``python -m seqlit.run.serve ARGS`` in ``cwd``, ready once /health answers (bounded wait)."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore"}
        self.log = cwd / f"serve-{self.port}.log"  # a file, not a pipe nobody drains: a chatty server never blocks
        command = [sys.executable, "-m", "seqlit.run.serve", *args, "--port", str(self.port)]
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                if call(self.port, "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        pytest.fail("server did not become healthy in 90 s")

    def post(self, payload: object) -> tuple[int, dict | str]:
        return call(self.port, "/predict", json.dumps(payload).encode())

    def stop(self) -> int:
        """SIGTERM, then wait for the server and every process it started (they carry its --port) to end."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        deadline = time.monotonic() + 20
        while self.children() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not self.children(), f"processes left behind: {self.children()}"
        return code

    def children(self) -> list[str]:
        ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout.splitlines()
        return [line for line in ps if "seqlit.run.serve" in line and f"--port {self.port}" in line]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("serve_text")
    make_corpus(cwd / "corpus", {"train": 32, "test": 8})
    run_seqlit(["fit", "--config", str(CONFIGS / "imdb_best.yaml"), "--data.root", "corpus", "--model.hidden_size", "8",
                "--model.embedding_dim", "8", "--data.batch_size", "8", "--data.max_length", "40",
                "--trainer.max_epochs", "1", "--test_after_fit", "false", *QUIET], cwd)  # fmt: skip
    return cwd


@pytest.mark.slow
def test_text_classifier_server_answers_batches_and_refuses_bad_requests(text_run):
    server = Server(["--ckpt_path", "best", "--experiment", "imdb_best", "--onnx", "--max_batch_size", "4",
                     "--batch_timeout", "0.01", "--max_chars", "2000"], text_run)  # fmt: skip
    try:
        status, body = server.post({"texts": ["a wonderful film", "boring and awful"]})
        assert status == 200 and [p["label"] in ("neg", "pos") for p in body["predictions"]] == [True, True]
        assert abs(sum(body["predictions"][0]["probabilities"].values()) - 1) < 1e-5
        with ThreadPoolExecutor(8) as pool:  # concurrent clients: batched together, each gets its own answer
            answers = list(pool.map(lambda i: server.post({"texts": ["great"] * (1 + i % 3)}), range(24)))
        assert all(s == 200 for s, _ in answers)
        assert [len(b["predictions"]) for _, b in answers] == [1 + i % 3 for i in range(24)]
        for payload, status, field in (
            (b"{not json", 400, "body"),
            ({"text": "hi"}, 422, "texts"),
            ({"texts": "hi"}, 422, "texts"),
            ({"texts": [""]}, 422, "texts[0]"),
            ({"texts": ["ok", 3]}, 422, "texts[1]"),
            ({"texts": ["x" * 5000]}, 422, "texts[0]"),
            ([1, 2], 422, "body"),
        ):
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            got, body = call(server.port, "/predict", raw)
            assert got == status and body["detail"].startswith(f"{field}:"), (payload, got, body)
        assert server.post({"texts": ["still serving"]})[0] == 200
        assert call(server.port, "/docs")[0] == 200 and "/predict" in json.dumps(call(server.port, "/openapi.json")[1])
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM)


@pytest.mark.slow
def test_forecaster_server_on_pytorch_with_bad_series(tmp_path):
    run_seqlit(["fit", "--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--experiment", "sine_gru",
                "--data.length", "240", "--data.val_size", "40",
                "--data.test_size", "60", "--data.window", "8", "--data.scaler", "standard", "--model.hidden_size", "8",
                "--model.loss", "quantile", "--trainer.max_epochs", "1", "--test_after_fit", "false", *QUIET],
               tmp_path)  # fmt: skip
    server = Server(["--ckpt_path", "last", "--experiment", "sine_gru"], tmp_path)
    try:
        status, body = server.post({"rows": list(range(12))})
        assert status == 200 and len(body["point"]) == 1 and len(body["quantiles"][0][0]) == 3
        assert body["quantiles"][0][0][0] <= body["point"][0][0] <= body["quantiles"][0][0][2]
        for payload, field, words in (
            ({"rows": [1, 2, 3]}, "rows", "at least 8 rows"),
            ({"rows": [1, 2, 3, 4, 5, 6, 7, None, 9]}, "rows", "NaN"),
            ({"rows": [1, 2, 3, 4, 5, 6, 7, "sunny", 9]}, "rows", "unknown category"),
            ({"rows": "1,2,3"}, "rows", "expected list"),
        ):
            status, body = server.post(payload)
            assert status == 422 and body["detail"].startswith(field) and words in body["detail"], body
        status, body = call(server.port, "/predict", b'{"rows": [1, 2, 3, 4, 5, 6, 7, NaN, 9]}')
        assert status == 422 and "NaN" in body["detail"]
        assert server.post({"rows": list(range(8))})[0] == 200
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM)


@pytest.mark.slow
def test_exported_text_classifier_equals_the_checkpoint_without_torch(text_run, tmp_path):
    from seqlit import runtime
    from seqlit.inference import load_text_checkpoint, predict_sentiment
    from seqlit.run.export import export

    ckpt = next((text_run / "lightning_logs" / "imdb_best").glob("version_0/checkpoints/epoch=*.ckpt"))
    model = runtime.load(export(ckpt, tmp_path / "text"))
    assert model.meta["label_names"] == ["neg", "pos"] and model.meta["max_length"] == 40
    task, tokenizer, settings = load_text_checkpoint(str(ckpt))
    texts = ["a wonderful great film", "the plot was awful and boring " * 20, "", "zzz unseen words"]
    expected = predict_sentiment(task, texts, tokenizer, settings["max_length"], settings["truncation"])
    got = model.predict(texts)
    assert [r["label"] for r in got] == [label for label, _ in expected]
    assert max(abs(r["probability"] - p) for r, (_, p) in zip(got, expected, strict=True)) < 1e-5


@pytest.mark.slow
def test_language_model_server_generates_like_the_checkpoint(tmp_path):
    (tmp_path / "periodic.txt").write_text("the quick brown fox jumps over the lazy dog. " * 60)
    run_seqlit(["fit", "--config", str(CONFIGS / "charlm_gru.yaml"), "--data.path", "periodic.txt",
                "--model.hidden_size", "16", "--model.embedding_dim", "8", "--model.sample_length", "10",
                "--data.seq_len", "32", "--data.batch_size", "8", "--trainer.max_steps", "10",
                "--trainer.val_check_interval", "10", "--trainer.max_time", "null", "--model.schedule_by", "steps",
                "--test_after_fit", "false",
                *QUIET], tmp_path)  # fmt: skip
    server = Server(["--ckpt_path", "last", "--experiment", "charlm_gru", "--onnx"], tmp_path)
    try:
        status, body = server.post({"prompt": "the qu", "length": 25, "temperature": 0})
        from seqlit.inference import load_task

        task = load_task(str(tmp_path / "lightning_logs" / "charlm_gru" / "version_0" / "checkpoints" / "last.ckpt"))
        assert status == 200 and body["text"] == task.generate("the qu", 25, temperature=0)
        for payload, field in (({"prompt": ""}, "prompt"), ({"length": 3}, "prompt"),
                               ({"prompt": "a", "length": "5"}, "length"), ({"prompt": "a", "top_k": 0}, "top_k"),
                               ({"prompt": "a", "temperature": -1}, "temperature")):  # fmt: skip
            status, body = server.post(payload)
            assert status == 422 and body["detail"].startswith(f"{field}:"), body
        assert server.post({"prompt": "the", "length": 5, "seed": 1})[0] == 200
    finally:
        code = server.stop()
    assert code in (0, -signal.SIGTERM)
