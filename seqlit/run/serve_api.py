"""The JSON API of ``seqlit serve``: one LitServe API per task kind, with request checks that name the field.

Requests and responses (``POST /predict``):

* classifier: ``{"texts": ["a great film", ...]}`` (or ``"sequences"``: lists of feature rows) →
  ``{"predictions": [{"label", "probability", "probabilities": {name: p}}, ...]}``;
* forecaster: ``{"rows": [[v, ...], ...]}`` (at least ``window`` recent rows in data units; a list of numbers for one
  column) → ``{"point": (H, K), "quantiles": (H, K, Q), "levels", "target_names"}``;
* language model: ``{"prompt": "ROMEO:", "length": 200, "temperature": 0.8, "top_k": null, "seed": 0}`` →
  ``{"text": ...}``.

A bad request is a 4xx answer with one message naming the field; the server keeps serving. Classifier and forecaster
requests are batched dynamically (``max_batch_size``, ``batch_timeout``): requests that arrive together run as one
padded batch. The model is loaded in :meth:`SeqlitAPI.setup`, inside LitServe's worker process.
"""

from __future__ import annotations

import json
import math
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException

from seqlit.errors import InputError


def bad(field: str, message: str) -> HTTPException:
    return HTTPException(status_code=422, detail=f"{field}: {message}")


def field(request: Any, name: str, kind: type | tuple[type, ...], required: bool = True, default: Any = None) -> Any:
    """``request[name]`` checked against ``kind``; a missing or mistyped field is a 422 naming it."""
    if not isinstance(request, dict):
        raise bad("body", "a JSON object is required")
    if name not in request or request[name] is None:
        if required:
            raise bad(name, "this field is required")
        return default
    value = request[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    wanted = "a number" if float in kinds else " or ".join(k.__name__ for k in kinds)
    if isinstance(value, bool) and bool not in kinds:  # JSON true is a Python int too; never a count or a number
        raise bad(name, f"expected {wanted}, got a boolean")
    if not isinstance(value, kind):
        raise bad(name, f"expected {wanted}, got {type(value).__name__}")
    return value


class JSONBody:
    """ASGI middleware: a POST body that is not JSON is a 400 naming the body (LitServe would answer 500); any POST
    body is read as JSON whatever its content type, so ``curl -d '{...}'`` works without a header."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            json.loads(body)
        except ValueError as err:
            detail = json.dumps({"detail": f"body: invalid JSON ({err})"}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json")]})  # fmt: skip
            return await send({"type": "http.response.body", "body": detail})
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


class SeqlitAPI(ls.LitAPI):
    """Loads the model of ``folder`` (ONNX Runtime, or PyTorch through ``load_model``) and answers per task kind."""

    def __init__(self, *, folder: str, ckpt_path: str, onnx: bool, kind: str, max_chars: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.folder, self.ckpt_path, self.onnx, self.kind, self.max_chars = folder, ckpt_path, onnx, kind, max_chars

    def setup(self, device: str) -> None:
        from seqlit.run.serve import load_model

        self.model = load_model(self.folder, self.ckpt_path, onnx=self.onnx)
        self.meta = self.model.meta

    # --- requests ---------------------------------------------------------------------------------------------------
    def decode_request(self, request) -> Any:  # noqa: ANN001 - unannotated: LitServe then hands over the parsed JSON
        if self.kind == "classifier":
            return self._texts(request)
        if self.kind == "forecaster":
            return self._rows(request)
        return self._generation(request)

    def _texts(self, request: Any) -> list[Any]:
        if self.meta["input"] == "features":
            seqs = field(request, "sequences", list)
            if not seqs:
                raise bad("sequences", "give at least one sequence")
            return [self._checked_rows(s, "sequences", 1) for s in seqs]
        texts = field(request, "texts", list)
        if not texts:
            raise bad("texts", "give at least one text")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise bad(f"texts[{i}]", f"expected a string, got {type(text).__name__}")
            if not text.strip():
                raise bad(f"texts[{i}]", "empty text")
            if len(text) > self.max_chars:
                raise bad(f"texts[{i}]", f"{len(text)} characters, more than the limit of {self.max_chars}")
        return texts

    def _checked_rows(self, rows: Any, name: str, least: int) -> np.ndarray:
        cats = self.meta.get("categories")
        flat = rows if isinstance(rows, list) else []
        if any(isinstance(v, str) for r in flat for v in (r if isinstance(r, list) else [r])):
            raise bad(name, f"unknown category: rows hold numbers only{f' (categories: {cats})' if cats else ''}")
        if any(
            v is None or (isinstance(v, float) and math.isnan(v))
            for r in flat
            for v in (r if isinstance(r, list) else [r])
        ):
            raise bad(name, "a missing or NaN value: rows must hold finite numbers")  # fmt: skip
        try:
            return self.model.check_rows(rows, name, least)
        except InputError as err:  # already worded as name=value: allowed
            raise HTTPException(status_code=422, detail=str(err)) from None
        except (TypeError, ValueError):
            raise bad(name, "rows of numbers are required") from None

    def _rows(self, request: Any) -> np.ndarray:
        rows = field(request, "rows", list)
        return self._checked_rows(rows, "rows", self.meta["window"])[-self.meta["window"] :]

    def _generation(self, request: Any) -> dict[str, Any]:
        prompt = field(request, "prompt", str)
        if not prompt:
            raise bad("prompt", "empty prompt")
        if len(prompt) > self.max_chars:
            raise bad("prompt", f"{len(prompt)} characters, more than the limit of {self.max_chars}")
        length = field(request, "length", int, False, 200)
        if not 0 <= length <= 10_000:
            raise bad("length", f"{length} is not in [0, 10000]")
        temperature = float(field(request, "temperature", (int, float), False, 0.8))
        if not (math.isfinite(temperature) and temperature >= 0):
            raise bad("temperature", "a finite number >= 0 is required")
        top_k = field(request, "top_k", int, False, None)
        if top_k is not None and top_k < 1:
            raise bad("top_k", "null or at least 1")
        return {"prompt": prompt, "length": length, "temperature": temperature, "top_k": top_k,
                "seed": field(request, "seed", int, False, 0)}  # fmt: skip

    # --- batches ----------------------------------------------------------------------------------------------------
    def batch(self, inputs: list[Any]) -> list[Any]:
        return list(inputs)  # requests stay separate until predict pads them into one batch

    def unbatch(self, output: list[Any]) -> list[Any]:
        return list(output)

    def predict(self, x: Any) -> Any:
        items = x if self._batched(x) else [x]
        if self.kind == "classifier":
            flat = [t for item in items for t in item]
            rows = self.model.predict(flat)
            out, start = [], 0
            for item in items:  # split the one padded batch back into the requests
                out.append({"predictions": rows[start : start + len(item)]})
                start += len(item)
        elif self.kind == "forecaster":
            got = self.model.forecast_batch(np.stack(items))
            out = [self._forecast(got, i) for i in range(len(items))]
        else:
            out = [{"text": self.model.generate(**item)} for item in items]
        return out if self._batched(x) else out[0]

    def _batched(self, x: Any) -> bool:
        # with max_batch_size > 1 LitServe hands predict a list of decoded requests, else one
        return self.max_batch_size > 1

    def _forecast(self, got: dict[str, Any], i: int) -> dict[str, Any]:
        answer = {"point": got["point"][i].tolist(), "target_names": self.meta["target_names"]}
        if "quantiles" in got:
            answer.update(quantiles=got["quantiles"][i].tolist(), levels=got["levels"])
        return answer

    def encode_response(self, output: Any) -> Any:
        return output
