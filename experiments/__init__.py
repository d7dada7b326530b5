"""Reproduction of Henning, Choudhry & Ma (2021): Tables 1-2, learning curves and their figures.

Run as ``python -m experiments COMMAND`` (``make table1``/``table2``/``curves``); results accumulate in
``experiments/results/<budget>/`` (see experiments/README.md).
"""
