#!/usr/bin/env python3
"""Create and update the project's virtual environment (`make setup`).

Run with any CPython 3.11 (the ROS 2 Kilted wheels on PyPI are built for 3.11). Each step
checks whether it has work to do, so a second run changes nothing and takes seconds:

1. `.venv` at the repository root;
2. torch==2.13.0 first, on its own (a looser spec pulls several GB of CUDA packages);
3. every other dependency from `requirements.lock` (exact versions);
4. robosuite's private macros (otherwise it warns on every import);
5. the rosidl CMake exports shipped by the ROS wheels, rewritten to this interpreter's
   include directories (they carry the wheel builder's paths, and CMake fails on them);
6. the interface packages built with CMake and installed into the venv, so that
   `.venv/bin/python -c "from xwam_msgs.msg import ActionChunk"` works with no sourcing:
   `xwam_msgs`, and `interfaces/control_msgs` (the control_msgs actions the executor and the
   sim arm use) and `interfaces/tf2_msgs` (TFMessage, for /tf and /tf_static) only where they
   cannot be imported (a full ROS 2 install has both);
7. the project itself, editable;
8. a check, in a clean environment, that all three packages import, and a note on
   chromium, which the viewer's browser test drives (`apt-get install chromium`).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
STAMPS = VENV / ".xwam-setup"
# Interface packages: name -> source folder. Built when their sources change.
INTERFACE_PACKAGES = {
    "xwam_msgs": ROOT / "xwam_msgs",
    "control_msgs": ROOT / "interfaces" / "control_msgs",
    "tf2_msgs": ROOT / "interfaces" / "tf2_msgs",
}
# Built only where the environment does not already provide them (from a ROS 2 install).
BUILT_ONLY_WHERE_MISSING = {
    "control_msgs": "import control_msgs.action",
    "tf2_msgs": "import tf2_msgs.msg",
}
TORCH_SPEC = "torch==2.13.0"
# The include list of a generated rosidl Python export: the interpreter's and numpy's headers.
PY_INCLUDE_LINE = re.compile(r'INTERFACE_INCLUDE_DIRECTORIES "[^"]*python3\.\d+[^"]*numpy[^"]*"')


def say(message: str) -> None:
    print(f"[setup] {message}", flush=True)


def run(cmd: list[str], **kwargs) -> None:
    say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def venv_output(code: str) -> str:
    result = subprocess.run(
        [str(VENV_PYTHON), "-c", code], check=True, capture_output=True, text=True
    )
    return result.stdout.strip()


def digest(*paths: Path, extra: str = "") -> str:
    """A hash of the files under `paths` (sorted, content and relative name) and `extra`."""
    h = hashlib.sha256(extra.encode())
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def stamp_matches(name: str, value: str) -> bool:
    path = STAMPS / name
    return path.is_file() and path.read_text() == value


def write_stamp(name: str, value: str) -> None:
    STAMPS.mkdir(parents=True, exist_ok=True)
    (STAMPS / name).write_text(value)


def pip(*args: str) -> None:
    run([VENV_PYTHON, "-m", "pip", "--disable-pip-version-check", *args])


def ensure_venv(python: str) -> None:
    if VENV_PYTHON.exists():
        version = venv_output("import sys; print('%d.%d' % sys.version_info[:2])")
        if version != "3.11":
            sys.exit(
                f"[setup] {VENV} uses Python {version}; the ROS 2 wheels need 3.11. "
                "Remove .venv and run `make setup` again."
            )
        say(f"virtual environment: {VENV} (exists)")
        return
    say(f"virtual environment: creating {VENV} with {python}")
    run([python, "-m", "venv", VENV])
    pip("install", "--quiet", "--upgrade", "pip")


def ensure_torch() -> None:
    installed = venv_output(
        "from importlib.metadata import version, PackageNotFoundError\n"
        "try: print(version('torch'))\n"
        "except PackageNotFoundError: print('')"
    )
    if installed.split("+")[0] == TORCH_SPEC.split("==")[1]:
        say(f"torch: {installed} (installed)")
        return
    say(f"torch: installing {TORCH_SPEC} first (found {installed or 'none'})")
    pip("install", TORCH_SPEC)


def ensure_requirements() -> None:
    lock = ROOT / "requirements.lock"
    value = digest(lock)
    if stamp_matches("requirements", value):
        say("dependencies: requirements.lock already installed")
        return
    say("dependencies: installing requirements.lock (pinned; torch stays as installed)")
    # The constraint keeps any package in the lock from moving torch off the pin.
    constraint = STAMPS / "torch-constraint.txt"
    STAMPS.mkdir(parents=True, exist_ok=True)
    constraint.write_text(TORCH_SPEC + "\n")
    pip("install", "-r", str(lock), "-c", str(constraint))
    write_stamp("requirements", value)


def ensure_robosuite_macros() -> None:
    site = Path(venv_output("import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    private = site / "robosuite" / "macros_private.py"
    if private.exists():
        say("robosuite: private macros present")
        return
    say("robosuite: writing private macros (once)")
    run(
        [VENV_PYTHON, site / "robosuite" / "scripts" / "setup_macros.py"],
        cwd=site,
        stdout=subprocess.DEVNULL,
    )


def rewrite_rosidl_exports() -> None:
    """Point the Python include dirs of the rosidl exports at this interpreter and numpy.

    The wheels ship them with the wheel builder's paths; a numpy upgrade or downgrade moves
    numpy's headers too. So the include list is rewritten to what this venv has, whatever it
    held before; files that already match are left alone.
    """
    python_include = venv_output("import sysconfig; print(sysconfig.get_paths()['include'])")
    numpy_include = venv_output("import numpy; print(numpy.get_include())")
    wanted = f'INTERFACE_INCLUDE_DIRECTORIES "{python_include};{numpy_include}"'
    fixed = 0
    for path in (VENV / "share").glob("*/cmake/*__rosidl_generator_pyExport.cmake"):
        text = path.read_text(errors="replace")
        new_text = PY_INCLUDE_LINE.sub(wanted, text)
        if new_text != text:
            path.write_text(new_text)
            fixed += 1
    say(
        f"rosidl exports: rewrote {fixed} file(s) to {python_include} and {numpy_include}"
        if fixed
        else "rosidl exports: already point at this interpreter and numpy"
    )


def provided_elsewhere(name: str) -> bool:
    """Whether `name` imports in the venv without being one of our builds (a ROS install)."""
    check = BUILT_ONLY_WHERE_MISSING.get(name)
    if check is None or (STAMPS / name).exists():
        return False
    result = subprocess.run([str(VENV_PYTHON), "-c", check], capture_output=True)
    return result.returncode == 0


def ensure_interfaces(name: str, force: bool) -> None:
    """Build the interface package `name` into the venv unless it is built and unchanged."""
    source = INTERFACE_PACKAGES[name]
    if provided_elsewhere(name):
        say(f"{name}: provided by the ROS installation, not built")
        return
    numpy_version = venv_output("import numpy; print(numpy.__version__)")
    value = digest(source, extra=f"numpy={numpy_version}")
    installed = (VENV / "share" / name / "package.xml").exists()
    if installed and stamp_matches(name, value) and not force:
        say(f"{name}: built and installed (sources unchanged)")
        return
    cmake = shutil.which("cmake")
    if cmake is None:
        sys.exit(f"[setup] cmake not found: it is needed to build {name} (apt install cmake).")
    say(f"{name}: building the interface package with CMake (about 30 s)")
    build = ROOT / "build" / name
    env = dict(os.environ)
    env.update(
        AMENT_PREFIX_PATH=str(VENV),
        CMAKE_PREFIX_PATH=str(VENV),
        PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
        PYTHONNOUSERSITE="1",
    )
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    run(
        [
            cmake,
            "-S",
            source,
            "-B",
            build,
            f"-DCMAKE_INSTALL_PREFIX={VENV}",
            f"-DPython3_EXECUTABLE={VENV_PYTHON}",
            "-DBUILD_TESTING=OFF",
            "--log-level=WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    run(
        [cmake, "--build", build, "--parallel", str(os.cpu_count() or 2)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    run([cmake, "--install", build], env=env, stdout=subprocess.DEVNULL)
    write_stamp(name, value)


def ensure_project() -> None:
    value = digest(ROOT / "setup.py", ROOT / "setup.cfg", ROOT / "package.xml")
    if stamp_matches("project", value):
        say("xwam: installed editable")
        return
    say("xwam: installing the project editable (xwam_ros, xwam_model, the `xwam` command)")
    pip("install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(ROOT))
    write_stamp("project", value)


def check_imports() -> None:
    code = (
        "from xwam_msgs.msg import ActionChunk, PolicyStatus\n"
        "from xwam_msgs.srv import SetInstruction, StartEpisode, StopEpisode\n"
        "from control_msgs.action import FollowJointTrajectory, GripperCommand\n"
        "from control_msgs.action import ParallelGripperCommand\n"
        "from tf2_msgs.msg import TFMessage\n"
        "import rclpy, torch, xwam_model, xwam_ros\n"
        "print(torch.__version__)"
    )
    result = subprocess.run(
        [str(VENV_PYTHON), "-c", code],
        env={"HOME": os.environ.get("HOME", "/tmp")},
        capture_output=True,
        text=True,
        cwd="/",
    )
    if result.returncode != 0:
        sys.exit(f"[setup] the environment does not import cleanly:\n{result.stderr}")
    say(
        f"check: xwam_msgs, control_msgs, tf2_msgs, rclpy, torch {result.stdout.strip()}, "
        "xwam_model and xwam_ros import in a clean environment"
    )


def note_chromium() -> None:
    """The viewer's browser test (test/xwam_ros/viewer) drives Debian's chromium: say how to
    get it when it is missing (a system package: setup does not install it)."""
    if shutil.which("chromium"):
        say(f"chromium: {shutil.which('chromium')} (for the viewer's browser test)")
    else:
        say(
            "chromium: not found; the viewer's browser test in `make test` needs it: "
            "`sudo apt-get install chromium` (Debian; .ci/run installs it)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--python",
        default=os.environ.get("PYTHON", "python3.11"),
        help="interpreter that creates the venv (CPython 3.11)",
    )
    parser.add_argument(
        "--rebuild-msgs",
        action="store_true",
        help="rebuild the interface packages (xwam_msgs, control_msgs, tf2_msgs) even when "
        "unchanged",
    )
    args = parser.parse_args()
    start = time.monotonic()
    ensure_venv(args.python)
    ensure_torch()
    ensure_requirements()
    ensure_robosuite_macros()
    rewrite_rosidl_exports()
    for name in INTERFACE_PACKAGES:
        ensure_interfaces(name, args.rebuild_msgs)
    ensure_project()
    check_imports()
    note_chromium()
    say(f"done in {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main()
