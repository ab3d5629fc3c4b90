"""A real 3-node NATS JetStream cluster on loopback for tests and benchmarks (Debian's ``nats-server``).

Each node gets its own client port, HTTP monitoring port, cluster route port and store directory,
all on 127.0.0.1. Authentication is ON: clients log in as a user with a password, or with an nkey
(a generated user seed), and the routes between the nodes have their own user and password. The
nodes are started, stopped, SIGKILLed and restarted by PID; everything waits by polling the
monitoring endpoints with deadlines.

Typical use::

    cluster = NatsCluster.create(tmp_path / "nats")
    cluster.start()                      # waits until every node reports JetStream healthy
    try:
        leader = cluster.stream_leader("DM_W_diamonds")
        leader.kill()                    # SIGKILL
        leader.start()                   # same store dir: it catches up from its peers
        cluster.wait_healthy()
    finally:
        cluster.stop()
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.processes import (
    LOOPBACK,
    ProcessError,
    RunningProcess,
    free_port,
    http_get,
    poll_until,
    start_process,
)

CLUSTER_NAME = "dm-test"
CLIENT_USER = "monitor"
ROUTE_USER = "route"
MAX_PAYLOAD = 8 * 1024 * 1024


def nats_server_binary() -> str:
    """Path of ``nats-server`` ($NATS_SERVER_BIN or PATH); on Debian: apt-get install nats-server."""
    path = os.environ.get("NATS_SERVER_BIN") or shutil.which("nats-server")
    if not path:
        raise ProcessError(
            "nats-server is not on PATH; on Debian: apt-get install -y --no-install-recommends nats-server"
        )
    return path


def user_nkey() -> tuple[str, str]:
    """A fresh user nkey: (seed, public key). The seed is the secret a client signs with."""
    import nkeys  # comes with the `cluster` extra (nats-py[nkeys])

    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    return seed.decode(), public


@dataclass
class NatsNode:
    """One ``nats-server`` process of the cluster, restartable on the same ports and store dir."""

    name: str
    port: int
    http_port: int
    cluster_port: int
    directory: Path
    process: RunningProcess | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @property
    def store_dir(self) -> Path:
        return self.directory / "jetstream"

    @property
    def config_file(self) -> Path:
        return self.directory / "node.conf"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ProcessError(f"node {self.name} is not running")
        return self.process.pid

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()

    def start(self) -> None:
        """Start the node (config written by the cluster); returns once it answers /varz."""
        if self.is_running():
            raise ProcessError(f"node {self.name} is already running (pid {self.pid})")
        self.starts += 1
        log_path = self.directory / f"node-{self.starts}.log"
        self.process = start_process(
            f"nats-{self.name}", [nats_server_binary(), "-c", str(self.config_file)], log_path
        )
        process = self.process

        def listening() -> bool:
            if not process.is_running():
                raise ProcessError(f"nats node {self.name} exited", process.log_tail())
            return http_get(self.monitor_url + "/varz")[0] == 200

        poll_until(listening, timeout=15, message=f"nats node {self.name} to listen", on_timeout=self.log)

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> int:
        """Send ``sig`` (SIGKILL by default: no goodbye to its peers) and wait for the exit."""
        if self.process is None:
            raise ProcessError(f"node {self.name} was never started")
        return self.process.stop(sig, timeout=10)

    def stop(self) -> int:
        """SIGTERM (a clean shutdown); SIGKILL after 10 s."""
        return self.kill(signal.SIGTERM) if self.process is not None else 0

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.process.log_tail() if self.process else ""

    def jsz(self, **params: str) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        status, body = http_get(f"{self.monitor_url}/jsz?{query}")
        if status != 200:
            raise ProcessError(f"/jsz of node {self.name} answered {status}")
        loaded: dict[str, Any] = json.loads(body)
        return loaded

    def stream_state(self, stream: str) -> dict[str, Any] | None:
        """This node's own copy of ``stream`` (messages, bytes, first_seq, last_seq), or None."""
        for account in self.jsz(accounts="true", streams="true").get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    state: dict[str, Any] = detail.get("state") or {}
                    return state
        return None

    def healthy(self) -> bool:
        """True when the node says JetStream is healthy (meta group has a leader, streams current)."""
        try:
            status, body = http_get(self.monitor_url + "/healthz", timeout=1.0)
        except OSError:
            return False
        return status == 200 and json.loads(body).get("status") == "ok"


@dataclass
class NatsCluster:
    """Three ``nats-server`` nodes with JetStream and authentication, on loopback free ports."""

    nodes: list[NatsNode]
    password: str = field(repr=False)
    nkey_seed: str = field(repr=False)
    nkey_public: str
    route_password: str = field(repr=False)

    @classmethod
    def create(cls, directory: Path, size: int = 3) -> NatsCluster:
        """Choose ports, generate credentials and write every node's config (nothing started)."""
        seed, public = user_nkey()
        cluster = cls(
            nodes=[
                NatsNode(f"n{i + 1}", free_port(), free_port(), free_port(), directory / f"n{i + 1}")
                for i in range(size)
            ],
            password=secrets.token_urlsafe(18),
            nkey_seed=seed,
            nkey_public=public,
            route_password=secrets.token_urlsafe(18),
        )
        for node in cluster.nodes:
            node.store_dir.mkdir(parents=True, exist_ok=True)
            node.config_file.write_text(cluster.render_config(node))
        return cluster

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def node(self, name: str) -> NatsNode:
        return next(node for node in self.nodes if node.name == name)

    def render_config(self, node: NatsNode) -> str:
        routes = ", ".join(
            f'"nats-route://{ROUTE_USER}:{self.route_password}@{LOOPBACK}:{peer.cluster_port}"'
            for peer in self.nodes
            if peer is not node
        )
        return f"""# written by tests/support/nats.py
server_name: {node.name}
listen: "{LOOPBACK}:{node.port}"
http: "{LOOPBACK}:{node.http_port}"
max_payload: {MAX_PAYLOAD}
jetstream {{
  store_dir: "{node.store_dir}"
  max_memory_store: 268435456
  max_file_store: 4294967296
}}
authorization {{
  users = [
    {{ user: "{CLIENT_USER}", password: "{self.password}" }}
    {{ nkey: "{self.nkey_public}" }}
  ]
}}
cluster {{
  name: "{CLUSTER_NAME}"
  listen: "{LOOPBACK}:{node.cluster_port}"
  authorization {{ user: "{ROUTE_USER}", password: "{self.route_password}" }}
  routes: [{routes}]
}}
"""

    def start(self, timeout: float = 30.0) -> None:
        for node in self.nodes:
            if not node.is_running():
                node.start()
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {node.name} ---\n{node.log()}" for node in self.nodes)

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every node running and reporting JetStream healthy (a restarted node: caught up)."""

        def healthy() -> bool:
            return all(node.is_running() and node.healthy() for node in self.nodes)

        poll_until(healthy, timeout=timeout, message="every NATS node healthy", on_timeout=self.logs)

    def stream_leader(self, stream: str, timeout: float = 15.0) -> NatsNode:
        """The node that leads ``stream`` now (read from a running node's /jsz)."""

        def leader() -> NatsNode | None:
            for node in self.nodes:
                if not node.is_running():
                    continue
                name = _stream_leader_in(node.jsz(accounts="true", streams="true"), stream)
                if name:
                    return self.node(name)
            return None

        return poll_until(
            leader, timeout=timeout, message=f"a leader of stream {stream}", on_timeout=self.logs
        )

    def consumer_leaders(self, stream: str) -> dict[str, NatsNode]:
        """Per consumer of ``stream`` (durable or ephemeral, e.g. a key-value watch): the node it
        runs on now."""
        for node in self.nodes:
            if not node.is_running():
                continue
            jsz = node.jsz(accounts="true", streams="true", consumers="true")
            for account in jsz.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") != stream:
                        continue
                    found = {
                        consumer["name"]: self.node(consumer["cluster"]["leader"])
                        for consumer in detail.get("consumer_detail") or []
                        if (consumer.get("cluster") or {}).get("leader")
                    }
                    if found:
                        return found
        return {}

    def stream_replicas(self, stream: str) -> dict[str, dict[str, Any]]:
        """Per node name: what the leader reports about each replica (current, lag), leader included."""
        leader = self.stream_leader(stream)
        cluster = _stream_cluster_in(leader.jsz(accounts="true", streams="true"), stream) or {}
        replicas = {r["name"]: r for r in cluster.get("replicas", [])}
        replicas[leader.name] = {"name": leader.name, "current": True, "lag": 0, "leader": True}
        return replicas


def _stream_cluster_in(jsz: dict[str, Any], stream: str) -> dict[str, Any] | None:
    for account in jsz.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            if detail.get("name") == stream:
                cluster: dict[str, Any] = detail.get("cluster") or {}
                return cluster
    return None


def _stream_leader_in(jsz: dict[str, Any], stream: str) -> str | None:
    cluster = _stream_cluster_in(jsz, stream)
    leader = cluster.get("leader") if cluster else None
    return str(leader) if leader else None
