"""Build hook for the one optional C module; all other metadata is in pyproject.toml.

iovkit.traffic._fastpath holds the reflector's echo loops in C (see its source for why). It is optional:
where it cannot be compiled (no C compiler, not POSIX) the install goes on and reflector.py runs the same loops in
Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "iovkit.traffic._fastpath",
            sources=["iovkit/traffic/_fastpath.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        )
    ]
)
