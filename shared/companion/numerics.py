"""The pinned numerical environment: the same native code paths on every x86-64 CPU.

Floating-point results depend on which SIMD kernels a library picks at run time (AVX-512 vs AVX2 vs SSE),
on how many threads split a reduction, and on the order in which a convolution library accumulates.
Every kernel this project starts (the runner's, nbval's, the ``Python 3 (companion)`` kernel a user picks in
JupyterLab) gets :data:`PINNED_ENV` in its environment *before* torch and numpy load, because the libraries
read these variables once, at load time:

``ATEN_CPU_CAPABILITY=avx2``
    torch's own vectorised kernels (elementwise ops, reductions, softmax) use their AVX2 variant even on an
    AVX-512 CPU.
``MKL_CBWR=AVX2,STRICT``
    MKL's conditional numerical reproducibility: GEMMs take the AVX2 branch, in strict mode (bit-identical
    across CPUs that support the branch, also for unaligned data).
``ONEDNN_MAX_CPU_ISA=AVX2``
    oneDNN (mkldnn) kernels no wider than AVX2; :func:`companion.repro.setup` also turns torch's mkldnn
    convolutions off (``torch.backends.mkldnn.enabled = False``), so convolutions run on ATen's im2col + MKL
    GEMM path, which the two settings above pin.
``OPENBLAS_CORETYPE=Haswell``
    numpy's and scipy's OpenBLAS use their AVX2 (Haswell) kernels.
``NPY_DISABLE_CPU_FEATURES``
    numpy's own dispatched loops (``exp``, ``log``, sorting, ...) skip their AVX-512 variants.
``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` ``=1``
    one thread, so that no reduction is split differently on a machine with more cores (and notebooks run side
    by side without oversubscribing the CPU).

What this cannot pin: results on another architecture (ARM, Apple silicon), on x86 CPUs without AVX2 (where
the libraries fall back to their SSE paths), on GPUs, and under other library versions (the pins in
``requirements.txt`` are part of the environment). :func:`probe` measures what each setting changes on the
machine at hand and what it costs in speed (``companion bench --numerics``).

This module imports neither torch nor numpy at module level: it must be usable before they load.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import time
import warnings
from functools import lru_cache
from typing import Any

# numpy names of the dispatched AVX-512 targets (numpy 2.x); disabling one the machine lacks is harmless.
_NUMPY_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"

PINNED_ENV: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": _NUMPY_AVX512,
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}
"""The environment every notebook kernel starts with (see the module docstring)."""

PINNED_CAPABILITY = PINNED_ENV["ATEN_CPU_CAPABILITY"]

STAND_INS: dict[str, dict[str, str | None]] = {
    # An x86-64 CPU without AVX2: every library on its SSE/AVX path (None: variable unset).
    "no-avx2": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "COMPATIBLE,STRICT",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "OPENBLAS_CORETYPE": "Sandybridge",
        "NPY_DISABLE_CPU_FEATURES": f"X86_V3 {_NUMPY_AVX512}",
    },
    # An AVX-512 CPU with nothing pinned but the thread count: every library on its widest path.
    "avx512-unpinned": {
        "ATEN_CPU_CAPABILITY": None,
        "MKL_CBWR": None,
        "ONEDNN_MAX_CPU_ISA": None,
        "OPENBLAS_CORETYPE": None,
        "NPY_DISABLE_CPU_FEATURES": None,
    },
}
"""Environments that stand in for another CPU on this one: ``COMPANION_STAND_IN=<name>`` makes the runner and the
tests start their kernels with it instead of the pin (``make test`` then checks what a second machine would)."""


def kernel_numerics() -> dict[str, str | None]:
    """The numerical environment kernels start with: :data:`PINNED_ENV`, or the stand-in named by
    ``$COMPANION_STAND_IN`` applied on top of it (``None`` values: unset the variable)."""
    name = os.environ.get("COMPANION_STAND_IN", "")
    if not name:
        return dict(PINNED_ENV)
    if name not in STAND_INS:
        raise ValueError(f"unknown COMPANION_STAND_IN {name!r}; accepted: {', '.join(STAND_INS)}")
    return {**PINNED_ENV, **STAND_INS[name]}


def apply(changes: dict[str, str | None], env: dict[str, str] | None = None) -> dict[str, str]:
    """Set (or, for ``None``, remove) ``changes`` in ``env`` (default: ``os.environ``, in place); returns it."""
    env = os.environ if env is None else env
    for k, v in changes.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def unpinned_variables(env: dict[str, str] | None = None) -> list[str]:
    """Names of :data:`PINNED_ENV` whose value in ``env`` (default: ``os.environ``) differs from the pin."""
    env = os.environ if env is None else env
    return [k for k, v in PINNED_ENV.items() if env.get(k) != v]


# -- describing the machine ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if ":" in line:
                    k, v = (s.strip() for s in line.split(":", 1))
                    info.setdefault(k, v)
                if not line.strip() and info:
                    break
    except OSError:
        pass
    return info


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def native_capability() -> str:
    """The widest ATen CPU capability this CPU supports: ``avx512``, ``avx2`` or ``default`` (from the CPU flags,
    using torch's own criteria: AVX-512 F/BW/VL/DQ for ``avx512``, AVX2 + FMA for ``avx2``)."""
    flags = set(_cpuinfo().get("flags", "").split())
    if not flags:
        return "unknown"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "avx512"
    if {"avx2", "fma"} <= flags:
        return "avx2"
    return "default"


def _mkl_version(config: str) -> str | None:
    match = re.search(r"Math Kernel Library Version ([0-9.]+)", config)
    return match.group(1) if match else None


def environment_report() -> dict[str, Any]:
    """What a notebook's numbers depend on: CPU model, native and active capability, library versions and the
    pinned variables as this process sees them (recorded in every executed notebook's provenance)."""
    report: dict[str, Any] = {
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cores_visible": os.cpu_count(),
        "native_capability": native_capability(),
        "pinned_capability": PINNED_CAPABILITY,
        "python": platform.python_version(),
    }
    if "torch" in sys.modules or _importable("torch"):
        import torch

        device = (
            f"cuda: {torch.cuda.get_device_name(0)}"
            if torch.cuda.is_available()
            else f"cpu: {cpu_model()}, {os.cpu_count()} cores visible"
        )
        report.update(
            device=device,
            torch=torch.__version__,
            active_capability=torch.backends.cpu.get_cpu_capability().lower(),
            mkl=_mkl_version(torch.__config__.show()),
            mkldnn_enabled=bool(torch.backends.mkldnn.enabled),
            torch_threads=torch.get_num_threads(),
        )
    import numpy

    report["numpy"] = numpy.__version__
    report["environment"] = {k: os.environ.get(k) for k in PINNED_ENV}
    report["pinned"] = not unpinned_variables()
    return report


def _importable(name: str) -> bool:
    from importlib.util import find_spec

    return find_spec(name) is not None


def warn_if_unpinned() -> bool:
    """Warn in one line when this process runs without the pinned environment; True when it is pinned.

    The variables only take effect when set before torch and numpy load, so they are checked in
    ``os.environ`` and, for torch, against the capability it actually uses."""
    missing = unpinned_variables()
    problems = [f"{', '.join(missing)} not as pinned"] if missing else []
    if "torch" in sys.modules:
        import torch

        active = torch.backends.cpu.get_cpu_capability().lower()
        native = native_capability()
        # torch never goes above what the CPU has: on an AVX-only machine 'default' is the pinned path.
        expected = PINNED_CAPABILITY if native in ("avx2", "avx512") else "default"
        if active != expected:
            problems.append(f"torch uses {active} (pinned: {expected})")
    if problems:
        warnings.warn(
            f"not the pinned numerical environment ({'; '.join(problems)}): numbers may differ from "
            "the book's; use the 'Python 3 (companion)' kernel or `companion run`",
            RuntimeWarning,
            stacklevel=3,
        )
        return False
    return True


# -- the kernel spec -------------------------------------------------------------------------------

KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (companion)"


def install_kernel(prefix: str | None = None) -> str:
    """Install this interpreter's Jupyter kernel spec ``python3`` into ``prefix`` (default: ``sys.prefix``)
    with :data:`PINNED_ENV` as its ``env``, so a kernel picked in JupyterLab runs pinned too. Returns its folder."""
    from ipykernel.kernelspec import install

    return install(
        prefix=prefix or sys.prefix, kernel_name=KERNEL_NAME, display_name=KERNEL_DISPLAY_NAME, env=dict(PINNED_ENV)
    )


# -- the probe -------------------------------------------------------------------------------------


def _digest(*arrays) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        h.update(a.tobytes())
    return h.hexdigest()[:12]


def _workloads() -> dict[str, Any]:
    """Small stand-ins for what the notebooks compute; each returns (digest, seconds)."""
    import numpy as np
    import torch
    from torch import nn

    def timed(fn):
        def run():
            start = time.perf_counter()
            out = fn()
            return out, time.perf_counter() - start

        return run

    def train(model, x, y, steps):
        torch.manual_seed(0)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for i in range(steps):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[i % len(x)]), y[i % len(y)]).backward()
            opt.step()
        return _digest(*(p.detach().numpy() for p in model.parameters()))

    def mlp():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
        g = torch.Generator().manual_seed(1)
        return train(model, torch.randn(8, 128, 64, generator=g), torch.randint(0, 10, (8, 128), generator=g), 200)

    def cnn():
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(32, 10),
        )
        g = torch.Generator().manual_seed(1)
        return train(model, torch.randn(4, 64, 1, 8, 8, generator=g), torch.randint(0, 10, (4, 64), generator=g), 40)

    def torch_elementwise():
        g = torch.Generator().manual_seed(2)
        x = torch.randn(200_000, generator=g)
        out = torch.stack(
            [
                x.exp(),
                x.tanh(),
                x.sigmoid(),
                torch.softmax(x.view(-1, 100), 1).view(-1),
                x.sin(),
                torch.log1p(x.abs()),
                x.cumsum(0),
            ]
        )
        return _digest(out.numpy(), x.view(-1, 1000).sum(1).numpy(), x.norm().reshape(1).numpy())

    def numpy_ops():
        rng = np.random.default_rng(3)
        a, b = rng.standard_normal((300, 300)), rng.standard_normal(300)
        x = rng.standard_normal(200_000)
        return _digest(
            a @ a,
            np.linalg.solve(a, b),
            np.exp(x),
            np.log1p(np.abs(x)),
            np.sin(x),
            np.tanh(x),
            np.sum(x).reshape(1),
            np.cumsum(x),
        )

    return {
        name: timed(fn)
        for name, fn in (
            ("mlp_sgd", mlp),
            ("cnn_bn_sgd", cnn),
            ("torch_elementwise", torch_elementwise),
            ("numpy", numpy_ops),
        )
    }


def fingerprint(mkldnn: bool | None = None) -> dict[str, Any]:
    """Digests and timings of the probe workloads in this process (``mkldnn`` False: as repro.setup does)."""
    import torch

    torch.set_num_threads(1)
    if mkldnn is not None:
        torch.backends.mkldnn.enabled = mkldnn
    out: dict[str, Any] = {"capability": torch.backends.cpu.get_cpu_capability().lower()}
    for name, run in _workloads().items():
        digest, seconds = run()
        out[name] = {"digest": digest, "seconds": round(seconds, 3)}
    return out


def probe_variants() -> dict[str, tuple[dict[str, str | None], bool]]:
    """Environments to compare: the pin, then one setting at a time changed to what another CPU (or no pin)
    would give. Values: (environment changes on top of the pin as for :func:`apply`, ``None`` unsets; whether
    mkldnn convolutions are on)."""
    native = native_capability()
    variants: dict[str, tuple[dict[str, str | None], bool]] = {"pinned": ({}, False)}
    for cap in ("default", "avx512") if native == "avx512" else ("default",):
        variants[f"ATEN_CPU_CAPABILITY={cap}"] = ({"ATEN_CPU_CAPABILITY": cap}, False)
    for branch in ("COMPATIBLE", "AVX", "AVX512") if native == "avx512" else ("COMPATIBLE", "AVX"):
        variants[f"MKL_CBWR={branch},STRICT"] = ({"MKL_CBWR": f"{branch},STRICT"}, False)
    variants["MKL_CBWR unset"] = ({"MKL_CBWR": None}, False)
    variants["mkldnn convolutions on"] = ({}, True)
    variants["mkldnn on, ONEDNN_MAX_CPU_ISA unset"] = ({"ONEDNN_MAX_CPU_ISA": None}, True)
    variants["OPENBLAS_CORETYPE unset"] = ({"OPENBLAS_CORETYPE": None}, False)
    variants["OPENBLAS_CORETYPE=Sandybridge"] = ({"OPENBLAS_CORETYPE": "Sandybridge"}, False)
    variants["numpy with AVX-512"] = ({"NPY_DISABLE_CPU_FEATURES": None}, False)
    variants["nothing pinned"] = ({k: None for k in PINNED_ENV if not k.endswith("_THREADS")}, True)
    return variants


def probe() -> list[dict[str, Any]]:
    """Run :func:`fingerprint` in a fresh interpreter per :func:`probe_variants` entry and compare each with the
    pinned run: which workloads change bits, and how much slower or faster they are."""
    rows, reference = [], None
    for name, (changes, mkldnn) in probe_variants().items():
        env = apply(changes, {**os.environ, **PINNED_ENV})
        code = f"import json, companion.numerics as n; print(json.dumps(n.fingerprint(mkldnn={mkldnn!r})))"
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            rows.append({"variant": name, "error": out.stderr.strip().splitlines()[-1:]})
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        reference = reference or result
        row: dict[str, Any] = {"variant": name, "capability": result["capability"]}
        for key, value in result.items():
            if isinstance(value, dict):
                row[key] = (
                    "same" if value["digest"] == reference[key]["digest"] else "DIFFERS"
                ) + f" {value['seconds']:.2f}s"
        rows.append(row)
    return rows
