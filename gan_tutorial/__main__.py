"""``python -m gan_tutorial {train,sample,evaluate} ...``; see :mod:`gan_tutorial.cli`.

``main`` is also the ``gan-tutorial`` console script.
"""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m gan_tutorial"))
