"""Build logic of the Python binding that pyproject.toml cannot state.

- The version is the crate's: read from the Cargo.toml of the crate that is
  built, two directories up in a clone of the repository, or ``rust/`` in an
  sdist (which carries the crate there, see ``sdist`` below). The build
  writes it to ``wsembed/_version.py`` in the wheel (not in the source tree).
- The library is built by setuptools-rust (``Binding.NoBinding``: a plain
  cdylib, no PyO3) with cargo, and its debug info stripped; or, when
  ``WSEMBED_PREBUILT_LIBRARY=/abs/path/to/libwsembed.so`` is set, that file is
  copied into the package as is and cargo is not run (how
  ``bindings/python/build-wheel.sh`` packs the library it built once).
- Wheels are tagged ``py3-none-PLATFORM``: they hold a native library but
  nothing compiled against Python (ctypes loads it), so one wheel serves
  every CPython 3.8+ of that platform, where setuptools would say
  ``cp3X-cp3X``.
"""

import os
import shutil
import sys

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
PREBUILT_VAR = "WSEMBED_PREBUILT_LIBRARY"

# What building the library needs, relative to the crate's directory; an
# sdist carries these under rust/. benches/wsbench: Cargo.toml names its
# [[bench]] target's path, and cargo refuses a manifest whose path is missing.
CRATE_FILES = ["Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml", "src", "include"]
CRATE_FILES += ["benches/wsbench"]


def crate_dir():
    """The crate's directory, relative to this file's: rust/ in an sdist,
    else the repository's root."""
    for candidate in ("rust", os.path.join("..", "..")):
        if os.path.isfile(os.path.join(HERE, candidate, "Cargo.toml")):
            return candidate
    raise RuntimeError("wsembed: no Cargo.toml in rust/ nor two directories up from " + HERE)


def crate_version():
    with open(os.path.join(HERE, crate_dir(), "Cargo.toml"), "rb") as f:
        return tomllib.load(f)["package"]["version"]


VERSION = crate_version()


class build_py_with_version(build_py):
    """Writes wsembed/_version.py, and copies in the prebuilt library if
    there is one."""

    def run(self):
        super().run()
        if self.dry_run:
            return
        package_dir = os.path.join(self.build_lib, "wsembed")
        self.mkpath(package_dir)
        with open(os.path.join(package_dir, "_version.py"), "w") as f:
            f.write("# Written by setup.py from the crate's Cargo.toml.\n")
            f.write('__version__ = "{}"\n'.format(VERSION))
        prebuilt = os.environ.get(PREBUILT_VAR)
        if prebuilt:
            # An absolute path: the wheel may be built from an unpacked
            # sdist in a directory of its own.
            if not os.path.isabs(prebuilt) or not os.path.isfile(prebuilt):
                raise RuntimeError(
                    "{}={}: not an absolute path to a file".format(PREBUILT_VAR, prebuilt)
                )
            # Named as cargo names it on Linux, whatever the file is called.
            extension = os.path.splitext(prebuilt)[1]
            target = os.path.join(package_dir, "libwsembed" + extension)
            shutil.copyfile(prebuilt, target)
            os.chmod(target, 0o755)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [
            os.path.join(self.build_lib, "wsembed", "_version.py")
        ]


class sdist_with_crate(sdist):
    """Puts the crate in the sdist, under rust/, so the sdist builds on its
    own (with a Rust toolchain)."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        source = os.path.join(HERE, crate_dir())
        for name in CRATE_FILES:
            src = os.path.join(source, name)
            dst = os.path.join(base_dir, "rust", name)
            if os.path.isdir(src):
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                self.mkpath(os.path.dirname(dst))
                shutil.copyfile(src, dst)


class BinaryDistribution(Distribution):
    """A distribution with a native library: its wheel is a platform wheel,
    its files installed to platlib, even when setup.py compiles nothing
    (WSEMBED_PREBUILT_LIBRARY)."""

    def has_ext_modules(self):
        return True


class bdist_wheel_py3_none(bdist_wheel):
    """A platform wheel (it holds a native library) for any Python 3."""

    def get_tag(self):
        _, _, plat = super().get_tag()
        return "py3", "none", plat


def rust_extensions():
    from setuptools_rust import Binding, RustExtension, Strip

    return [
        RustExtension(
            # Places the cdylib in the package as wsembed/libwsembed<suffix>.
            "wsembed.libwsembed",
            path=os.path.join(crate_dir(), "Cargo.toml"),
            binding=Binding.NoBinding,
            # Debug info stays in target/ for those who build by hand; the
            # installed library only needs its symbols.
            strip=Strip.Debug,
        )
    ]


options = {}
if not os.environ.get(PREBUILT_VAR):
    options["rust_extensions"] = rust_extensions()

setup(
    version=VERSION,
    distclass=BinaryDistribution,
    cmdclass={
        "build_py": build_py_with_version,
        "sdist": sdist_with_crate,
        "bdist_wheel": bdist_wheel_py3_none,
    },
    **options
)
