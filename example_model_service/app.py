"""create_app(settings) -> FastAPI: the diamonds model server. Nothing is created at import time.

Routes: `POST /predict/{model}` (`regression`, `classification` or `price_band`; one row, or
`{"rows": [...]}`),
`GET /healthz`, `GET /readyz` (200 once the models are loaded), `GET /metrics`.

The prediction route reads and validates its body itself, so every answer, 4xx included, goes
through one place that counts it by model and status and measures its latency and sizes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from example_model_service.models import MODEL_NAMES, MONITOR_MODELS, ModelName, Predictors
from example_model_service.schemas import DiamondRow, PredictBatch, request_body_doc
from example_model_service.service import Answer, MonitorSink, PredictionService, load_or_train
from example_model_service.settings import Settings
from example_model_service.telemetry import MonitorClientCollector, ServiceMetrics

log = logging.getLogger(__name__)


class _Problem(Exception):
    """An answer other than 200: its status, the error reason for the metrics, and the detail."""

    def __init__(self, status: int, reason: str, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.reason = reason
        self.detail = detail


@dataclass
class _State:
    service: PredictionService | None = None
    sink: MonitorSink | None = None
    load_error: str | None = None


def _make_client(settings: Settings) -> MonitorSink | None:
    if not settings.monitor_url:
        log.warning("MONITOR_URL is not set: predictions are not reported to a drift monitor")
        return None
    from monitor_service.client import MonitorClient

    client = MonitorClient(
        settings.monitor_url,
        token=settings.monitor_token,
        batch_size=settings.monitor_batch_size,
        flush_interval=settings.monitor_flush_interval,
    )
    return cast(MonitorSink, client)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Problem(413, "too_large", f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Problem(413, "too_large", f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_rows(body: bytes, header_id: str | None, max_rows: int) -> tuple[list[dict[str, Any]], bool]:
    """The validated rows and whether the body was a single row (not a `{"rows": [...]}` batch)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _Problem(400, "bad_request", f"body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        msg = "Body should be a row object or {rows: [...]}"
        raise _Problem(422, "validation", [{"loc": ["body"], "msg": msg, "type": "dict_type", "input": None}])
    single = "rows" not in payload
    if not single and isinstance(payload["rows"], list) and len(payload["rows"]) > max_rows:
        raise _Problem(413, "too_large", f"{len(payload['rows'])} rows exceed the limit of {max_rows}")
    if single and header_id and payload.get("request_id") is None:
        payload["request_id"] = header_id
    try:
        if single:
            rows = [DiamondRow.model_validate(payload)]
        else:
            rows = PredictBatch.model_validate(payload).rows
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False)
        detail: list[dict[str, Any]] = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"], "input": e.get("input")}
            for e in errors
        ]
        raise _Problem(422, "validation", jsonable_encoder(detail)) from exc
    return [row.model_dump() for row in rows], single


def _answer_json(answer: Answer) -> dict[str, Any]:
    out: dict[str, Any] = {"request_id": answer.request_id, "prediction": answer.prediction}
    if answer.probability is not None:
        out["probability"] = answer.probability
    return out


def create_app(
    settings: Settings,
    *,
    predictors: Predictors | None = None,
    monitor: MonitorSink | None = None,
) -> FastAPI:
    """The service. `predictors` skips loading (else: load or train in the background at start-up);
    `monitor` replaces the MonitorClient made from `settings.monitor_url` (the caller closes it)."""
    registry = CollectorRegistry()
    metrics = ServiceMetrics(registry)
    state = _State()
    registry.register(MonitorClientCollector(lambda: sink.stats() if (sink := state.sink) else None))
    ProcessCollector(registry=registry)

    async def load_models() -> None:
        try:
            loaded = await asyncio.to_thread(
                load_or_train, settings.model_dir, train_if_missing=settings.train_if_missing
            )
        except Exception as exc:
            log.exception("could not load the models from %s", settings.model_dir)
            state.load_error = f"{type(exc).__name__}: {exc}"
            return
        state.service = PredictionService(loaded, state.sink)
        log.info("ready: models %s", ", ".join(MODEL_NAMES))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        owned = monitor is None
        state.sink = _make_client(settings) if owned else monitor
        loading: asyncio.Task[None] | None = None
        if predictors is not None:
            state.service = PredictionService(predictors, state.sink)
        else:
            loading = asyncio.create_task(load_models())
        try:
            yield
        finally:
            if loading is not None and not loading.done():
                loading.cancel()
            sink, state.sink, state.service = state.sink, None, None
            if owned and sink is not None:
                await asyncio.to_thread(sink.close, 5.0)

    app = FastAPI(
        title="Diamonds model service",
        description="Example ML service: prices diamonds and reports every prediction to the drift monitor.",
        lifespan=lifespan,
    )
    app.state.model_service = state
    app.state.registry = registry

    @app.post(
        "/predict/{model}",
        tags=["predict"],
        summary="Predict one or many rows",
        openapi_extra=request_body_doc(),
        responses={
            400: {"description": "not JSON"},
            404: {"description": "unknown model"},
            413: {"description": "body or batch too large"},
            422: {"description": "invalid rows"},
            503: {"description": "models not loaded yet"},
        },
    )
    async def predict(model: str, request: Request) -> JSONResponse:
        """`regression` predicts `price`; `price_band` the band of the price (budget, mid, upper,
        premium, luxury); `classification` predicts `expensive` (price >= 5,000) with
        its probability. One row answers `{model, request_id, prediction[, probability]}`, a batch
        `{model, predictions: [...]}` in row order. Each row is reported to the drift monitor."""
        started = time.perf_counter()
        label = model if model in MODEL_NAMES else "unknown"
        body = b""
        answers: list[Answer] = []
        reason: str | None = None
        try:
            body = await _read_body(request, settings.max_body_bytes)
            if label == "unknown":
                known = " or ".join(MODEL_NAMES)
                raise _Problem(404, "unknown_model", f"unknown model {model!r}: use {known}")
            service = state.service
            if service is None:
                raise _Problem(503, "not_ready", "the models are not loaded yet")
            header_id = request.headers.get("x-request-id")
            rows, single = _parse_rows(body, header_id, settings.max_rows_per_request)
            answers = await run_in_threadpool(service.predict, cast(ModelName, model), rows)
            if single:
                content: dict[str, Any] = {"model": model, **_answer_json(answers[0])}
                response = JSONResponse(content, headers={"x-request-id": answers[0].request_id})
            else:
                response = JSONResponse({"model": model, "predictions": [_answer_json(a) for a in answers]})
        except _Problem as problem:
            reason = problem.reason
            response = JSONResponse({"detail": problem.detail}, status_code=problem.status)
        except Exception:
            log.exception("prediction with model %s failed", model)
            reason = "internal"
            response = JSONResponse({"detail": "internal error"}, status_code=500)
        metrics.observe(
            label, response.status_code, time.perf_counter() - started, len(body), len(response.body), reason
        )
        if answers:
            metrics.predictions.labels(label).inc(len(answers))
        return response

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness", responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """200 once the models are loaded; 503 while loading (or training) or after a failure."""
        if state.service is not None:
            body = {"status": "ready", "models": {m: MONITOR_MODELS[m] for m in MODEL_NAMES}}
            return JSONResponse({**body, "monitor": settings.monitor_url})
        if state.load_error is not None:
            return JSONResponse({"status": "failed", "error": state.load_error}, status_code=503)
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
