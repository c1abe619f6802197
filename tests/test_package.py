"""The installed package is whole: its version agrees with the distribution metadata and its
compiled modules are extension modules (verb has no pure-Python fallback)."""

import importlib
import importlib.machinery
import importlib.metadata

import pytest

import verb

COMPILED_MODULES = ["verb._mask", "verb._utf8", "verb._frame", "verb._deflate", "verb._protocol",
                    "verb._client"]


def test_version_matches_distribution_metadata():
    assert verb.__version__ == importlib.metadata.version("verb-ws")


@pytest.mark.parametrize("name", COMPILED_MODULES)
def test_module_is_compiled_extension(name):
    module = importlib.import_module(name)
    assert module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), module.__file__
    assert isinstance(module.__spec__.loader, importlib.machinery.ExtensionFileLoader)
