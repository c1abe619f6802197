"""The installed package is whole: its version agrees with the distribution metadata and its
compiled modules are extension modules (verb has no pure-Python fallback)."""

import importlib
import importlib.machinery
import importlib.metadata
import os

import pytest

import verb

COMPILED_MODULES = ["verb.core._mask", "verb.core._utf8", "verb.core._frame", "verb.core._deflate",
                    "verb.server._server", "verb.client._client", "verb.asgi._asgi"]
# Each layer's package and the files it must ship beside its modules: the .pxd contracts and
# C kernels (to cimport verb from Cython), the .pxi parts and the .pyi stubs.
LAYER_FILES = {
    "verb": ["py.typed"],
    "verb.core": ["_mask.pxd", "_mask_kernel.h", "_utf8.pxd", "_utf8_kernel.h", "_frame.pxd",
                  "_deflate.pxd", "_zlib.pxd", "_mask.pyi", "_utf8.pyi", "_frame.pyi",
                  "_deflate.pyi"],
    "verb.server": ["_server.pxd", "_transport.pxd", "_server.pyi", "hub.pxi", "websocket.pxi",
                    "connection.pxi"],
    "verb.app": [],
    "verb.client": ["_client.pyi"],
    "verb.cluster": [],
    "verb.asgi": ["_asgi.pyi"],
}


def test_version_matches_distribution_metadata():
    assert verb.__version__ == importlib.metadata.version("verb-ws")


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_module_is_compiled_extension(name):
    module = importlib.import_module(name)
    assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), module.__file__
    assert isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)


@pytest.mark.parametrize("name", sorted(LAYER_FILES))
def test_layer_package_ships_its_files(name):
    package = importlib.import_module(name)
    folder = os.path.dirname(package.__file__)
    missing = [f for f in LAYER_FILES[name] if not os.path.isfile(os.path.join(folder, f))]
    assert not missing, f"{name} lacks {missing} in {folder}"
