"""Executors: run the pending configurations of a sweep and record each result in the store.

Two executors share one plan. First every :class:`~w2sg.experiments.runner.DataUnit` (a synthetic
draw, a dataset's labels, one representation of a dataset) is prepared exactly once; each run starts
as soon as the units it needs are ready.

- ``local``: a :class:`concurrent.futures.ProcessPoolExecutor` (forkserver where available, else
  spawn) with one worker per core by default. Units are written as ``.npy`` files (no pickle) to
  ``<store>.inputs/<pid>/`` and memory-mapped by the runs; the folder is removed at the end (and
  by the next sweep, when a killed sweep could not).
- ``ray``: real Ray tasks. ``ray.init()`` starts a local cluster unless an address is given
  (``auto`` joins a running one). Units live in Ray's object store and are passed to the runs by
  reference.

Workers return plain JSON-able records; the parent process is the only writer of the SQLite store
and commits each record in its own transaction as soon as it arrives.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from w2sg import atomic
from w2sg.errors import W2SGError
from w2sg.experiments.runner import (
    ROLES,
    DataUnit,
    PrepareFn,
    RunFn,
    describe_error,
    execute,
    failed_record,
    inputs_of,
    pipeline_run,
    plan_units,
    prepare,
    uses_gpu,
)
from w2sg.experiments.store import ResultStore
from w2sg.experiments.sweep import RunSpec, SweepConfig
from w2sg.progress import progress_bar, throttled_refresh

EXECUTORS: tuple[str, ...] = ("local", "ray")

OnResult = Callable[[dict[str, Any]], None]
#: Called when a data unit is ready, with the label of one still being prepared (None: all ready).
OnUnit = Callable[[str | None], None]
Tick = Callable[[], object]

# How often the progress bar is redrawn while nothing finishes (elapsed time and ETA stay live).
_TICK_S = 1.0

# BLAS / OpenMP pools sized to one thread per worker, so that N workers use N cores, not N².
#: Environment of the local workers (unless the user set these): one BLAS thread each, since the
#: pool already uses every core, and no hub/transformers progress bars under the sweep's own.
_WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


@dataclass
class SweepSummary:
    """What one ``w2sg sweep`` call did. ``executed`` counts the runs it ran (done or failed)."""

    total: int
    executed: int
    skipped: int
    failed: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_sweep(
    sweep: SweepConfig | list[RunSpec],
    store: str | Path,
    *,
    executor: str = "local",
    workers: int | None = None,
    ray_address: str | None = None,
    retry_failed: bool = False,
    progress: bool = True,
    run_fn: RunFn = pipeline_run,
    prepare_fn: PrepareFn = prepare,
    gpus_per_extraction: float | None = None,
    verbose: bool = False,
) -> SweepSummary:
    """Run every configuration of ``sweep`` that the store does not hold yet.

    Args:
        sweep: a parsed sweep (or its expanded runs).
        store: the SQLite results store (created if missing).
        executor: ``local`` (process pool) or ``ray``.
        workers: parallel workers (default: the number of cores; with Ray joining a cluster, the
            cluster decides).
        ray_address: with ``ray``, the address of a running cluster (``auto`` to find it).
        retry_failed: also re-run configurations recorded as ``failed``.
        progress: show a progress bar with counts and ETA on stderr.
        run_fn: what a worker calls for one run (default: the w2sg pipeline); a module-level
            function, so that workers can import it.
        prepare_fn: what a worker calls to compute the arrays of a data unit (default:
            :func:`~w2sg.experiments.runner.prepare`); module-level as well.
        gpus_per_extraction: with ``ray``, the GPUs each extraction by a neural model (the
            ``transformers`` backend: text encoders, decoders, SMILES transformers) asks Ray for;
            default: 1 when the cluster has GPUs, else 0. Heads and featurizers use CPUs.
        verbose: with ``ray``, let the workers' own log lines through to the terminal.
    """
    t0 = time.perf_counter()
    if executor not in EXECUTORS:
        raise W2SGError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}")
    if gpus_per_extraction is not None and executor != "ray":
        raise W2SGError("--gpus-per-extraction is for --executor ray; the local pool uses the "
                        "machine's GPU in every worker when torch sees one")  # fmt: skip
    if gpus_per_extraction is not None and (
        not math.isfinite(gpus_per_extraction)
        or gpus_per_extraction < 0
        or (gpus_per_extraction > 1 and gpus_per_extraction % 1)
    ):
        raise W2SGError(
            f"--gpus-per-extraction must be a fraction in [0, 1] or a whole number, got "
            f"{gpus_per_extraction:g} (Ray's rule for GPU amounts)"
        )
    if workers is not None and workers < 1:
        raise W2SGError(f"--workers must be >= 1, got {workers}")
    if executor == "ray" and ray_address:
        probe_ray_address(ray_address)  # before the progress bar: an unreachable one is one line
    specs = sweep.expand() if isinstance(sweep, SweepConfig) else list(sweep)
    specs = list({s.config_hash: s for s in specs}.values())
    with ResultStore(store) as db:
        statuses = db.statuses()
        pending = [
            s
            for s in specs
            if statuses.get(s.config_hash) is None
            or (retry_failed and statuses[s.config_hash] == "failed")
        ]
        counts = {"executed": 0, "failed": 0}
        plan = plan_units(pending)
        units_total = len(plan)
        units_done = [0]
        # What is being prepared (the bar names it: e.g. "repr minilm-l6 on rotten_tomatoes").
        current: list[str | None] = [next((u.label for u, _ in plan.values()), None)]
        bar = progress_bar(len(pending), "sweep", "run", enabled=progress, smoothing=0.05)
        refresh = throttled_refresh(bar)

        def postfix() -> dict[str, Any]:
            shown: dict[str, Any] = {"inputs": f"{units_done[0]}/{units_total}"}
            if current[0] is not None:
                shown["preparing"] = current[0]
            shown["failed"] = counts["failed"]
            return shown

        bar.set_postfix(postfix(), refresh=False)

        def on_unit(next_label: str | None) -> None:
            units_done[0] += 1
            current[0] = next_label
            bar.set_postfix(postfix(), refresh=False)
            refresh()

        def on_result(record: dict[str, Any]) -> None:
            db.record(record)
            counts["executed"] += 1
            counts["failed"] += record["status"] == "failed"
            bar.set_postfix(postfix(), refresh=False)
            bar.update(1)

        try:
            if pending and executor == "local":
                with _scratch_folder(Path(store)) as scratch:
                    run_local(
                        pending,
                        on_result,
                        on_unit,
                        workers=workers,
                        run_fn=run_fn,
                        prepare_fn=prepare_fn,
                        scratch=scratch,
                        tick=refresh,
                    )
            elif pending:
                run_ray(
                    pending,
                    on_result,
                    on_unit,
                    workers=workers,
                    address=ray_address,
                    run_fn=run_fn,
                    prepare_fn=prepare_fn,
                    tick=refresh,
                    gpus_per_extraction=gpus_per_extraction,
                    verbose=verbose,
                )
        finally:
            bar.close()
    return SweepSummary(
        total=len(specs),
        executed=counts["executed"],
        skipped=len(specs) - len(pending),
        failed=counts["failed"],
        seconds=time.perf_counter() - t0,
    )


# -- local process pool --------------------------------------------------------------------


@contextlib.contextmanager
def _scratch_folder(store: Path) -> Iterator[Path]:
    """``<store>.inputs/<pid>``: the prepared inputs of this sweep process, removed at the end.

    A sweep killed with SIGKILL cannot clean up, so every sweep first removes the folders of
    sweep processes that no longer run.
    """
    root = store.with_name(store.name + ".inputs")
    if root.is_dir():
        for old in root.iterdir():
            if old.name.isdigit() and not _alive(int(old.name)):
                shutil.rmtree(old, ignore_errors=True)
    folder = root / str(os.getpid())
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()  # only when no other sweep is using it


def _alive(pid: int) -> bool:
    if os.name != "posix":  # signal 0 probes a process only on POSIX (it kills on Windows)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mp_context() -> Any:
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        # Imported once in the fork server, so every worker starts with them loaded.
        ctx.set_forkserver_preload(
            ["numpy", "scipy", "torch", "w2sg.experiments.runner", "w2sg.pipeline"]
        )
    return ctx


@contextlib.contextmanager
def _worker_environment() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in _WORKER_ENV}
    for k, v in _WORKER_ENV.items():
        os.environ.setdefault(k, v)
    try:
        yield
    finally:
        for k, old in saved.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


@contextlib.contextmanager
def _folder(scratch: Path | None) -> Iterator[str]:
    if scratch is not None:
        yield str(scratch)
        return
    with tempfile.TemporaryDirectory(prefix="w2sg-sweep-") as folder:
        yield folder


def _init_worker(sweep_pid: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    # A sweep killed with SIGKILL cannot stop its pool; idle workers would wait forever on the
    # task queue. Each worker leaves once the sweep process is gone.
    if os.name == "posix":
        args = (sweep_pid, os.getppid())
        threading.Thread(target=_exit_with, args=args, daemon=True).start()


def _exit_with(pid: int, parent: int) -> None:
    """Exit once the sweep process ``pid`` is gone or this worker lost its ``parent`` (the fork
    server, which exits with the sweep; checked too in case the sweep's pid is reused)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):  # PermissionError: pid reused by another user
            os._exit(1)


def _array_path(folder: str, unit_key: str, name: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return os.path.join(folder, f"{unit_key}-{digest}.npy")


def _savable(arr: np.ndarray) -> np.ndarray:
    return arr.astype(str) if arr.dtype == object else arr


def _prepare_to_disk(unit: DataUnit, names: list[str], folder: str, prepare_fn: PrepareFn) -> None:
    for name, arr in zip(names, prepare_fn(unit, names), strict=True):
        atomic.save_npy(_array_path(folder, unit.key, name), _savable(arr))


def _run_from_disk(spec_dict: dict[str, Any], paths: dict[str, str], run_fn: RunFn) -> dict:
    inputs = {role: np.load(p, mmap_mode="r", allow_pickle=False) for role, p in paths.items()}
    return execute(spec_dict, inputs, run_fn)


def run_local(
    specs: list[RunSpec],
    on_result: OnResult,
    on_unit: OnUnit | None = None,
    *,
    workers: int | None = None,
    run_fn: RunFn = pipeline_run,
    prepare_fn: PrepareFn = prepare,
    scratch: Path | None = None,
    tick: Tick | None = None,
) -> None:
    """Run ``specs`` on a local process pool; call ``on_result`` with each record as it arrives.

    Prepared inputs are written to ``scratch`` (default: a temporary folder) and removed after.
    """
    plan = plan_units(specs)
    workers = workers or os.cpu_count() or 1
    needs = {s.config_hash: {u.key for u, _ in inputs_of(s).values()} for s in specs}
    by_unit: dict[str, list[RunSpec]] = {key: [] for key in plan}
    for spec in specs:
        for key in needs[spec.config_hash]:
            by_unit[key].append(spec)
    unit_errors: dict[str, str] = {}

    with (
        _folder(scratch) as folder,
        _worker_environment(),
        ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        ) as pool,
    ):
        unit_futures: dict[Future[None], str] = {
            pool.submit(_prepare_to_disk, unit, names, folder, prepare_fn): key
            for key, (unit, names) in plan.items()
        }
        run_futures: dict[Future[dict], RunSpec] = {}
        try:
            while unit_futures or run_futures:
                waiting_on: list[Future[Any]] = [*unit_futures, *run_futures]
                done, _ = wait(waiting_on, timeout=_TICK_S, return_when=FIRST_COMPLETED)
                if tick is not None:
                    tick()
                for fut in done:
                    if fut in unit_futures:
                        key = unit_futures.pop(fut)
                        try:
                            fut.result()
                        except BrokenProcessPool:
                            raise
                        except Exception as exc:
                            unit, _ = plan[key]
                            unit_errors[key] = f"preparing {unit.label} failed: " + describe_error(
                                exc
                            )
                        if on_unit is not None:
                            waiting_units = [plan[k][0].label for k in unit_futures.values()]
                            on_unit(waiting_units[0] if waiting_units else None)
                        for spec in by_unit[key]:
                            waiting = needs[spec.config_hash]
                            waiting.discard(key)
                            if waiting:
                                continue
                            errors = [
                                unit_errors[u.key]
                                for u, _ in inputs_of(spec).values()
                                if u.key in unit_errors
                            ]
                            if errors:
                                on_result(failed_record(spec, errors[0]))
                                continue
                            paths = {
                                role: _array_path(folder, unit.key, name)
                                for role, (unit, name) in inputs_of(spec).items()
                            }
                            run_futures[
                                pool.submit(_run_from_disk, spec.to_dict(), paths, run_fn)
                            ] = spec
                    else:
                        spec = run_futures.pop(fut)
                        try:
                            record = fut.result()
                        except BrokenProcessPool:
                            raise
                        except Exception as exc:  # e.g. run_fn could not be sent to the worker
                            record = failed_record(spec, describe_error(exc))
                        on_result(record)
        except BrokenProcessPool as exc:
            raise W2SGError(
                "a sweep worker process died (out of memory?); finished runs are stored — "
                "re-run the same command to complete the rest, with fewer --workers"
            ) from exc
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


# -- Ray ------------------------------------------------------------------------------------


def _prepare_for_ray(unit: DataUnit, names: list[str], prepare_fn: PrepareFn) -> Any:
    arrays = [_savable(a) for a in prepare_fn(unit, names)]
    return arrays[0] if len(arrays) == 1 else tuple(arrays)


def _execute_for_ray(
    spec_dict: dict[str, Any],
    weak: np.ndarray,
    strong: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    run_fn: RunFn,
    splits: np.ndarray | None = None,
    **more: np.ndarray,
) -> dict:
    """One run on Ray. ``more``: an ensemble's other members by role (``weak_member_1`` …): keyword
    arguments, so that Ray resolves their object references."""
    inputs = dict(zip(ROLES, (weak, strong, labels, ids), strict=True))
    if splits is not None:
        inputs["splits"] = splits
    inputs.update(more)
    return execute(spec_dict, inputs, run_fn)


def run_ray(
    specs: list[RunSpec],
    on_result: OnResult,
    on_unit: OnUnit | None = None,
    *,
    workers: int | None = None,
    address: str | None = None,
    run_fn: RunFn = pipeline_run,
    prepare_fn: PrepareFn = prepare,
    tick: Tick | None = None,
    gpus_per_extraction: float | None = None,
    verbose: bool = False,
) -> None:
    """Run ``specs`` as Ray tasks; call ``on_result`` with each record as it arrives.

    Starts a local Ray cluster with ``workers`` CPUs (default: all cores) unless Ray is already
    initialised or ``address`` names a running cluster. A cluster that this call started is shut
    down when it returns. Extractions by neural models ask for ``gpus_per_extraction`` GPUs
    (default: 1 when the cluster has any), so Ray places them on GPU nodes and sets
    ``CUDA_VISIBLE_DEVICES``; everything else asks for one CPU. A run whose worker process
    dies (a crash, an out-of-memory kill) is recorded as failed, as on the local pool; the
    workers' own output reaches the terminal only with ``verbose``.
    """
    try:
        import ray
    except ImportError as exc:
        raise W2SGError(
            "--executor ray needs Ray: pip install 'ray>=2.9' (or 'w2sg[distributed]'), "
            "or use --executor local"
        ) from exc
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.ERROR,
            "configure_logging": True,
            "log_to_driver": verbose,
        }
        if address:
            probe_ray_address(address)
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers or os.cpu_count() or 1
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise W2SGError(
                f"cannot start or join a Ray cluster ({str(exc).splitlines()[0]}); check "
                "--ray-address (use 'auto' for a cluster started with `ray start --head`)"
            ) from exc
    try:
        # A task runs on one node: compare with the largest node's GPUs, not the cluster total.
        node_gpus = max(
            (float(node["Resources"].get("GPU", 0.0)) for node in ray.nodes() if node["Alive"]),
            default=0.0,
        )
        gpus = gpus_per_extraction
        if gpus is None:
            gpus = 1.0 if node_gpus >= 1 else 0.0
        elif gpus > node_gpus:
            raise W2SGError(
                f"--gpus-per-extraction {gpus:g} but the largest Ray node has {node_gpus:g} GPUs; "
                "lower it, or 0 to extract on CPUs"
            )
        plan = plan_units(specs)
        prep: Any = ray.remote(_prepare_for_ray)
        run: Any = ray.remote(_execute_for_ray)
        unit_refs: dict[str, dict[str, Any]] = {}
        prep_refs: list[Any] = []
        labels: dict[Any, str] = {}
        for key, (unit, names) in plan.items():
            options: dict[str, Any] = {"num_returns": len(names), "max_retries": 0}
            if gpus and uses_gpu(unit):
                options["num_gpus"] = gpus
            refs = prep.options(**options).remote(unit, names, prepare_fn)
            refs = [refs] if len(names) == 1 else list(refs)
            unit_refs[key] = dict(zip(names, refs, strict=True))
            prep_refs.append(refs[0])
            labels[refs[0]] = unit.label
        run_refs: dict[Any, RunSpec] = {}
        for spec in specs:
            args = {
                role: unit_refs[unit.key][name] for role, (unit, name) in inputs_of(spec).items()
            }
            extra = {r: args[r] for r in args if r not in (*ROLES, "splits")}
            ref = run.options(max_retries=0, **run_resources(spec)).remote(
                spec.to_dict(), *(args[r] for r in ROLES), run_fn, splits=args.get("splits"),
                **extra,
            )  # fmt: skip
            run_refs[ref] = spec
        while run_refs or prep_refs:
            ready, _ = ray.wait([*prep_refs, *run_refs], num_returns=1, timeout=_TICK_S)
            if tick is not None:
                tick()
            for ref in ready:
                if ref in run_refs:
                    spec = run_refs.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:  # a unit of this run failed
                        cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                        record = failed_record(spec, "preparing inputs failed: " + _short(cause))
                    except ray.exceptions.RayError as exc:  # its worker process died
                        record = failed_record(spec, _crash(exc))
                    on_result(record)
                else:
                    prep_refs.remove(ref)
                    if on_unit is not None:
                        on_unit(labels[prep_refs[0]] if prep_refs else None)
    finally:
        if started_here:
            ray.shutdown()


def probe_ray_address(address: str, timeout: float = 5.0) -> None:
    """Refuse, in one line and within ``timeout`` seconds, a ``host:port`` (or ``ray://``) cluster
    address where nothing listens: ``ray.init`` would otherwise retry for minutes, printing
    warnings. ``auto`` and ``local`` are left to Ray."""
    import socket

    if address in ("auto", "local"):
        return
    text = address.removeprefix("ray://")
    host, _, port_text = text.rpartition(":")
    if not host:
        host, port_text = text, ("10001" if address.startswith("ray://") else "6379")
    try:
        port = int(port_text)
    except ValueError:
        raise W2SGError(f"--ray-address {address!r} is not host:port (or 'auto')") from None
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise W2SGError(
            f"cannot reach a Ray cluster at {address} ({why}); start one with `ray start --head` "
            "and pass its address, 'auto', or leave --ray-address out for a local cluster"
        ) from None


def _crash(exc: BaseException) -> str:
    """The error of a run whose Ray worker died, in one line (Ray's messages run to pages)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    first = lines[0][:300] if lines else ""
    return (
        f"the Ray worker running this run died ({type(exc).__name__}: {first}); "
        "out of memory? re-run with --retry-failed"
    )


def run_resources(spec: RunSpec) -> dict[str, Any]:
    """Ray resources of one run: a fine-tuning run on ``device: cuda`` asks for one GPU (it
    trains on it); every other run takes Ray's default of one CPU.

    Unverified here: no GPU was available where this was written (docs/status.md)."""
    config = spec.config
    finetunes = config.train != "probe" or config.weak_train != "probe"
    if finetunes and config.finetune.device == "cuda":
        return {"num_gpus": 1}
    return {}


def _short(exc: BaseException) -> str:
    if isinstance(exc, W2SGError):
        return str(exc)
    return describe_error(exc)
