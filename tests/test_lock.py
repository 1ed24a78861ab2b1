"""requirements/*.lock against pyproject.toml, against each other and against this environment.

`make lock` writes the locks, `make install` makes .venv exactly requirements/dev.lock; these
tests notice a pin changed without `make lock`, a lock edited by hand, and a .venv that drifted
from the lock (then `make install` again).
"""

import importlib.metadata
import re
import tomllib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DEV_LOCK = REPO / "requirements" / "dev.lock"
RUNTIME_LOCK = REPO / "requirements" / "runtime.lock"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
RUNTIME = [Requirement(line) for line in PYPROJECT["project"]["dependencies"]]
EXTRAS = [
    Requirement(line)
    for extra in PYPROJECT["project"]["optional-dependencies"].values()
    for line in extra
]
# What a venv holds before anything is installed, and Fanout itself (editable, not locked).
NOT_LOCKED = {"pip", "setuptools", "wheel", "fanout"}
# make install syncs .venv when pyproject.toml or the lock changed; its stamp forces it otherwise.
REINSTALL = "run make install (rm .venv/.installed first if the lock has not changed)"
ENVIRONMENT = {key: str(value) for key, value in default_environment().items()}


@dataclass(frozen=True)
class Locked:
    name: NormalizedName
    version: str
    requirement: Requirement  # name==version ; marker
    hashes: tuple[str, ...]

    def applies(self) -> bool:
        """Whether this line is for this Python and platform (a universal lock forks by them)."""
        marker = self.requirement.marker
        return marker is None or marker.evaluate(ENVIRONMENT)


def read_lock(path: Path) -> list[Locked]:
    """Every package line of a lock, its `\\`-continued --hash options joined to it."""
    logical: list[str] = []
    continued = False
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if continued:
            logical[-1] += " " + line.removesuffix("\\")
        else:
            logical.append(line.removesuffix("\\"))
        continued = line.endswith("\\")
    entries = []
    for line in logical:
        spec, *options = re.split(r"\s+(?=--)", line.strip())
        requirement = Requirement(spec)
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"{path.name}: {spec} is not pinned with =="
        hashes = tuple(o.removeprefix("--hash=") for o in options if o.startswith("--hash="))
        name = canonicalize_name(requirement.name)
        entries.append(Locked(name, pin.version, requirement, hashes))
    return entries


def applicable(entries: list[Locked]) -> dict[NormalizedName, Locked]:
    """The lock's line for each package this environment installs."""
    found: dict[NormalizedName, Locked] = {}
    for entry in entries:
        if entry.applies():
            assert entry.name not in found, f"{entry.name} is locked twice for this Python"
            found[entry.name] = entry
    return found


@pytest.fixture(scope="module")
def dev() -> list[Locked]:
    return read_lock(DEV_LOCK)


@pytest.fixture(scope="module")
def runtime() -> list[Locked]:
    return read_lock(RUNTIME_LOCK)


def installed() -> dict[NormalizedName, str]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }


def test_every_pin_of_pyproject_is_locked_at_a_version_it_allows(dev: list[Locked]) -> None:
    for lock, entries, requirements in (
        (DEV_LOCK, dev, RUNTIME + EXTRAS),
        (RUNTIME_LOCK, read_lock(RUNTIME_LOCK), RUNTIME),
    ):
        for requirement in requirements:
            name = canonicalize_name(requirement.name)
            versions = [entry.version for entry in entries if entry.name == name]
            assert versions, f"{requirement} is not in {lock.name}: run make lock"
            for version in versions:
                assert requirement.specifier.contains(version, prereleases=True), (
                    f"pyproject.toml asks for {requirement}, {lock.name} has {name}=={version}: "
                    "run make lock"
                )


def test_the_runtime_lock_is_the_dev_lock_without_the_extras(
    dev: list[Locked], runtime: list[Locked]
) -> None:
    """The image runs the versions the tests ran, with the same files (hashes). That it holds
    no dev tool is the closure test's: nothing [project].dependencies does not require."""
    in_dev = {(entry.name, entry.version): entry for entry in dev}
    for entry in runtime:
        twin = in_dev.get((entry.name, entry.version))
        assert twin is not None, (
            f"{RUNTIME_LOCK.name} has {entry.name}=={entry.version}, {DEV_LOCK.name} has "
            f"{[e.version for e in dev if e.name == entry.name]}: run make lock"
        )
        assert set(twin.hashes) == set(entry.hashes), entry.name


@pytest.mark.parametrize("lock", [DEV_LOCK, RUNTIME_LOCK], ids=lambda path: path.name)
def test_every_locked_package_has_its_hashes(lock: Path) -> None:
    entries = read_lock(lock)
    assert len(entries) > len(RUNTIME)
    for entry in entries:
        assert entry.hashes, f"{lock.name}: {entry.name}=={entry.version} has no --hash"
        for digest in entry.hashes:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), (entry.name, digest)
    header = lock.read_text().splitlines()[:2]
    assert header[1].strip("# ").startswith("uv pip compile pyproject.toml"), header
    assert f"-o requirements/{lock.name}" in header[1]  # the command that rewrites it


def test_this_environment_is_the_dev_lock(dev: list[Locked]) -> None:
    """What runs here is what is locked: an upgrade, a missing or an extra package is noticed."""
    have = installed()
    want = {name: entry.version for name, entry in applicable(dev).items()}
    drift = {
        name: f"locked {want.get(name)}, installed {have.get(name)}"
        for name in sorted(want.keys() | (have.keys() - NOT_LOCKED))
        if want.get(name) != have.get(name)
    }
    assert not drift, f".venv differs from {DEV_LOCK.name}: {REINSTALL}. {drift}"


@pytest.mark.parametrize(
    ("lock", "roots"),
    [(DEV_LOCK, RUNTIME + EXTRAS), (RUNTIME_LOCK, RUNTIME)],
    ids=["dev", "runtime"],
)
def test_the_lock_holds_what_its_packages_require(lock: Path, roots: list[Requirement]) -> None:
    """From pyproject's requirements, each package's own requirements (its installed metadata,
    with the extras asked of it, for this Python and platform) are locked at versions they allow.
    """
    locked = applicable(read_lock(lock))
    queue = deque((r, "pyproject.toml") for r in roots)
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while queue:
        requirement, wanted_by = queue.popleft()
        name = canonicalize_name(requirement.name)
        entry = locked.get(name)
        assert entry is not None, f"{wanted_by} requires {requirement}, not in {lock.name}"
        assert requirement.specifier.contains(entry.version, prereleases=True), (
            f"{wanted_by} requires {requirement}, {lock.name} has {entry.version}"
        )
        extras = frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist: importlib.metadata.Distribution | None = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            dist = None
        assert dist is not None, f"{name} is locked but not installed: {REINSTALL}"
        for line in dist.requires or []:
            needed = Requirement(line)
            if needed.marker is None or any(
                needed.marker.evaluate({**ENVIRONMENT, "extra": extra}) for extra in {"", *extras}
            ):
                queue.append((needed, f"{name}=={entry.version}"))
    unused = set(locked) - {name for name, _ in seen}
    assert not unused, f"{lock.name} locks what nothing here requires: run make lock. {unused}"
