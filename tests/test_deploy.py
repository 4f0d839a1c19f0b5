"""The deployment files, checked statically: no container daemon or cluster runs here.

Every command in the Dockerfile, the compose file and the Kubernetes manifests goes through
loadgen's real argument parser (an option renamed in the CLI fails here), the profiles they
run load as `loadgen run` would load them, and the pieces agree with each other: the workers
look for the master where it listens, the profile's URLs name the venue's service and ports,
the keys file is on a volume every process that reads it mounts, and the master waits for as
many workers as are started.
"""

from __future__ import annotations

import argparse
import re
import shlex
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadgen import profiles
from loadgen.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose.yaml"
K8S = ROOT / "deploy" / "k8s" / "loadgen.yaml"


def parse(argv: list[str]) -> argparse.Namespace:
    """loadgen's own parser on `argv`; a failure names the command."""
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`loadgen {shlex.join(argv)}` does not parse (exit {exc.code})")


def loaded(text: str, tmp: Path, keys: str) -> profiles.Profile:
    """The profile as `loadgen run` loads it, its keys file (absent here) made in tmp."""
    local = tmp / "keys.json"
    local.write_text(
        '{"keys": [{"api_key": "k", "secret": "c2VjcmV0", "fix_sender_comp_ids": ["kS0"]}]}'
    )
    path = tmp / "profile.toml"
    path.write_text(text.replace(f'"{keys}"', f'"{local}"'))
    return profiles.load(str(path))


def hosts_and_ports(prof: profiles.Profile) -> set[tuple[str, int]]:
    t = prof.target
    return {
        (u.hostname or "", u.port or 0) for u in map(urllib.parse.urlsplit, (t.rest, t.ws, t.fix))
    }


def venue_ports(args: argparse.Namespace) -> set[int]:
    return {args.rest_port, args.ws_port, args.fix_port}


# ---- the Dockerfile ------------------------------------------------------------------------


def test_the_dockerfile_installs_as_the_readme_says_on_a_slim_python() -> None:
    lines = [x.strip() for x in (ROOT / "Dockerfile").read_text().splitlines()]
    steps = [x for x in lines if x and not x.startswith("#")]
    assert re.fullmatch(r"FROM python:3\.1[1-9]-slim", steps[0]), steps[0]
    readme = (ROOT / "README.md").read_text()
    assert "pip install -e ." in readme
    assert any(x.startswith("RUN pip install") and " -e ." in x for x in steps)
    for copy in (x for x in steps if x.startswith("COPY")):
        for source in copy.split()[1:-1]:
            assert (ROOT / source).exists(), copy
    assert 'ENTRYPOINT ["loadgen"]' in steps
    exposed = {int(p) for x in steps if x.startswith("EXPOSE") for p in x.split()[1:]}
    assert {5557, 8089, 8080, 8081, 8082} <= exposed
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored  # a build context without the venv


# ---- compose -------------------------------------------------------------------------------


def _compose_command(service: dict[str, Any]) -> list[str]:
    """The service's command with compose's ${VAR:-default} as its default."""
    return [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(x)) for x in service["command"]]


def test_the_compose_file_runs_a_venue_a_master_and_scalable_workers(tmp_path: Path) -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert set(services) == {"venue", "master", "worker"}
    venue = parse(_compose_command(services["venue"]))
    master = parse(_compose_command(services["master"]))
    worker = parse(_compose_command(services["worker"]))
    assert venue.command == "venue" and "0.0.0.0" in venue.allow_host
    assert master.command == "run" and master.master and master.expect_workers >= 1
    assert worker.command == "worker" and "deploy" not in services["worker"]  # --scale sets N
    assert worker.master_host == ("master", master.master_bind[1])
    # the profile the master runs (relative to the image's WORKDIR, the repository's root)
    text = (ROOT / master.profile).read_text()
    keys = str(venue.keys_file)
    prof = loaded(text, tmp_path, keys)
    assert hosts_and_ports(prof) == {("venue", p) for p in venue_ports(venue)}
    assert prof.target.allow_hosts == ("venue",)
    # the keys file the venue writes is on a volume the master and the workers mount
    shared = {v.split(":")[1]: v.split(":")[0] for v in doc["x-loadgen"]["volumes"]}
    assert Path(keys).parent.as_posix() in shared
    for name in ("master", "worker"):
        mounts = services[name].get("volumes", doc["x-loadgen"]["volumes"])
        assert any(m.split(":")[1] == Path(keys).parent.as_posix() for m in mounts), name
    assert any(m.endswith(f":{master.results}") for m in services["master"]["volumes"])
    # healthy means listening on the REST port with the keys file written; one image, built once
    check = " ".join(services["venue"]["healthcheck"]["test"])
    assert f"'127.0.0.1', {venue.rest_port}" in check and keys in check
    assert [n for n, x in services.items() if "build" in x] == ["venue"]
    assert {x["image"] for x in services.values()} == {"loadgen"}
    assert "--abort-on-container-exit" not in COMPOSE.read_text().split("(not")[0]


# ---- Kubernetes ----------------------------------------------------------------------------


def _k8s() -> dict[tuple[str, str], dict[str, Any]]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(K8S.read_text())}


def _container(doc: dict[str, Any]) -> dict[str, Any]:
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    return container


def test_the_kubernetes_manifests_agree_with_the_cli_and_with_each_other(tmp_path: Path) -> None:
    docs = _k8s()
    venue_args = parse(_container(docs["Deployment", "loadgen-venue"])["args"])
    master_job = docs["Job", "loadgen-master"]
    worker_job = docs["Job", "loadgen-worker"]
    master = parse(_container(master_job)["args"])
    worker = parse(_container(worker_job)["args"])
    assert master.master and worker.command == "worker"
    # the workers find the master's pod through its headless Service, on the port it binds
    service = docs["Service", "loadgen-master"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == master_job["spec"]["template"]["metadata"]["labels"]
    assert worker.master_host == ("loadgen-master", master.master_bind[1])
    assert [p["port"] for p in service["spec"]["ports"]] == [master.master_bind[1]]
    # as many workers started as the master waits for
    spec = worker_job["spec"]
    assert spec["parallelism"] == spec["completions"] == master.expect_workers
    # the venue's Service carries the ports the venue binds
    venue_service = docs["Service", "venue"]
    assert {p["targetPort"] for p in venue_service["spec"]["ports"]} == venue_ports(venue_args)
    # the profile: mounted where the master reads it, its URLs the venue Service's, its keys
    # file on the Secret's mount in the master and in every worker
    (volume,) = [v for v in master_job["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
    mounts = {m["name"]: m["mountPath"] for m in _container(master_job)["volumeMounts"]}
    config = docs["ConfigMap", volume["configMap"]["name"]]
    (name, text), = config["data"].items()  # fmt: skip
    assert master.profile == f"{mounts[volume['name']]}/{name}"
    keys = re.search(r'keys_file = "([^"]+)"', text)
    assert keys
    prof = loaded(text, tmp_path, keys.group(1))
    assert hosts_and_ports(prof) == {("venue", p["port"]) for p in venue_service["spec"]["ports"]}
    for job in (master_job, worker_job):
        paths = [m["mountPath"] for m in _container(job)["volumeMounts"]]
        assert Path(keys.group(1)).parent.as_posix() in paths, job["metadata"]["name"]
    assert master_job["spec"]["backoffLimit"] == 0  # a failed verdict is not retried
    # one image everywhere, a tag the cluster keeps (":latest" would be pulled, and fail)
    pods = [
        d["spec"]["template"]["spec"] for d in docs.values() if d["kind"] in ("Job", "Deployment")
    ]
    containers = [c for p in pods for c in p["containers"] + p.get("initContainers", [])]
    assert len({c["image"] for c in containers}) == 1
    assert all(not c["image"].endswith(":latest") and c["imagePullPolicy"] == "IfNotPresent"
               for c in containers)  # fmt: skip
    (wait,) = master_job["spec"]["template"]["spec"]["initContainers"]  # the venue first
    assert "('venue', 8080)" in wait["command"][-1]


def test_the_deployment_files_point_at_documents_that_exist() -> None:
    for path in (ROOT / "Dockerfile", COMPOSE, K8S):
        for doc in re.findall(r"[\w/.-]+\.md", path.read_text()):
            assert (ROOT / doc).exists(), (path.name, doc)
