"""RayExecutor: each training a Ray **job** on a cluster, reporting over HTTP to this server.

A job, not a task: a task belongs to the driver that submitted it and would die with the API process, while a
job is owned by the cluster and outlives a server restart. The job's submission id is the operation id, so any
server of the deployment (or ``ray job status op_training_...``) finds it.

The job runs ``python -m trainops.executors.worker OPERATION_ID`` with the cluster's interpreter: the first
``python`` on the node's ``PATH``, in the job's ``runtime_env``, so the nodes need ``trainops[train]`` installed
(or ``TRAINOPS_RAY_RUNTIME_ENV`` saying how: ``{"pip": [...]}``, ``{"py_executable": ...}``, a container image).
The worker reaches this server at ``TRAINOPS_PUBLIC_URL`` with the server's API token: both go into the job's
``runtime_env.env_vars``, never on its command line (which every ``ps`` on the node shows). Mind that Ray shows a
job's runtime_env to whoever can read its dashboard; on a cluster whose dashboard others can reach, give the
trainops server a token of its own.

Ray's own authentication (token auth, on by default for clusters that Ray 2.60 starts): the executor sends the
token Ray's tools would (``RAY_AUTH_TOKEN``, the file at ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trainops import extras
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import ConfigurationError, ServiceUnavailableError, TrainOpsError, sentence
from trainops.executors.local import ask_cancel, mark_cancelled
from trainops.executors.remote import remote_worker_environment, worker_entrypoint
from trainops.schemas.operations import ExecutorJob, JobState
from trainops.schemas.training import Resources
from trainops.service.operations import OperationsService
from trainops.settings import Settings

if TYPE_CHECKING:
    from ray.job_submission import JobDetails, JobSubmissionClient

logger = logging.getLogger("trainops.executors")

ENDED: frozenset[JobState] = frozenset({"STOPPED", "SUCCEEDED", "FAILED"})
DEFAULT_CPUS = 1.0
"""CPUs a job asks for when the request says nothing: Ray's default for an entrypoint is none, which lets any
number of trainings pile onto one node (the head, usually)."""
VIEW_SECONDS = 2.0
"""How long a job's state read from Ray answers ``GET /operations/{id}``: pollers must not each cost a request
to the cluster."""
REQUEST_SECONDS = 30.0
"""The longest one request to the cluster's job server may take (Ray's own client has no limit)."""
VIEW_REQUEST_SECONDS = 5.0
"""The longest a read for ``GET /operations/{id}`` may take: a poller waits for it, for a view only."""
RETRY_VIEW_SECONDS = 15.0
"""After a read for a view found the cluster silent, how long views answer the last state Ray told without
asking it again: a hung dashboard must not cost every poller a timeout."""
SUBMIT_SECONDS = 60.0
"""How long a Ray operation may go without its job recorded (``ray_job_id``) before the reaper asks the cluster
whether it ever got it: it is recorded right after a submission, which takes well under a second."""
REPORTING_SECONDS = 60.0
"""How long a job the cluster no longer knows is spared while its worker still reports: a head restarted without
fault tolerance forgets its jobs, yet their worker processes may live on and finish their trainings."""
STOP_WAIT_SECONDS = 15.0
"""How long a stopped job gets to end: Ray sends SIGTERM, then SIGKILL after ``RAY_JOB_STOP_WAIT_TIME_S`` (3 s)."""


class RayExecutor:
    """Submits training operations as Ray jobs to the cluster at ``settings.ray_address``.

    Args:
        service: Where operations live (to record the job, and to end operations whose job was stopped).
        settings: ``ray_address``, ``public_url``, ``api_token`` and ``ray_runtime_env``.

    Raises:
        MissingExtraError: the ``ray`` extra is not installed.
        ConfigurationError: an address is missing, the cluster cannot be reached, or refuses this server's token.
    """

    name = "ray"

    def __init__(self, service: OperationsService, settings: Settings) -> None:
        extras.require("ray", "the Ray executor (TRAINOPS_EXECUTOR=ray)")
        if not settings.ray_address:
            raise ConfigurationError(
                "TRAINOPS_EXECUTOR=ray needs TRAINOPS_RAY_ADDRESS: the Ray cluster's job-submission address, "
                "e.g. http://127.0.0.1:8265 (the head's dashboard port)"
            )
        if not settings.public_url:
            raise ConfigurationError(
                "TRAINOPS_EXECUTOR=ray needs TRAINOPS_PUBLIC_URL: the URL at which Ray's nodes reach this server, "
                "e.g. http://10.0.0.5:8000 (the address the server binds is not one a node can dial)"
            )
        self.service = service
        self.settings = settings
        self.address = settings.ray_address
        from ray.exceptions import RayError

        # what a request to the cluster raises when it does not answer, or refuses (Ray's AuthenticationError)
        self._errors: tuple[type[Exception], ...] = (OSError, RuntimeError, ValueError, RayError)
        self._client = _connect(settings.ray_address, REQUEST_SECONDS)
        self._reader = _connect(settings.ray_address, VIEW_REQUEST_SECONDS)
        self._views: dict[str, tuple[float, ExecutorJob | None]] = {}
        self._reading: set[str] = set()
        """Jobs whose state a view is reading now: another view of the job answers the last state meanwhile."""
        self._silent_until = 0.0
        """Until when (monotonic) views do not ask the cluster, which did not answer the last one."""
        self._lock = threading.Lock()
        self._closed = False

    # -- the protocol ---------------------------------------------------------------------------------------

    def check(self, resources: Resources | None) -> None:
        """Nothing is refused up front: a cluster may grow (autoscaling); a job waits, PENDING, for its resources."""

    def submit(self, operation_id: str, resources: Resources | None = None) -> None:
        """Submit the operation as a Ray job (submission id = operation id) and record it on the operation.

        Raises:
            ServiceUnavailableError: the cluster did not take the job (unreachable, or it refused it).
        """
        if self._closed:
            raise ServiceUnavailableError("the server is shutting down; start the training again once it is back")
        cpus = resources.cpus if resources and resources.cpus is not None else DEFAULT_CPUS
        gpus = resources.gpus if resources else None
        try:
            self._client.submit_job(
                entrypoint=worker_entrypoint(operation_id),
                submission_id=operation_id,
                runtime_env=self.runtime_env(),
                entrypoint_num_cpus=cpus,
                entrypoint_num_gpus=gpus or None,
                metadata={"trainops_operation": operation_id},
            )
        except self._errors as error:
            raise ServiceUnavailableError(
                f"the Ray cluster at {self.address} did not take the training {operation_id}: {error}",
                details={"ray_address": self.address},
            ) from None
        self.service.update_metadata(operation_id, {"ray_job_id": operation_id, "ray_address": self.address})

    def cancel(self, operation_id: str, reason: str) -> bool:
        """``stop_job`` (SIGTERM, then SIGKILL to the job's process group), wait for a running job to end, and
        mark the operation cancelled.

        Ray cannot stop a job that is still waiting for resources: the stop is queued and takes effect the moment
        the job is scheduled (and its worker, finding the operation cancelled, would not train anyway).
        """
        ask_cancel(self.service, operation_id, reason)
        try:
            job = self._job(operation_id)
            stoppable = job is not None and _state(job) not in ENDED
            stopped = stoppable and bool(self._client.stop_job(operation_id))
        except self._errors as error:
            logger.warning("could not stop the Ray job %s: %s", operation_id, error)
            return False
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while stopped and job is not None and _state(job) == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                job = self._job(operation_id)
            except self._errors:
                break
        self._forget(operation_id)
        mark_cancelled(self.service, operation_id, reason, f"its Ray job was stopped ({self.address})")
        return stopped

    def view(self, operation_id: str) -> ExecutorJob | None:
        """The job's state as Ray reports it, read at most every :data:`VIEW_SECONDS` per job, by one request at
        a time, and waited for at most :data:`VIEW_REQUEST_SECONDS`.

        When the cluster does not answer, the last state it told (``read_at`` says when) answers the views of the
        next :data:`RETRY_VIEW_SECONDS` without asking it again.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._views.get(operation_id)
            last = cached[1] if cached is not None else None
            if cached is not None and (now - cached[0] < VIEW_SECONDS or (last is not None and last.status in ENDED)):
                return last  # an ended job does not change
            if now < self._silent_until or operation_id in self._reading:
                return last
            self._reading.add(operation_id)
        try:
            job = self._job(operation_id, self._reader)
        except self._errors as error:
            logger.warning("could not read the Ray job %s: %s", operation_id, error)
            with self._lock:
                self._silent_until = time.monotonic() + RETRY_VIEW_SECONDS
            return last
        finally:
            with self._lock:
                self._reading.discard(operation_id)
        view = _view(job) if job is not None else None
        with self._lock:
            if len(self._views) > 10_000:
                self._views.clear()
            self._views[operation_id] = (now, view)
        return view

    def lost(self, operations: Sequence[Operation]) -> dict[str, str]:
        """Active Ray operations whose job ended (failed, stopped, or exited) without ending them, or that the
        cluster no longer knows while its worker is silent; an unreachable cluster loses nothing.

        Reading the jobs, it also records on each running operation the Ray node its job runs on
        (``metadata.ray_node_id``): Ray tells the job's entrypoint nothing of it, so the worker cannot.
        """
        lost: dict[str, str] = {}
        now = datetime.now(UTC)
        for operation in operations:
            recorded = operation.metadata.model_extra or {}
            if (
                operation.metadata.executor != self.name
                or recorded.get("ray_address", self.address) != self.address  # another cluster's job
                or (not recorded.get("ray_job_id") and (now - operation.created_at).total_seconds() < SUBMIT_SECONDS)
            ):
                continue
            try:
                job = self._job(operation.operation_id)
            except self._errors as error:
                logger.warning("the Ray cluster at %s did not answer: %s", self.address, error)
                return lost  # it is the cluster that is gone, for now: nothing is known of any job
            self._forget(operation.operation_id)
            if job is not None and job.driver_node_id and not recorded.get("ray_node_id"):
                self._record_node(operation.operation_id, job.driver_node_id)
            if job is None and not recorded.get("ray_job_id"):
                lost[operation.operation_id] = (
                    f"the training never reached the Ray cluster at {self.address} (the server stopped while "
                    "submitting it); start it again"
                )
            elif job is None and (silence := _silent_for(operation, now)) < REPORTING_SECONDS:
                continue  # forgotten by a restarted head, but its worker still reports: it ends the run itself
            elif job is None:
                lost[operation.operation_id] = (
                    f"the Ray cluster at {self.address} no longer knows the job {operation.operation_id} "
                    f"(the cluster was restarted, or the job deleted) and {_heard(silence)}; start the training again"
                )
            elif _state(job) in ENDED:
                lost[operation.operation_id] = _ended_reason(job, operation)
        return lost

    def shutdown(self) -> None:
        """Stop submitting. Submitted jobs go on: they belong to the cluster and report to the API."""
        self._closed = True

    # -- helpers --------------------------------------------------------------------------------------------

    def runtime_env(self) -> dict[str, Any]:
        """The job's runtime_env: ``TRAINOPS_RAY_RUNTIME_ENV`` with where and how to report added to its
        ``env_vars`` (the worker's only settings; it needs no database and no shared disk)."""
        runtime_env = copy.deepcopy(self.settings.ray_runtime_env)
        env_vars = {str(key): str(value) for key, value in (runtime_env.get("env_vars") or {}).items()}
        env_vars.update(remote_worker_environment(str(self.settings.public_url), self.settings.api_token))
        runtime_env["env_vars"] = env_vars
        return runtime_env

    def _job(self, operation_id: str, client: JobSubmissionClient | None = None) -> JobDetails | None:
        """The job's details, ``None`` when the cluster has no such job.

        Raises:
            OSError, RuntimeError: the cluster did not answer.
        """
        try:
            return (client or self._client).get_job_info(operation_id)
        except RuntimeError as error:
            if "status code 404" in str(error):
                return None
            raise

    def _record_node(self, operation_id: str, node_id: str) -> None:
        try:
            self.service.update_metadata(operation_id, {"ray_node_id": node_id})
        except TrainOpsError as error:
            logger.warning("could not record the Ray node of %s: %s", operation_id, error.message)

    def _forget(self, operation_id: str) -> None:
        with self._lock:
            self._views.pop(operation_id, None)


def _connect(address: str, timeout: float) -> JobSubmissionClient:
    from ray.exceptions import AuthenticationError as RayAuthenticationError
    from ray.job_submission import JobSubmissionClient

    class Client(JobSubmissionClient):
        """Ray's client with a timeout on every request: its own waits forever on a dashboard that hangs, which
        would hold a server thread (a GET /operations/{id}, the reaper) as long."""

        def _do_request(self, method: str, endpoint: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return super()._do_request(method, endpoint, **kwargs)

    try:
        return Client(address, headers=_ray_auth_headers())
    except RayAuthenticationError as error:
        raise ConfigurationError(
            f"the Ray cluster at {address} (TRAINOPS_RAY_ADDRESS) refused this server: {sentence(str(error))} Give "
            "the server the cluster's token as Ray's tools take it: RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH (`ray "
            "get-auth-token` on the head prints it)"
        ) from None
    except (OSError, RuntimeError, ValueError) as error:
        raise ConfigurationError(
            f"cannot reach the Ray cluster at {address} (TRAINOPS_RAY_ADDRESS): {sentence(str(error))} Is the head "
            "running (`ray start --head --dashboard-host 0.0.0.0`), and is this its dashboard address (port 8265 by "
            "default)?"
        ) from None


def _ray_auth_headers() -> dict[str, str]:
    """The ``Authorization`` header Ray's own tools would send, when a token is found the way they find it,
    whether or not ``RAY_AUTH_MODE`` is set in this process."""
    try:
        from ray._raylet import AuthenticationTokenLoader  # type: ignore[attr-defined]
    except ImportError:  # a Ray without token authentication
        return {}
    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()  # read the environment as it is now
    try:
        headers: dict[str, str] = loader.get_token_for_http_header(ignore_auth_mode=True)
    except Exception as error:  # Ray's AuthenticationError: a token file that cannot be read
        raise ConfigurationError(f"cannot read the Ray authentication token: {error}") from None
    return dict(headers)


def _view(job: JobDetails) -> ExecutorJob:
    return ExecutorJob(
        read_at=datetime.now(UTC),
        executor="ray",
        job_id=job.submission_id or job.job_id or "",
        status=_state(job),
        message=job.message,
        start_time=_moment(job.start_time),
        end_time=_moment(job.end_time),
        exit_code=job.driver_exit_code,
    )


def _silent_for(operation: Operation, now: datetime) -> float:
    """Seconds since the operation's worker last wrote anything (an epoch, progress, a heartbeat) or started;
    forever for one that never did."""
    heard = operation.last_heard_at
    return (now - heard).total_seconds() if heard is not None else float("inf")


def _heard(silence: float) -> str:
    if silence == float("inf"):
        return "its worker never reported"
    return f"nothing was heard from its worker for {silence:.0f} s"


def _state(job: JobDetails) -> str:
    status = job.status
    return str(getattr(status, "value", status))


def _moment(milliseconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(milliseconds / 1000, UTC) if milliseconds else None


def _ended_reason(job: JobDetails, operation: Operation) -> str:
    status = _state(job)
    said = f": {job.message.strip()}" if job.message and job.message.strip() else ""
    code = f" (exit code {job.driver_exit_code})" if job.driver_exit_code is not None else ""
    before = "before its worker reported anything" if operation.status is OperationStatus.PENDING else "mid-training"
    if status == "SUCCEEDED":
        return f"the Ray job {job.submission_id} ended{code} without ending the training; see `ray job logs`"
    return f"the Ray job {job.submission_id} ended {status} {before}{code}{said}"
