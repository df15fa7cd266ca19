"""The pytest11 entry point: the options at once, the plugin itself at configure time.

Importing the plugin (and with it refimpl, the engines and numpy) only in
``pytest_configure`` lets pytest-cov start measuring first, so coverage of
refimpl and oracle counts their module-level code.
"""


def pytest_addoption(parser):
    group = parser.getgroup("backprop-oracle", "backprop-oracle: lecture cases checked by three engines")
    group.addoption("--no-cases", action="store_true", default=False,
                    help="Do not collect case files; run only the Python tests.")


def pytest_configure(config):
    from oracle.harness import pytest_plugin

    config.pluginmanager.register(pytest_plugin, "backprop-oracle-cases")
