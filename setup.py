"""Builds the compiled worker kernels; everything else is declared in setup.cfg."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "sklearn_cirrus.kernels._sgd",
                ["sklearn_cirrus/kernels/_sgd.pyx"],
                extra_compile_args=["-O3", "-fno-math-errno"],
            ),
            Extension(
                "sklearn_cirrus.kernels._hashing",
                ["sklearn_cirrus/kernels/_hashing.pyx"],
                extra_compile_args=["-O3"],
            ),
            Extension(
                "sklearn_cirrus.kernels._delta",
                ["sklearn_cirrus/kernels/_delta.pyx"],
                # (no fused multiply-adds: the rounding to half floats relies on it)
                extra_compile_args=["-O3", "-ffp-contract=off"],
            ),
            Extension(
                "sklearn_cirrus.kernels._rows",
                ["sklearn_cirrus/kernels/_rows.pyx"],
                extra_compile_args=["-O3"],
            ),
        ],
        compiler_directives={"language_level": "3"},
    )
)
