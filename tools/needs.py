#!/usr/bin/python3
"""needs: a clear message, not a traceback, when a tools/ script runs under a Python
that lacks what it imports. Every script here starts with #!/usr/bin/python3, the
Debian Python that has python3-torch, python3-torchvision, python3-pil and
python3-numpy; `python3` on a PATH (a virtualenv, pyenv, conda) may be another one.

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # tools/
    import needs  # noqa: E402
    needs.modules("numpy", "torch")"""
import importlib.util
import os
import sys

DEBIAN = {"torch": "python3-torch", "torchvision": "python3-torchvision", "PIL": "python3-pil",
          "numpy": "python3-numpy"}


def modules(*names):
    missing = [n for n in names if importlib.util.find_spec(n) is None]
    if missing:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        script = os.path.relpath(os.path.abspath(sys.argv[0]), root) if sys.argv[0] else "this script"
        sys.exit("%s needs %s, which %s (%s) does not have: run it with the Python that has them, "
                 "e.g. ./%s or /usr/bin/python3 %s (Debian packages: %s)"
                 % (script, ", ".join(missing), sys.executable, sys.version.split()[0], script, script,
                    " ".join(DEBIAN.get(n, n) for n in missing)))


if __name__ == "__main__":
    if any(a.startswith("-") for a in sys.argv[1:]):
        sys.exit(__doc__)
    modules(*(sys.argv[1:] or ["numpy", "torch", "torchvision", "PIL"]))
    print("%s has everything the tools need" % sys.executable)
