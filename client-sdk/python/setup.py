"""Makes the generated ``kapso.gateway.v1`` modules part of every build of the package.

The ``.proto`` files in the repository's ``proto/`` are the contract; the Python code is
generated from them at build time (``build_py``) with grpcio-tools' bundled protoc, so a
built package cannot drift from the contract it was built from. An sdist carries a copy
of the ``.proto`` files in ``proto/`` so a wheel can be built from it alone.

Everything else (name, version, dependencies) is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).resolve().parent
# In an sdist the copy made by `Sdist`; in the repository, the contract itself.
PROTO_ROOTS = (HERE / "proto", HERE.parent.parent / "proto")
PACKAGE = Path("kapso", "gateway", "v1")


def proto_root() -> Path:
    for root in PROTO_ROOTS:
        if (root / PACKAGE).is_dir():
            return root
    raise SystemExit(f"kapso-gateway-client: no {PACKAGE}/*.proto under {' or '.join(map(str, PROTO_ROOTS))}")


def proto_files(root: Path) -> list:
    return sorted((root / PACKAGE).glob("*.proto"))


def generate(out: Path) -> None:
    """Writes kapso/gateway/v1/*_pb2.py, *_pb2.pyi and *_pb2_grpc.py under ``out``."""
    from grpc_tools import protoc  # a build requirement (pyproject.toml)

    root = proto_root()
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{root}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *map(str, proto_files(root)),
    ]
    if protoc.main(args) != 0:
        raise SystemExit(f"kapso-gateway-client: protoc failed on {root / PACKAGE}")


class BuildPy(build_py):
    """Copies the hand-written package, then generates the contract's modules beside it."""

    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib))


class Sdist(sdist):
    """Puts the .proto files into the sdist, which has no repository around it."""

    def make_release_tree(self, base_dir, files) -> None:
        super().make_release_tree(base_dir, files)
        root = proto_root()
        target = Path(base_dir, "proto", PACKAGE)
        target.mkdir(parents=True, exist_ok=True)
        for proto in proto_files(root):
            shutil.copy2(proto, target / proto.name)


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
