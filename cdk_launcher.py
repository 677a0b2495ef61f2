#!/usr/bin/env python3
"""What cdk.json runs for `npx cdk …`: app.py under a Python that has EMD's dependencies.

The python3 that cdk starts when it can import them (an activated venv, CI), else this checkout's .venv;
without either, one line saying what to do and exit 2 instead of a ModuleNotFoundError traceback.
Standard library only, and no syntax newer than Python 3.6: it runs under whatever python3 is on PATH.
"""

import importlib.util
import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "app.py")
VENV_PYTHONS = (
    os.path.join(HERE, ".venv", "bin", "python"),
    os.path.join(HERE, ".venv", "Scripts", "python.exe"),
)
# top-level modules app.py needs from EMD's dependencies (pyproject.toml)
REQUIRED = ("aws_cdk", "constructs", "cdk_nag", "pydantic", "yaml")
# set when this launcher re-runs itself under .venv's Python: a broken .venv must not loop
RELAUNCHED = "EMD_CDK_LAUNCHER_RELAUNCHED"


def missing_modules():
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def main():
    missing = missing_modules()
    if not missing:
        sys.argv[0] = APP
        runpy.run_path(APP, run_name="__main__")
        return
    venv_python = next((p for p in VENV_PYTHONS if os.path.exists(p)), None)
    if venv_python and not os.environ.get(RELAUNCHED):
        os.environ[RELAUNCHED] = "1"
        os.execv(venv_python, [venv_python, os.path.abspath(__file__), *sys.argv[1:]])
    sys.stderr.write(
        "error: {} cannot import {} (EMD's dependencies): run `make install` in {} (it creates .venv), "
        "or activate the virtualenv where EMD is installed, then rerun `npx cdk`\n".format(
            sys.executable, ", ".join(missing), HERE
        )
    )
    sys.exit(2)


if __name__ == "__main__":
    main()
