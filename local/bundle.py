"""Build the deploy bundle: the one source tree Cloud Functions builds all three functions from.

`make bundle` (python -m local.bundle) writes:

- `build/bundle/`: `main.py` (the three entry points), `shared/` (code, price table and the
  console's static files, `shared/api/ui/`),
  `requirements.txt` (the runtime dependencies of pyproject.toml, pinned to the versions of
  this environment: the tested set is the deployed set; no dev tools) and `config.yaml`
  (the model list; the functions get `VBG_CONFIG=config.yaml`).
- `build/bundle.zip`: the same, deterministic (sorted entries, fixed timestamps and modes),
  so unchanged code gives the same sha256 and Terraform does not redeploy.
- `build/bundle.json`: the sha256 of the zip and of the config inside; Terraform refuses to
  deploy a bundle whose config is not its `config_file`.

The config comes from `--config`, else from `config_file` in infra/terraform.tfvars (relative
to infra/, as Terraform reads it), else the bundle has none and says so.
"""

import argparse
import hashlib
import importlib.metadata
import json
import re
import shutil
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SHARED_SUFFIXES = (".py", ".json")
CONSOLE_DIR = Path("api") / "ui"  # under shared/: every file ships (html, js, css, licence)
ENTRY_POINTS = ("passthrough", "on_job_event", "on_output_finalized")


class BundleError(RuntimeError):
    """The bundle cannot be built; the message says what to fix."""


@dataclass(frozen=True)
class Bundle:
    directory: Path
    zip_path: Path
    manifest_path: Path
    sha256: str
    config_sha256: str | None
    requirements: tuple[str, ...]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _requirement_name(spec: str) -> tuple[str, str]:
    """('google-auth', '[requests]') from 'google-auth[requests]>=2.29,<3'."""
    match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?", spec)
    if not match:
        raise BundleError(f"pyproject.toml: cannot read the dependency {spec!r}")
    if ";" in spec:
        raise BundleError(f"pyproject.toml: environment markers are not supported: {spec!r}")
    return match.group(1), (match.group(2) or "").replace(" ", "")


def pinned_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """`[project.dependencies]` pinned to the installed versions (never the dev extras)."""
    with open(pyproject, "rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    pins = []
    for spec in dependencies:
        name, extras = _requirement_name(spec)
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise BundleError(
                f"{name} (a dependency in pyproject.toml) is not installed in {sys.prefix}: "
                "run `make bundle` (it installs the project first) or `pip install -e .`"
            ) from None
        pins.append(f"{name}{extras}=={version}")
    return sorted(pins, key=str.lower)


def tfvars_config(tfvars: Path = ROOT / "infra" / "terraform.tfvars") -> Path | None:
    """`config_file` from terraform.tfvars, resolved as Terraform does (relative to infra/)."""
    if not tfvars.is_file():
        return None
    match = re.search(r'^\s*config_file\s*=\s*"([^"]+)"', tfvars.read_text(), re.MULTILINE)
    if not match:
        return None
    path = Path(match.group(1))
    return path if path.is_absolute() else (tfvars.parent / path).resolve()


def _main_py(source: Path) -> str:
    text = source.read_text(encoding="utf-8")
    if re.search(r"^\s*(from|import)\s+functions\b", text, re.MULTILINE):
        raise BundleError(
            f"{source} imports the functions package: the bundle root is its own package "
            "root, so main.py may import only shared/ and third-party modules"
        )
    for name in ENTRY_POINTS:
        if not re.search(rf"^def {name}\(", text, re.MULTILINE):
            raise BundleError(f"{source} does not define the entry point {name}()")
    return text


def _zip(directory: Path, zip_path: Path) -> None:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def build(out_dir: Path = ROOT / "build", config: Path | None = None, root: Path = ROOT) -> Bundle:
    out_dir = Path(out_dir).resolve()
    directory = out_dir / "bundle"
    if directory.exists():
        shutil.rmtree(directory)
    (directory / "shared").mkdir(parents=True)

    (directory / "main.py").write_text(_main_py(root / "functions" / "main.py"), "utf-8")
    for path in sorted((root / "shared").rglob("*")):
        relative = path.relative_to(root / "shared")
        wanted = path.suffix in SHARED_SUFFIXES or CONSOLE_DIR in relative.parents
        if path.is_file() and wanted and "__pycache__" not in path.parts:
            target = directory / "shared" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    requirements = pinned_requirements(root / "pyproject.toml")
    (directory / "requirements.txt").write_text("\n".join(requirements) + "\n", "utf-8")

    config_sha256 = None
    if config is not None:
        config = Path(config)
        if not config.is_file():
            raise BundleError(f"the model list {config} does not exist (--config / config_file)")
        from shared.core.config import ConfigError, parse_model_list

        try:
            parse_model_list(config.read_text(encoding="utf-8"), source=str(config))
        except ConfigError as exc:
            raise BundleError(f"the model list is invalid: {exc}") from None
        shutil.copyfile(config, directory / "config.yaml")
        config_sha256 = _sha256(config)

    zip_path = out_dir / "bundle.zip"
    _zip(directory, zip_path)
    sha256 = _sha256(zip_path)
    manifest_path = out_dir / "bundle.json"
    manifest = {
        "sha256": sha256,
        "config_sha256": config_sha256,
        "requirements": requirements,
        "files": sorted(
            p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()
        ),
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return Bundle(directory, zip_path, manifest_path, sha256, config_sha256, tuple(requirements))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local.bundle", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output directory")
    parser.add_argument(
        "--config",
        type=Path,
        help="model list YAML to ship as config.yaml (default: config_file in "
        "infra/terraform.tfvars)",
    )
    args = parser.parse_args(argv)
    config = args.config or tfvars_config()
    try:
        bundle = build(args.out, config)
    except BundleError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 1
    if bundle.config_sha256 is None:
        print(
            "bundle: no model list shipped (no --config, no config_file in "
            "infra/terraform.tfvars): terraform will refuse this bundle",
            file=sys.stderr,
        )
    print(f"{bundle.zip_path} sha256={bundle.sha256}")
    print(f"config: {config or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
