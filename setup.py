"""Build hook for the one optional C module; all other metadata is in pyproject.toml.

iovkit.traffic._fastpath holds the reflector's echo loops in C, iovkit.traffic._datapath the relay's data path,
the counting sink and GSO sends (see their sources for why). Both are optional:
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
        ),
        Extension(
            "iovkit.traffic._datapath",
            sources=["iovkit/traffic/_datapath.c"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            optional=True,
        ),
    ]
)
