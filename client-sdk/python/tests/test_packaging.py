"""The package as a user gets it: built from a fresh checkout, installed into a new venv.

A checkout holds no generated code (it is gitignored); the build generates it from the
``.proto`` files, so these tests copy only what git tracks (plus new, unignored files)
and build from that. They need pip's access to PyPI (or its cache) for the build
requirements and grpcio, and KAPSO_CORE_ADDR: the installed package calls the live core.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
CORE = os.environ.get("KAPSO_CORE_ADDR", "")
GENERATED = {
    f"kapso/gateway/v1/{name}_pb2{suffix}"
    for name in ("content", "types", "ingest", "messaging")
    for suffix in (".py", ".pyi", "_grpc.py")
}
BUILD_TIMEOUT = 600


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """proto/ and client-sdk/python/ as a fresh clone of this working tree has them."""
    root = tmp_path_factory.mktemp("checkout")
    listed = run(
        "git", "-C", REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard",
        "--", "proto", "client-sdk/python",
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # not deleted in the working tree
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    package = root / "client-sdk" / "python"
    assert (package / "pyproject.toml").is_file()
    assert not (package / "src" / "kapso").exists(), "generated code is not tracked"
    return package


def test_the_build_pins_the_grpcio_tools_the_tests_generate_with():
    pyproject = (REPO / "client-sdk/python/pyproject.toml").read_text()
    requirements = (REPO / "client-sdk/python/requirements.txt").read_text()
    build_pin = re.search(r'"grpcio-tools==([^"]+)"', pyproject)
    test_pin = re.search(r"^grpcio-tools==(\S+)$", requirements, re.MULTILINE)
    assert build_pin and test_pin and build_pin.group(1) == test_pin.group(1)


def test_pip_installs_the_directory_into_a_fresh_venv_and_it_calls_the_core(checkout, tmp_path):
    assert CORE, "KAPSO_CORE_ADDR is not set (run client-sdk/scripts/test-sdks.sh)"
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--disable-pip-version-check", "--quiet", checkout)
    script = """
import sys, grpc
import kapso_gateway
from kapso_gateway import Client, MessageStatus
from kapso.gateway.v1 import messaging_pb2
assert kapso_gateway.__file__.startswith(sys.prefix), kapso_gateway.__file__
with Client(sys.argv[1], timeout=10) as client:
    try:
        client.get_message("wamid.packaging-probe")
    except grpc.RpcError as error:
        print(error.code().name, MessageStatus(5))
"""
    # Run from tmp_path so nothing of the checkout or the repository is importable by path.
    result = run(python, "-c", script, CORE, cwd=tmp_path)
    assert result.stdout.split() == ["NOT_FOUND", "READ"]


def test_build_makes_an_sdist_and_from_it_a_wheel_with_the_generated_code(checkout, tmp_path):
    # python -m build builds the sdist, then the wheel from the unpacked sdist alone.
    run(sys.executable, "-m", "build", "--outdir", tmp_path, checkout)
    (sdist,) = tmp_path.glob("kapso_gateway_client-*.tar.gz")
    (wheel,) = tmp_path.glob("kapso_gateway_client-*-py3-none-any.whl")

    with tarfile.open(sdist) as archive:
        in_sdist = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {f"proto/kapso/gateway/v1/{n}.proto" for n in ("content", "types", "ingest", "messaging")} <= in_sdist
    assert not any(name.endswith("_pb2.py") for name in in_sdist), "generated code is built, not shipped"

    with zipfile.ZipFile(wheel) as archive:
        in_wheel = set(archive.namelist())
    assert GENERATED <= in_wheel
    assert {"kapso_gateway/__init__.py", "kapso_gateway/aio.py", "kapso_gateway/py.typed"} <= in_wheel
