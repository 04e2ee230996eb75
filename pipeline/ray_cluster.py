"""Where the tune stage's Ray runs: a local Ray of its own, or a running cluster; and its storage.

Joining a cluster follows Ray's own token rules. A head started with ``ray start --head`` enables
token authentication whenever it finds a token (Ray >= 2.59), but a driver given an explicit
address (``tune.address`` or ``RAY_ADDRESS``) does not turn it on by itself: the stage does what
Ray does for ``address="auto"``, enabling token mode when Ray finds a token where it looks for one
(``RAY_AUTH_TOKEN``, the file named by ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``), unless
``RAY_AUTH_MODE`` is set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import ray

from hrnet.errors import InputError
from pipeline.params import TuneConfig

log = logging.getLogger("pipeline.tune")

DEFAULT_STORAGE = "~/ray_results"
TOKEN_LOOKUP = "RAY_AUTH_TOKEN, the file named by RAY_AUTH_TOKEN_PATH, or {default}"


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def enable_token_auth_if_found() -> bool:
    """Ray's rule for a driver of a local cluster, applied to any address; True if token mode is on."""
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    return maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _refused_token(exc: BaseException) -> bool:
    """Whether Ray's connection error comes from an AuthenticationError.

    Ray raises it as the cause, or, where it retried, as text: the traceback of its last attempt.
    """
    from ray.exceptions import AuthenticationError

    name = f"{AuthenticationError.__module__}.{AuthenticationError.__qualname__}"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, AuthenticationError) or name in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def connect(address: str, runtime_env: dict, source: str = "tune.address") -> None:
    """``ray.init(address)``, with a one-line error where the cluster cannot be joined.

    ``source`` names the setting the address came from (``tune.address`` or ``RAY_ADDRESS``).
    """
    has_token = enable_token_auth_if_found()
    try:
        ray.init(address=address, runtime_env=runtime_env)
    except ConnectionError as exc:
        where = f"{source} {address}"
        if not _refused_token(exc):
            raise InputError(f"{where}: no Ray cluster could be joined there ({exc})") from None
        lookup = TOKEN_LOOKUP.format(default=default_token_path())
        if has_token:
            raise InputError(
                f"{where}: the Ray cluster refused the authentication token found here (Ray looks in "
                f"{lookup}): use the head node's ~/.ray/auth_token"
            ) from None
        raise InputError(
            f"{where}: the Ray cluster requires an authentication token and none was found here "
            f"(Ray looks in {lookup}): copy the head node's ~/.ray/auth_token there"
        ) from None


def _client_mode() -> bool:
    return ray.util.client.ray.is_connected()


@contextlib.contextmanager
def ray_session(tune: TuneConfig) -> Iterator[None]:
    """Connects to ``tune.address`` (or ``RAY_ADDRESS``), else starts a local Ray; undone after."""
    if ray.is_initialized():  # the caller's own Ray
        yield
        return
    address = tune.address or os.environ.get("RAY_ADDRESS")
    # ship this code to every worker, whatever its node and working directory
    import hrnet
    import pipeline

    runtime_env = {"py_modules": [str(Path(m.__file__).parent) for m in (hrnet, pipeline)]}
    if address:
        connect(address, runtime_env, "tune.address" if tune.address else "RAY_ADDRESS")
    else:
        # "local": a new Ray of our own, never one that `ray start` left running on this machine
        ray.init(address="local", num_cpus=tune.num_cpus, include_dashboard=False, runtime_env=runtime_env)
    try:
        nodes = [node for node in ray.nodes() if node["Alive"]]
        log.info(
            "Ray %s: %d node(s), %s CPUs",
            f"at {address}" if address else "started locally",
            len(nodes),
            ray.cluster_resources().get("CPU", 0),
        )
        yield
    finally:
        ray.shutdown()


def is_uri(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


@ray.remote(num_cpus=0)
def _sees(path: str) -> bool:
    return os.path.isfile(path)


def resolve_storage(storage_path: str | None) -> str:
    """Where trials keep results, refused where some node of a multi-node cluster cannot see it."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    remote = len(nodes) > 1 or _client_mode()
    if storage_path is not None and is_uri(storage_path):
        return storage_path
    if storage_path is None:
        if remote:
            where = f"the Ray cluster has {len(nodes)} nodes" if len(nodes) > 1 else "Ray is a remote client"
            raise InputError(
                f"tune.storage_path: null keeps trial results on each machine ({DEFAULT_STORAGE}) but "
                f"{where}: set a path every node mounts, or a URI (s3://...)"
            )
        return str(Path(DEFAULT_STORAGE).expanduser())
    path = Path(storage_path.removeprefix("file://")).expanduser().resolve()
    if remote:  # a path every node must see: probe it
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{uuid.uuid4().hex}"
        probe.write_text("")
        try:
            seen = ray.get(
                [
                    _sees.options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
                    ).remote(str(probe))
                    for node in nodes
                ]
            )
        finally:
            probe.unlink(missing_ok=True)
        blind = [node["NodeManagerAddress"] for node, ok in zip(nodes, seen) if not ok]
        if blind:
            raise InputError(
                f"tune.storage_path: {path} is local, not shared: node(s) {', '.join(blind)} of the "
                f"{len(nodes)}-node cluster cannot see it; use a path every node mounts, or a URI (s3://...)"
            )
    return str(path)
