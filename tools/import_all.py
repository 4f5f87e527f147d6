#!/usr/bin/env python3
"""Import every module of one installed camshaft package (``nox -s standalone``).

Usage: ``python tools/import_all.py registry``

Walks ``camshaft.<name>`` with pkgutil and imports each module, so a module that
uses something the package does not declare fails here, in an environment that
holds only the package and what it declares. Also checks the module came from
site-packages, not from the source tree, so the installed wheel is what is tested.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys


def main(name: str) -> int:
    package = importlib.import_module(f"camshaft.{name}")
    location = package.__file__ or ""
    if "site-packages" not in location:
        print(f"camshaft.{name} was imported from {location}, not from the installed wheel")
        return 1
    imported = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(info.name)
        imported.append(info.name)
    if name == "registry" and "torch" in sys.modules:
        print("camshaft.registry imported torch; it must depend on the standard library only")
        return 1
    print(f"imported {len(imported)} module(s) of camshaft.{name} from {location}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
