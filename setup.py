"""Builds the compiled parts (kernels, the model table's reads and codecs, shard rows);
everything else is declared in setup.cfg."""

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
                "sklearn_cirrus.model_table._reading",
                ["sklearn_cirrus/model_table/_reading.pyx"],
                extra_compile_args=["-O3", "-fno-math-errno"],
            ),
            Extension(
                "sklearn_cirrus.model_table._delta",
                ["sklearn_cirrus/model_table/_delta.pyx"],
                # (no fused multiply-adds: the rounding to half floats relies on it)
                extra_compile_args=["-O3", "-ffp-contract=off"],
            ),
            Extension(
                "sklearn_cirrus.data._hashing",
                ["sklearn_cirrus/data/_hashing.pyx"],
                extra_compile_args=["-O3"],
            ),
            Extension(
                "sklearn_cirrus.data._rows",
                ["sklearn_cirrus/data/_rows.pyx"],
                extra_compile_args=["-O3"],
            ),
        ],
        compiler_directives={"language_level": "3"},
    )
)
