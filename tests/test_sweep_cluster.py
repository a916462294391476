"""neuro sweep --address: join a Ray cluster started with `ray start --head` (one node, on this machine)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from neuro.cli import main

RAY = str(Path(sys.executable).with_name("ray"))
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a test cluster on 127.0.0.1 (docs/sweep.md: tokens)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A one-node Ray cluster of 2 CPUs; its address. Stopped by signalling the `ray start` we started."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("ray") / "head.log", "w")
    head = subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=2", "--include-dashboard=false", "--block"], env=ENV,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, "ray start --head exited"
            time.sleep(0.5)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        log.close()


def test_sweep_joins_a_cluster_and_matches_the_local_table(cluster, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"command": "simulate", "config": "configs/sweep/tiny_network.yaml",
                                    "metrics": {"rate": "populations.exc.mean_rate_hz"}, "seeds": [0, 1]}))
    run = subprocess.run([sys.executable, "-m", "neuro.cli", "sweep", str(spec), "--address", cluster,
                          "--out", str(tmp_path / "remote")], env=ENV, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "[2/2]" in run.stdout  # progress lines
    table = json.loads((tmp_path / "remote/aggregate.json").read_text())
    assert table["records"] == 2 and table["failed"] == []
    sweep = json.loads((tmp_path / "remote/sweep.json").read_text())
    assert sweep["address"] == cluster and sweep["workers"] is None  # as many as the cluster allows
    rates = []
    for seed in (0, 1):  # each trial alone, as the plain command
        assert main(["simulate", "configs/sweep/tiny_network.yaml", "--seed", str(seed), "--no-progress",
                     "--out", str(tmp_path / f"alone{seed}")]) == 0
        rates.append(json.loads((tmp_path / f"alone{seed}/summary.json").read_text())
                     ["populations"]["exc"]["mean_rate_hz"])
    assert table["cells"][0]["rate"]["mean"] == pytest.approx(sum(rates) / 2, rel=1e-15)
