"""Printing benchmark results as a Markdown table, and the machine they ran on."""

from __future__ import annotations

import os
import platform

import numpy as np
import scipy
import sklearn


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"scikit-learn {sklearn.__version__}"
    )


def print_table(headers: list[str], rows: list[list]) -> None:
    def cell(value):
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
