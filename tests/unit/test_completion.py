"""Shell completion for real: the generated script sourced in bash (and zsh, fish,
when installed; dev.sh installs them), asked what it completes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
EXUVIA = str(BIN / "exuvia")
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}

CASES = [
    (["exuvia", "ver"], {"verify"}),
    (["exuvia", "sal"], {"salvage"}),
    (["exuvia", "salvage", "x.exv.partial", "--si"], {"--sign"}),
    (["exuvia", "f"], {"findings"}),
    (["exuvia", "capture", "runc://x", "--files", ""], {"none", "changed", "small", "all"}),
    (["exuvia", "findings", "b.exv", "--output", ""], {"text", "json"}),
    (["exuvia", "findings", "b.exv", "--min"], {"--min-severity"}),
    (["exuvia", "completion", ""], {"bash", "zsh", "fish"}),
    (["kubectl-exuvia", "cap"], {"capture"}),
]


def _bash_words(shell: str, words: list[str]) -> set[str]:
    """What the completion function offers for ``words`` (the last one being typed).

    In zsh the function runs as zsh's bashcompinit runs it: inside its compgen,
    under ``emulate -L sh`` (0-based arrays, as in bash)."""
    arr = " ".join(f"'{w}'" for w in words)
    call = (
        f"COMP_WORDS=({arr}); COMP_CWORD={len(words) - 1}; _exuvia; "
        "printf '%s\\n' \"${COMPREPLY[@]}\""
    )
    if shell == "zsh":
        call = f"f() {{ emulate -L sh; setopt kshglob noshglob braceexpand; {call}; }}; f"
    prog = f"source <({EXUVIA} completion {shell}); {call}"
    r = subprocess.run([shell, "-c", prog], capture_output=True, text=True, env=ENV, check=False,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return {ln for ln in r.stdout.splitlines() if ln}


@pytest.mark.parametrize(("words", "want"), CASES)
def test_bash(words: list[str], want: set[str]) -> None:
    assert want <= _bash_words("bash", words)


def test_bash_completes_file_names(tmp_path: Path) -> None:
    (tmp_path / "web.exv").write_bytes(b"")
    os.chdir(tmp_path)
    assert _bash_words("bash", ["exuvia", "verify", "we"]) == {"web.exv"}


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (dev.sh installs it)")
@pytest.mark.parametrize(("words", "want"), CASES[:4])
def test_zsh(words: list[str], want: set[str]) -> None:
    assert want <= _bash_words("zsh", words)


@pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (dev.sh installs it)"
)
@pytest.mark.parametrize(("words", "want"), CASES)
def test_fish(words: list[str], want: set[str]) -> None:
    line = " ".join(words)
    prog = f"{EXUVIA} completion fish | source; complete -C '{line}'"
    r = subprocess.run(["fish", "-c", prog], capture_output=True, text=True, env=ENV,
                       check=False, timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    got = {ln.split("\t")[0] for ln in r.stdout.splitlines()}
    assert want <= got, r.stdout
