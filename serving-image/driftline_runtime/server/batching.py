"""Adaptive batching: the rows of concurrent requests go to the estimator in one call, and each request gets its
own rows' results back.

A scikit-learn call costs a fixed overhead (input validation; a forest's per-tree Python loop) far above its
per-row work, so 64 concurrent one-row requests cost about 64 times what one 64-row call does. A request's rows wait
for the other requests the event loop reads in the same pass (no added wait by default) or up to `max_wait`, then
go with them as one call of at most `max_rows` rows. The batching is invisible to a request: its result is its own
rows' slice, drift and feedback see its rows and predictions as unbatched, and one request the model refuses fails
alone with its own 4xx, because a call that fails is made again request by request.

Results may differ from an unbatched call in the last bits of a probability (BLAS sums a matrix product in a
different order for a different number of rows, as scikit-learn alone does for the same row in different batches);
labels are the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from driftline_runtime.server.inputs import Batch
from driftline_runtime.server.model import ServedModel
from driftline_runtime.server.predict import OFFLOAD_VALUES, call_estimator

Outcome = NDArray[Any] | BaseException
SizeObserver = Callable[[int, int], None]
"""Told the rows and requests of every estimator call."""


def combine(model: ServedModel, batches: Sequence[Batch]) -> Batch:
    """One batch holding the rows of `batches`, in order (model input only: the per-request columns stay with each
    request for drift and feedback)."""
    first = batches[0].model_input
    rows = sum(b.rows for b in batches)
    if isinstance(first, np.ndarray):
        return Batch(rows, np.concatenate([b.model_input for b in batches]), ())
    import pandas as pd  # only models with categorical features pay for pandas

    return Batch(rows, pd.concat([b.model_input for b in batches], ignore_index=True), ())


def run_batches(model: ServedModel, batches: Sequence[Batch], method: str) -> list[Outcome]:
    """Each batch's results (or its error) from as few estimator calls as the batches allow: one for all, or, when
    that call fails, one per batch so that only the batch at fault gets an error."""
    if len(batches) > 1:
        try:
            out = call_estimator(model, combine(model, batches), method)
        except Exception:  # a bad request's rows: found below, by asking for each batch alone
            pass
        else:
            results: list[Outcome] = []
            start = 0
            for b in batches:
                results.append(out[start : start + b.rows])
                start += b.rows
            return results
    outcomes: list[Outcome] = []
    for b in batches:
        try:
            outcomes.append(call_estimator(model, b, method))
        except Exception as e:
            outcomes.append(e)
    return outcomes


@dataclass
class _Gathering:
    """Requests waiting for one estimator method's next call."""

    batches: list[Batch] = field(default_factory=list)
    futures: list[asyncio.Future[NDArray[Any]]] = field(default_factory=list)
    rows: int = 0
    timer: asyncio.Handle | None = None


class Batcher:
    """Coalesces the estimator calls of concurrent requests on the server's event loop. `max_rows` 0 (or 1): every
    request is its own call, made at once."""

    def __init__(
        self, model: ServedModel, max_rows: int, max_wait: float = 0.0, observe: SizeObserver | None = None
    ) -> None:
        self.model = model
        self.max_rows = max_rows
        self.max_wait = max_wait
        self._observe = observe
        self._gathering: dict[str, _Gathering] = {}

    async def predict(self, batch: Batch, method: str) -> NDArray[Any]:
        if batch.rows >= self.max_rows:  # as large as a batch on its own (or batching is off): no wait
            return await self._alone(batch, method)
        loop = asyncio.get_running_loop()
        gathering = self._gathering.get(method)
        if gathering is not None and gathering.rows + batch.rows > self.max_rows:
            self._flush(method)
            gathering = None
        if gathering is None:
            gathering = self._gathering[method] = _Gathering()
            # call_soon runs after every callback already due in this pass: the requests read with this one
            # join it before the call is made.
            if self.max_wait > 0:
                gathering.timer = loop.call_later(self.max_wait, self._flush, method)
            else:
                gathering.timer = loop.call_soon(self._flush, method)
        future: asyncio.Future[NDArray[Any]] = loop.create_future()
        gathering.batches.append(batch)
        gathering.futures.append(future)
        gathering.rows += batch.rows
        if gathering.rows >= self.max_rows:
            self._flush(method)
        return await future

    def _on_loop(self, rows: int) -> bool:
        """Whether a call of `rows` rows is made on the event loop: below OFFLOAD_VALUES a thread hop costs more."""
        return rows * len(self.model.features) < OFFLOAD_VALUES

    async def _alone(self, batch: Batch, method: str) -> NDArray[Any]:
        if self._observe is not None:
            self._observe(batch.rows, 1)
        if self._on_loop(batch.rows):
            return call_estimator(self.model, batch, method)
        return await asyncio.get_running_loop().run_in_executor(None, call_estimator, self.model, batch, method)

    def _flush(self, method: str) -> None:
        gathering = self._gathering.pop(method, None)
        if gathering is None:
            return
        if gathering.timer is not None:
            gathering.timer.cancel()
        if self._observe is not None:
            self._observe(gathering.rows, len(gathering.batches))
        if self._on_loop(gathering.rows):
            _deliver(gathering.futures, run_batches(self.model, gathering.batches, method))
            return
        # Big batches are predicted off the loop, which keeps reading requests (and answering probes) meanwhile.
        work = asyncio.get_running_loop().run_in_executor(None, run_batches, self.model, gathering.batches, method)
        work.add_done_callback(lambda done: _deliver(gathering.futures, _outcomes(done, len(gathering.futures))))


def _outcomes(done: asyncio.Future[list[Outcome]], count: int) -> list[Outcome]:
    error = asyncio.CancelledError() if done.cancelled() else done.exception()
    return [error] * count if error is not None else done.result()


def _deliver(futures: Sequence[asyncio.Future[NDArray[Any]]], outcomes: Sequence[Outcome]) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.done():  # its request was cancelled (the client went away)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
