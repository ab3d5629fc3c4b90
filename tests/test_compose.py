"""docker-compose.yml and the Dockerfile, checked without a Docker engine.

The compose file is validated against the compose-spec JSON schema (vendored from the npm package
`dclint` 3.1.0: node_modules/dclint/schemas/compose.schema.json, draft-07), then for what the
schema cannot know: services, volumes and mounted files that exist, ports that do not collide,
health checks where `depends_on` waits for them, and the addresses the Prometheus and Grafana
configuration expect.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from example_model_service.traffic import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "data" / "compose.schema.json"
DOCKERFILE = ROOT / "Dockerfile"
CLUSTER_PROFILE = {"nats-1", "nats-2", "nats-3", "monitor-1", "monitor-2"}
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} ...
_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?[-?+])([^}]*))?\}")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _with_defaults(value: str) -> str:
    """Compose interpolation with every variable unset: the `:-` defaults."""
    return _INTERPOLATION.sub(lambda m: m.group(3) or "" if m.group(2) in (":-", "-") else "", value)


def _depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return {name: {"condition": "service_started"} for name in depends}
    return dict(depends)


def _mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(type, source, target) of every volume entry, short or long syntax."""
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            source, _, rest = entry.partition(":")
            target = rest.split(":", 1)[0]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
            mounts.append((kind, source, target))
        else:
            mounts.append((entry["type"], entry.get("source", ""), entry["target"]))
    return mounts


def _host_ports(service: dict[str, Any]) -> list[str]:
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                ports.append(
                    f"{entry.get('host_ip', '')}:{entry['published']}/{entry.get('protocol', 'tcp')}"
                )
            continue
        spec, _, protocol = str(entry).partition("/")
        parts = spec.rsplit(":", 2)
        if len(parts) >= 2:
            host_ip = parts[0] if len(parts) == 3 else ""
            ports.append(f"{host_ip}:{parts[-2]}/{protocol or 'tcp'}")
    return ports


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _repo_path(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository file a container path comes from through the service's bind mounts."""
    wanted = PurePosixPath(container_path)
    for kind, source, target in _mounts(service):
        if kind == "bind" and (wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents):
            return (COMPOSE_FILE.parent / source / wanted.relative_to(target)).resolve()
    return None


def test_compose_file_matches_the_compose_spec_schema() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_schema_catches_a_typo() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    broken = _compose()
    broken["services"]["monitor"]["helthcheck"] = broken["services"]["monitor"].pop("healthcheck")
    assert not jsonschema.Draft7Validator(schema).is_valid(broken)


def test_compose_has_no_obsolete_version_key_and_the_expected_services() -> None:
    compose = _compose()
    assert "version" not in compose
    assert set(compose["services"]) == {
        "monitor",
        "model-service",
        "traffic",
        "prometheus",
        "alertmanager",
        "grafana",
        *CLUSTER_PROFILE,
    }


def test_compose_services_have_an_image_or_a_build_that_exists() -> None:
    for name, service in _services().items():
        assert "image" in service or "build" in service, name
        build = service.get("build")
        if build is not None:
            context = COMPOSE_FILE.parent / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{name}: {context / dockerfile}"


def test_compose_depends_on_existing_services_with_health_checks_where_awaited() -> None:
    services = _services()
    for name, service in services.items():
        for target, options in _depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            if options.get("condition") == "service_healthy":
                check = services[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{name} awaits {target}'s health"


def test_compose_monitor_and_model_service_have_health_checks() -> None:
    services = _services()
    for name in ("monitor", "model-service"):
        check = services[name].get("healthcheck", {})
        assert not check.get("disable") and check.get("test"), name
        assert any("/readyz" in part or "/healthz" in part for part in check["test"]), name


def test_compose_named_volumes_are_declared_and_bind_mounts_exist() -> None:
    declared = set(_compose().get("volumes") or {})
    used = set()
    for name, service in _services().items():
        for kind, source, target in _mounts(service):
            assert target.startswith("/"), f"{name}: {target}"
            if kind == "volume":
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
            elif kind == "bind":
                path = (COMPOSE_FILE.parent / source).resolve()
                assert path.exists(), f"{name}: {source} does not exist in the repository"
                assert ROOT in (path, *path.parents), f"{name}: {source} is outside the repository"
    assert used == declared, f"declared but unused volumes: {declared - used}"


def test_compose_host_ports_do_not_collide() -> None:
    seen: dict[str, str] = {}
    for name, service in _services().items():
        for port in _host_ports(service):
            assert port not in seen, f"{name} and {seen.get(port)} both publish {port}"
            seen[port] = name
    assert {p.split(":")[1].split("/")[0] for p in seen} >= {"8000", "8080", "9090", "9093", "3000"}


def test_compose_config_files_named_on_command_lines_are_mounted() -> None:
    for name, service in _services().items():
        for arg in _command(service):
            match = re.match(r"--config\.file=(.+)", arg)
            if match:
                source = _repo_path(service, match.group(1))
                assert source is not None and source.is_file(), f"{name}: {arg} is not a mounted file"


def test_compose_prometheus_and_grafana_address_the_compose_services() -> None:
    services = _services()
    prometheus = services["prometheus"]
    config_file = _repo_path(prometheus, "/etc/prometheus/prometheus.yml")
    assert config_file is not None
    config = yaml.safe_load(config_file.read_text())
    targets = [
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    targets += [
        t for am in config["alerting"]["alertmanagers"] for s in am["static_configs"] for t in s["targets"]
    ]
    for target in targets:
        host, _, port = target.partition(":")
        if host == "localhost":
            continue
        assert host in services, f"prometheus targets {target}, not a compose service"
        listening = {p.split(":")[-1] for p in map(str, services[host].get("ports", []))}
        assert port in listening, f"{host} does not listen on {port} ({listening})"
    datasources = ROOT / "dashboards" / "provisioning" / "datasources" / "prometheus.yml"
    for source in yaml.safe_load(datasources.read_text())["datasources"]:
        host = re.match(r"https?://([^:/]+)", source["url"])
        assert host is not None and host.group(1) in services, source["url"]


def test_compose_commands_name_existing_configs_and_scenarios() -> None:
    services = _services()
    monitor_command = _command(services["monitor"])
    config = monitor_command[monitor_command.index("--config") + 1]
    assert (ROOT / config).is_file()
    traffic = [_with_defaults(part) for part in _command(services["traffic"])]
    assert traffic[traffic.index("--scenario") + 1] in SCENARIOS
    for option in ("--rate", "--rows", "--label-delay"):
        assert float(traffic[traffic.index(option) + 1]) > 0, option
    service = _command(services["model-service"])
    assert service[service.index("--monitor-url") + 1] == "http://monitor:8000"
    assert traffic[traffic.index("--service") + 1] == "http://model-service:8080"


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"^FROM python:3\.11-slim\b", "the base image"),
        (r"^USER (?!root\b|0\b)\S+", "a non-root user"),
        (r"^HEALTHCHECK .*python.*urllib.*HEALTHCHECK_URL", "a health check through python's urllib"),
        (r"HEALTHCHECK_URL=http://127\.0\.0\.1:8000/healthz", "by default of the monitor's /healthz"),
        (r'^CMD \[.*"config/stack\.yaml"\]', "the monitor with config/stack.yaml by default"),
        (r'pip install .*"?\.\[example,cluster\]"?', "the package with the example and cluster extras"),
    ],
)
def test_dockerfile_has(pattern: str, why: str) -> None:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    assert re.search(pattern, text, re.MULTILINE), why


def test_dockerfile_copies_files_that_exist_and_are_not_docker_ignored() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copies = re.findall(r"^COPY\s+(.+?)\s+\S+$", DOCKERFILE.read_text(), re.MULTILINE)
    assert copies
    for sources in copies:
        for source in sources.split():
            assert (ROOT / source).exists(), source
            assert source not in ignored, f"{source} is copied but listed in .dockerignore"


# ------------------------------------------------------------------ cluster mode (--profile cluster)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(entry.split("=", 1) for entry in environment)
    return {key: _with_defaults(str(value)) for key, value in environment.items()}


def test_compose_cluster_profile_is_three_nats_nodes_and_two_monitors_only() -> None:
    services = _services()
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == CLUSTER_PROFILE
    assert all(services[name]["profiles"] == ["cluster"] for name in CLUSTER_PROFILE)
    # the default stack (one command, no NATS) depends on nothing of the profile
    for name, service in services.items():
        if name not in CLUSTER_PROFILE:
            assert not set(_depends_on(service)) & CLUSTER_PROFILE, name


def test_compose_cluster_monitors_join_the_profiles_nats_nodes() -> None:
    from monitor_service.config import load_config

    services = _services()
    nodes = {name for name in CLUSTER_PROFILE if name.startswith("nats-")}
    seeds = set()
    for name in ("monitor-1", "monitor-2"):
        service = services[name]
        command = _command(service)
        config_path = _repo_path(service, "/app/" + command[command.index("--config") + 1])
        assert config_path is not None and config_path.is_file(), name
        environment = _environment(service)
        config = load_config(config_path, environ=environment)  # check-config, with the compose env
        assert config.cluster is not None and config.cluster.password is not None, name
        hosts = {url.split("://", 1)[1].split(":")[0] for url in config.cluster.servers}
        assert hosts == nodes, name
        assert set(_depends_on(service)) == nodes
        assert all(options["condition"] == "service_healthy" for options in _depends_on(service).values())
        seeds.add(environment["PYTHONHASHSEED"])
        assert "password" not in yaml.safe_load(config_path.read_text())["cluster"]  # by environment
    assert len(seeds) == 1  # one hash seed: results equal to the last bit on every member


def test_compose_cluster_nats_config_is_valid_for_every_node() -> None:
    """`nats-server -t` on the mounted config with each node's environment (skipped without the
    Debian package): a variable the compose file forgets would fail here."""
    import shutil
    import subprocess

    binary = shutil.which("nats-server")
    if binary is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    services = _services()
    names = set()
    for name in sorted(n for n in CLUSTER_PROFILE if n.startswith("nats-")):
        service = services[name]
        command = _command(service)
        config = _repo_path(service, command[command.index("-c") + 1])
        assert config is not None and config.is_file(), name
        environment = _environment(service)
        names.add(environment["NATS_SERVER_NAME"])
        checked = subprocess.run(
            [binary, "-c", str(config), "-t"], env=environment, capture_output=True, text=True, timeout=30
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        routes = set(re.findall(r"nats-route://([\w-]+):6222", config.read_text()))
        assert routes == {n for n in CLUSTER_PROFILE if n.startswith("nats-")}
        assert any(kind == "volume" and target == "/data" for kind, _, target in _mounts(service)), name
    assert names == {"nats-1", "nats-2", "nats-3"}


def test_compose_prometheus_finds_the_cluster_members_with_a_cluster_label() -> None:
    services = _services()
    config_file = _repo_path(services["prometheus"], "/etc/prometheus/prometheus.yml")
    assert config_file is not None
    [job] = [
        job
        for job in yaml.safe_load(config_file.read_text())["scrape_configs"]
        if job["job_name"] == "drift-monitor"
    ]
    [dns] = job["dns_sd_configs"]
    assert set(dns["names"]) == {"monitor-1", "monitor-2"}
    assert all(str(dns["port"]) == p.split(":")[-1] for name in dns["names"] for p in services[name]["ports"])
    [label] = job["relabel_configs"]
    assert (label["target_label"], label["replacement"]) == ("cluster", "compose")
    assert all(re.fullmatch(label["regex"], name) for name in dns["names"])
    assert not re.fullmatch(label["regex"], "monitor")  # the single node gets no cluster label
