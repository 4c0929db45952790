"""What README.md tells a new user to type: the torch install, and where the probe cache is and how to clear it."""
import re
from pathlib import Path

from harness.runner import default_cache_dir

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _setup_section() -> str:
    """From the set-up code block to the paragraph after it."""
    start = README.index("```bash")
    return " ".join(README[start:README.index("\n\n", README.index("```\n", start + 7) + 4)].split())


def test_setup_says_which_torch_build_pip_picks():
    setup = _setup_section()
    assert "pip install torch==2.13.0" in setup and "CPU wheel of torch" not in setup
    assert "picks no CPU build by itself" in setup
    assert "GPU machine" in setup and "CPU-only machine" in setup and "CUDA" in setup
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in setup


def test_probe_cache_size_and_how_to_clear_it(monkeypatch):
    section = README[README.index("- Probe cache size"):]
    section = " ".join(section[:section.index("\n\n")].split())
    assert "examples x (tokens + 1) x hidden x 2" in section  # float16, as harness/features.py stores it
    assert re.search(r"\d+ MB", section) and "GB" in section
    assert "rm -rf ~/.cache/sla-bench" in section and "$SLA_BENCH_CACHE" in section and "--cache-dir" in section
    monkeypatch.delenv("SLA_BENCH_CACHE", raising=False)  # the folder the README names is the default
    assert default_cache_dir() == Path("~/.cache/sla-bench").expanduser()
    monkeypatch.setenv("SLA_BENCH_CACHE", "/tmp/elsewhere")
    assert default_cache_dir() == Path("/tmp/elsewhere")
