"""radflow.allocator: the command line keeps freed blocks for reuse, so repeated large temporaries stop faulting."""
from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates, fills and frees a 16 MB array 20 times (what extraction does with its temporaries) and prints the
# minor page faults that took; with the allocator set up first when argv[1] == "tuned".
SCRIPT = """
import resource, sys
import numpy as np
if sys.argv[1] == "tuned":
    from radflow.allocator import keep_freed_memory
    assert keep_freed_memory()
np.ones(2 << 20)  # numpy's own start-up allocations out of the count
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    block = np.empty(2 << 20)  # 16 MB
    block.fill(1.0)
    del block
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    result = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    plain, tuned = faults("plain"), faults("tuned")
    # 20 x 16 MB of fresh pages: 80,000 faults of 4 kB pages, or some 500 with transparent huge pages (each zeroing
    # 2 MB); reused, at most one block's worth (4,096 small pages) and a margin for the interpreter
    assert plain > 10 * max(tuned, 1), (plain, tuned)
    assert tuned < 4_096 + 500


def test_the_command_line_sets_it_up():
    """``radflow``'s main() sets the allocator up once, before the command runs."""
    code = ("import radflow.allocator as a; calls = []; original = a.keep_freed_memory;"
            "a.keep_freed_memory = lambda: calls.append(1) or original();"
            "from radflow.cli import main; main(['kernels', 'status']); print(len(calls))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "1"
