"""The deploy bundle, served the way Cloud Functions serves it: a fresh virtualenv with only
its requirements.txt, functions-framework started from the bundle root, the emulators behind.

The virtualenv is cached under ~/.cache/vbg-bundle-venv/<hash of requirements.txt + python>,
so only a dependency change pays the install (minutes); reruns start in seconds.
"""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

from local import bundle
from local.processes import Server, free_port

pytestmark = pytest.mark.emulators

CACHE = Path(os.environ.get("VBG_BUNDLE_VENV_CACHE", Path.home() / ".cache" / "vbg-bundle-venv"))
CONFIG = """\
model_list:
  - model_name: gemini-3.5-flash-lite
    litellm_params:
      model: vertex_ai/gemini-3.5-flash-lite
      vertex_project: bundle-test
      vertex_location: us-central1
"""


def runtime_python() -> str:
    """Python 3.12 (the deployed runtime) when this machine has it, else this interpreter."""
    candidate = shutil.which("python3.12")
    if candidate:
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return candidate
    return sys.executable


def bundle_venv(requirements: Path) -> Path:
    python = runtime_python()
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
    ).stdout
    key = hashlib.sha256(requirements.read_bytes() + version.encode()).hexdigest()[:16]
    venv = CACHE / key
    CACHE.mkdir(parents=True, exist_ok=True)
    # Built in place (a moved virtualenv's scripts point at the old path), under a lock.
    with open(CACHE / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
        install = subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "-r", str(requirements)],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        if install.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            text = install.stderr + install.stdout
            network = ("NewConnectionError", "Temporary failure in name resolution", "ProxyError")
            if any(marker in text for marker in network):
                pytest.skip(f"pip cannot reach PyPI for the bundle's requirements: {text[-300:]}")
            pytest.fail(f"pip install -r requirements.txt failed:\n{text[-3000:]}")
        (venv / ".complete").touch()
    return venv


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle")
    config = out / "models.yaml"
    config.write_text(CONFIG)
    return bundle.build(out, config)


def test_bundle_is_deterministic_and_complete(built, tmp_path):
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    again = bundle.build(tmp_path / "again", config)
    assert again.sha256 == built.sha256
    names = zipfile.ZipFile(built.zip_path).namelist()
    assert names == sorted(names)
    assert {"main.py", "requirements.txt", "config.yaml", "shared/core/config.py"} <= set(names)
    assert "shared/cost/prices.json" in names
    console = bundle.ROOT / "shared" / "api" / "ui"
    shipped = {
        f"shared/api/ui/{p.relative_to(console).as_posix()}"
        for p in console.rglob("*")
        if p.is_file()
    }
    assert {"shared/api/ui/index.html", "shared/api/ui/vendor/chart.umd.min.js"} <= shipped
    assert shipped <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "local/"))]
    manifest = json.loads(built.manifest_path.read_text())
    assert manifest["sha256"] == built.sha256
    assert manifest["config_sha256"] == hashlib.sha256(CONFIG.encode()).hexdigest()
    requirements = (built.directory / "requirements.txt").read_text().split()
    assert all("==" in line for line in requirements)
    pinned = {line.split("==")[0].split("[")[0].lower() for line in requirements}
    assert "functions-framework" in pinned
    assert not pinned & {"pytest", "ruff", "python-hcl2", "gcp-storage-emulator", "checkov"}


def test_a_code_change_changes_the_bundle_name(built, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(bundle.ROOT / "shared", root / "shared")
    shutil.copytree(bundle.ROOT / "functions", root / "functions")
    shutil.copy(bundle.ROOT / "pyproject.toml", root)
    (root / "shared" / "changed.py").write_text("X = 1\n")
    config = tmp_path / "models.yaml"
    config.write_text(CONFIG)
    assert bundle.build(tmp_path / "out", config, root=root).sha256 != built.sha256


def test_served_bundle_answers_health(built, gcp, tmp_path):
    venv = bundle_venv(built.directory / "requirements.txt")
    # The event functions are invoked by push (not a Cloud Functions event_trigger): their
    # CloudEvent signature must come from the decorators in main.py.
    registry = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import json, main; from functions_framework import _function_registry as r; "
            "print(json.dumps(r.REGISTRY_MAP))",
        ],
        cwd=built.directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"], "VBG_CONFIG": "config.yaml"},
    )
    assert registry.returncode == 0, registry.stderr[-3000:]
    assert json.loads(registry.stdout.strip().splitlines()[-1]) == {
        "passthrough": "http",
        "on_job_event": "cloudevent",
        "on_output_finalized": "cloudevent",
    }

    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "VBG_PROJECT": gcp["project"],
        "GOOGLE_CLOUD_PROJECT": gcp["project"],
        "VBG_CONFIG": "config.yaml",
        "VBG_MASTER_KEY": "bundle-test-master-key",
        "FIRESTORE_EMULATOR_HOST": gcp["firestore_host"],
        "PUBSUB_EMULATOR_HOST": gcp["pubsub_host"],
        "STORAGE_EMULATOR_HOST": gcp["storage_url"],
    }
    server = Server(
        "bundle-passthrough",
        [
            str(venv / "bin" / "functions-framework"),
            "--target=passthrough",
            "--source=main.py",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        port,
        log_path=tmp_path / "bundle.log",
    )
    # Popen inherits os.environ; the bundle must not see the dev venv or the repo.
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        cwd = os.getcwd()
        os.chdir(built.directory)
        try:
            server.start()
        finally:
            os.chdir(cwd)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        server.wait_ready(timeout=60)
        # The config path is shown to the master key only (issue #10).
        request = urllib.request.Request(
            f"{server.url}/v1/gateway/health",
            headers={"Authorization": "Bearer bundle-test-master-key"},
        )
        with urllib.request.urlopen(request, timeout=30) as reply:
            status, body = reply.status, json.loads(reply.read())
        with urllib.request.urlopen(f"{server.url}/ui/vendor/chart.umd.min.js", timeout=30) as js:
            chart = js.status, js.headers["Content-Type"], js.read()
    except Exception:
        log = (tmp_path / "bundle.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"bundle server failed; its log:\n{log}") from None
    finally:
        server.stop()
    assert status == 200, body
    assert body["status"] == "ok"
    assert body["models"] == ["gemini-3.5-flash-lite"]
    assert body["config"]["path"] == "config.yaml"
    console_file = bundle.ROOT / "shared" / "api" / "ui" / "vendor" / "chart.umd.min.js"
    assert chart == (200, "text/javascript; charset=utf-8", console_file.read_bytes())
    assert body["firestore"]["status"] == "ok"
