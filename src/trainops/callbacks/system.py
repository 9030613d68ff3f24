"""System metrics per epoch: CPU and memory of the training process and the machine, and GPU use when NVML sees
one (``TrainingCallbacks(system_metrics=True)``; needs ``trainops[system]``).

>>> monitor = SystemMonitor.start()  # doctest: +SKIP
>>> monitor.sample()  # doctest: +SKIP
{'cpu_percent': 97.5, 'system_cpu_percent': 51.2, 'memory_rss_mb': 812.4, 'system_memory_percent': 38.1}
"""

from __future__ import annotations

import logging
from typing import Any

from trainops.errors import MissingExtraError

logger = logging.getLogger("trainops.callbacks")

_MB = 1024 * 1024


class SystemMonitor:
    """Samples the process and the machine. CPU percentages cover the time since the previous sample (the first
    covers the time since :meth:`start`), so one sample per epoch is the epoch's average.

    ``cpu_percent`` is the training process's CPU time in percent of one core (400 on four busy cores), as ``top``
    shows it; ``system_cpu_percent`` the whole machine's, in percent of all cores.
    """

    def __init__(self, psutil: Any, nvml: Any | None) -> None:
        self._psutil = psutil
        self._process = psutil.Process()
        self._nvml: Any = nvml
        self._gpus = (
            [nvml.nvmlDeviceGetHandleByIndex(index) for index in range(nvml.nvmlDeviceGetCount())] if nvml else []
        )
        # the first call of each counter starts its interval
        self._process.cpu_percent(None)
        psutil.cpu_percent(None)

    @classmethod
    def start(cls) -> SystemMonitor:
        """A monitor from now on.

        Raises:
            MissingExtraError: psutil is not installed (``pip install 'trainops[system]'``).
        """
        try:
            import psutil
        except ImportError:
            raise MissingExtraError(
                "system metrics need psutil, which is not installed here; install it with: "
                "pip install 'trainops[system]'",
                details={"extra": "system", "install": "pip install 'trainops[system]'"},
            ) from None
        return cls(psutil, _nvml())

    def sample(self) -> dict[str, float]:
        """CPU and memory now (and each GPU's utilisation and memory), as metric values."""
        memory = self._process.memory_info()
        values = {
            "cpu_percent": float(self._process.cpu_percent(None)),
            "system_cpu_percent": float(self._psutil.cpu_percent(None)),
            "memory_rss_mb": round(memory.rss / _MB, 1),
            "system_memory_percent": float(self._psutil.virtual_memory().percent),
        }
        for index, handle in enumerate(self._gpus):
            prefix = "gpu" if len(self._gpus) == 1 else f"gpu{index}"
            try:
                utilisation = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                used = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception as error:  # a GPU that stopped answering must not stop the sampling
                logger.debug("NVML sample of GPU %d failed: %s", index, error)
                continue
            values[f"{prefix}_utilization_percent"] = float(utilisation.gpu)
            values[f"{prefix}_memory_used_mb"] = round(used.used / _MB, 1)
            values[f"{prefix}_memory_percent"] = round(100.0 * used.used / used.total, 1) if used.total else 0.0
        return values


def _nvml() -> Any | None:
    """NVML when ``nvidia-ml-py`` is installed and a driver answers; ``None`` on machines without a GPU."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU
        return None
    return pynvml
