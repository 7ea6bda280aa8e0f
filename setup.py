"""The four folders at the top of the repository install as one namespace, ``boundsweep.*``.

The wheel claims only ``boundsweep``: PyPI has other distributions named ``service``,
``workers`` and ``optimizers``, and installing one of them beside boundsweep must not break it.
pyproject.toml holds everything else; setuptools cannot map a folder to a dotted name there
and still find the sub-packages, so this file does only that.
"""

from setuptools import find_packages, setup

FOLDERS = ("optimizers", "studies", "workers", "service")

setup(
    package_dir={f"boundsweep.{folder}": folder for folder in FOLDERS},
    packages=[
        f"boundsweep.{name}"
        for folder in FOLDERS
        for name in (folder, *(f"{folder}.{sub}" for sub in find_packages(folder)))
    ],
)
