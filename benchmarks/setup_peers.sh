#!/usr/bin/env bash
# The peers of benchmarks/bench_features.py, each in the benchmark's own virtual environment (never a radflow
# dependency; benchmarks/.venv*/ is gitignored):
#   benchmarks/.venv-peers        Python 3.11: PyRadiomics 3.0.1, MIRP 2.7.0
#   benchmarks/.venv-peers-py312  Python 3.12: Pictologics 0.9.0 (it requires Python >= 3.12)
# PyRadiomics 3.0.1 does not build with a plain `pip install` (its setup needs numpy at build time) and not at all
# on Python 3.12 (its versioneer uses configparser.SafeConfigParser, removed in 3.12); built without build
# isolation on 3.11 it works, with the feature code of 3.1.0.
# Pictologics compiles its numba kernels at its first import (about 6 minutes on 2 busy cores, once; cached in
# its package folder), which this script triggers so that the benchmark does not time it.
#
#   bash benchmarks/setup_peers.sh            # PYTHON311=/path/python3.11 PYTHON312=/path/python3.12 to choose
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYRADIOMICS_VERSION=3.0.1
MIRP_VERSION=2.7.0
PICTOLOGICS_VERSION=0.9.0
NUMPY_311=2.4.6          # PyRadiomics' C extension is built against it; MIRP 2.7 needs numpy >= 2.4
SETUPTOOLS_311=65.5.0
WHEEL_311=0.48.0
VERSIONEER_311=0.29

find_python() {  # find_python 3.11 -> an interpreter of that version, or nothing
    local version="$1" candidate
    for candidate in "python${version}" "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/${version}"*/bin/python; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
            command -v "$candidate"
            return
        fi
    done
}

PYTHON311="${PYTHON311:-$(find_python 3.11)}"
PYTHON312="${PYTHON312:-$(find_python 3.12)}"
status=0

if [ -n "$PYTHON311" ]; then
    venv="$HERE/.venv-peers"
    "$PYTHON311" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "numpy==$NUMPY_311" "setuptools==$SETUPTOOLS_311" "wheel==$WHEEL_311" \
        "versioneer==$VERSIONEER_311"
    "$venv/bin/pip" install --quiet --no-build-isolation "pyradiomics==$PYRADIOMICS_VERSION" "numpy==$NUMPY_311"
    "$venv/bin/pip" install --quiet "mirp==$MIRP_VERSION" "numpy==$NUMPY_311"
    "$venv/bin/python" -c "import radiomics, mirp; print('PyRadiomics', radiomics.__version__, '+ MIRP ok')"
else
    echo "no Python 3.11 found (set PYTHON311): PyRadiomics and MIRP not installed" >&2
    status=1
fi

if [ -n "$PYTHON312" ]; then
    venv="$HERE/.venv-peers-py312"
    "$PYTHON312" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet "pictologics==$PICTOLOGICS_VERSION"
    echo "compiling Pictologics' kernels (first import; minutes) ..."
    NUMBA_NUM_THREADS=1 PICTOLOGICS_NUM_THREADS=1 \
        "$venv/bin/python" -c "import time; t = time.time(); import pictologics; print('Pictologics', pictologics.__version__, 'first import %.0f s' % (time.time() - t))"
else
    echo "no Python 3.12 found (set PYTHON312): Pictologics not installed" >&2
    status=1
fi
exit $status
