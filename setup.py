"""Build of verb's compiled extensions.

Everything about how the extensions compile lives here: the list of modules, the Cython
directives, and the optimisation flags per compiler. There is no pure-Python fallback: a machine
without a working C compiler gets a clear error, not a slow package.

Environment switches:
    VERB_LINETRACE=1   compile with Cython line tracing (for coverage of the .pyx modules).
    VERB_DEBUG=1       -O0 -g, assertions on (for sanitizer builds and gdb).
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - build-system.requires provides Cython
    sys.exit(
        "verb: building from source needs Cython>=3 (it is in build-system.requires; "
        "if you disabled build isolation, `pip install cython` first)."
    )

if sys.platform == "win32":
    sys.exit(
        "verb: Windows is not supported yet (permessage-deflate links the system zlib, which "
        "Windows lacks). Use Linux or macOS, or WSL."
    )

LINETRACE = os.environ.get("VERB_LINETRACE") == "1"
DEBUG = os.environ.get("VERB_DEBUG") == "1"

COMPILER_DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "embedsignature": True,
    "linetrace": LINETRACE,
}

# The compiled modules: the sans-I/O core, then the connection layer, then the client.
# verb.server._server includes its parts (hub.pxi, websocket.pxi, connection.pxi).
EXTENSIONS = ["verb.core._mask", "verb.core._utf8", "verb.core._frame", "verb.core._deflate",
              "verb.server._server", "verb.client._client", "verb.asgi._asgi"]
# System libraries a module links against (module name -> library names).
LIBRARIES = {"verb.core._deflate": ["z"]}
# Where the C kernels (*_kernel.h) that the core's .pxd files declare are found.
INCLUDE_DIRS = ["verb/core"]

# Per compiler family. Never -march=native: a wheel must run on every CPU of its platform.
OPT_FLAGS = {
    "unix": ["-O3", "-fno-strict-aliasing"],
    "msvc": ["/O2"],
}
DEBUG_FLAGS = {
    "unix": ["-O0", "-g3", "-fno-omit-frame-pointer"],
    "msvc": ["/Od", "/Zi"],
}


class BuildExt(build_ext):
    """build_ext with per-compiler flags, one compiler job per CPU, and a clear message when no
    compiler works."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:  # six modules; -j halves the build on two cores (47 s -> 27 s)
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        family = "msvc" if self.compiler.compiler_type == "msvc" else "unix"
        flags = (DEBUG_FLAGS if DEBUG else OPT_FLAGS)[family]
        for ext in self.extensions:
            ext.extra_compile_args = flags + list(ext.extra_compile_args)
        try:
            super().build_extensions()
        except Exception as exc:  # CompileError, LinkError, DistutilsExecError, OSError
            raise SystemExit(
                "verb: compiling the C extensions failed ({}: {}). verb has no pure-Python "
                "fallback; install a C compiler and the Python headers (Debian: "
                "`apt-get install gcc python3-dev`), or install a prebuilt wheel.".format(
                    type(exc).__name__, exc
                )
            ) from exc


def extensions():
    macros = [("CYTHON_TRACE_NOGIL", "1")] if LINETRACE else []
    if not DEBUG:
        macros.append(("NDEBUG", "1"))
    exts = [
        Extension(
            name,
            [name.replace(".", "/") + ".pyx"],
            include_dirs=INCLUDE_DIRS,
            define_macros=macros,
            libraries=LIBRARIES.get(name, []),
        )
        for name in EXTENSIONS
    ]
    return cythonize(
        exts,
        compiler_directives=COMPILER_DIRECTIVES,
        annotate=os.environ.get("VERB_ANNOTATE") == "1",
        force=LINETRACE,
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
