"""`exuvia completion bash|zsh|fish`: shell completion, generated from the parser itself.

Commands, every command's options, and the values of options that have a fixed
set (``--files``, ``--format``, ``--output`` ...) complete; anything else
completes as a file name. ``kubectl-exuvia`` (the kubectl plugin) gets the same.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

SHELLS = ("bash", "zsh", "fish")
PROGS = ("exuvia", "kubectl-exuvia")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="Print the completion script for SHELL on stdout. bash: "
        "`source <(exuvia completion bash)` (or save it in "
        "/etc/bash_completion.d/exuvia); zsh: `source <(exuvia completion zsh)`; "
        "fish: `exuvia completion fish | source` (or save it in "
        "~/.config/fish/completions/exuvia.fish).",
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(handler=run)


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps subparsers here (stable since 3.2)
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(p: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """(every option string, {option: its fixed values})."""
    opts: list[str] = []
    values: dict[str, list[str]] = {}
    for action in p._actions:
        opts += action.option_strings
        if action.option_strings and action.choices is not None:
            for o in action.option_strings:
                values[o] = [str(c) for c in action.choices]
    return opts, values


def _positional_choices(p: argparse.ArgumentParser) -> list[str]:
    for action in p._actions:
        if not action.option_strings and action.choices is not None:
            return [str(c) for c in action.choices]
    return []


def bash_script(parser: argparse.ArgumentParser) -> str:
    cmds = _commands(parser)
    cases = []
    for name, sub in cmds.items():
        opts, values = _options(sub)
        value_cases = "".join(
            f"        {shlex.quote(o)}) COMPREPLY=($(compgen -W {shlex.quote(' '.join(v))}"
            ' -- "$cur")); return;;\n'
            for o, v in values.items()
        )
        words = " ".join(opts)
        first = " ".join(_positional_choices(sub))
        cases.append(
            f"    {shlex.quote(name)})\n"
            f"      opts={shlex.quote(words)}; first={shlex.quote(first)}\n"
            f'      case "$prev" in\n{value_cases}      esac;;\n'
        )
    top = " ".join([*cmds, "--help", "--version"])
    return (
        "# exuvia completion for bash (exuvia completion bash)\n"
        "_exuvia() {\n"
        '  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"\n'
        '  local cmd="${COMP_WORDS[1]}" opts="" first=""\n'
        "  COMPREPLY=()\n"
        '  if [ "$COMP_CWORD" -eq 1 ]; then\n'
        f'    COMPREPLY=($(compgen -W {shlex.quote(top)} -- "$cur")); return 0\n'
        "  fi\n"
        '  case "$cmd" in\n' + "".join(cases) + "  esac\n"
        '  if [[ "$cur" == -* ]]; then\n'
        '    COMPREPLY=($(compgen -W "$opts" -- "$cur"))\n'
        '  elif [ "$COMP_CWORD" -eq 2 ] && [ -n "$first" ]; then\n'
        '    COMPREPLY=($(compgen -W "$first" -- "$cur"))\n'
        "  else\n"
        '    COMPREPLY=($(compgen -f -- "$cur"))\n'
        "  fi\n"
        "}\n" + "".join(f"complete -o filenames -F _exuvia {p}\n" for p in PROGS)
    )


def zsh_script(parser: argparse.ArgumentParser) -> str:
    return (
        "#compdef exuvia kubectl-exuvia\n"
        "# exuvia completion for zsh (exuvia completion zsh): the bash one, through\n"
        "# zsh's bashcompinit\n"
        "autoload -U +X compinit && { (( $+functions[compdef] )) || compinit; }\n"
        "autoload -U +X bashcompinit && bashcompinit\n" + bash_script(parser)
    )


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(parser: argparse.ArgumentParser) -> str:
    cmds = _commands(parser)
    lines = ["# exuvia completion for fish (exuvia completion fish)"]
    for prog in PROGS:
        lines.append(f"complete -c {prog} -f")
        for name, sub in cmds.items():
            desc = _fish_quote(sub.description.split(".")[0][:60] if sub.description else name)
            lines.append(
                f"complete -c {prog} -n __fish_use_subcommand -a {_fish_quote(name)} -d {desc}"
            )
            cond = f"'__fish_seen_subcommand_from {name}'"
            _opts, values = _options(sub)
            for action in sub._actions:
                for o in action.option_strings:
                    flag = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
                    extra = ""
                    if o in values:
                        extra = f" -x -a {_fish_quote(' '.join(values[o]))}"
                    elif action.nargs != 0:
                        extra = " -r -F"
                    lines.append(f"complete -c {prog} -n {cond} {flag}{extra}")
            first = _positional_choices(sub)
            if first:
                lines.append(f"complete -c {prog} -n {cond} -a {_fish_quote(' '.join(first))}")
            else:
                lines.append(f"complete -c {prog} -n {cond} -F")
    return "\n".join(lines) + "\n"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash_script, "zsh": zsh_script, "fish": fish_script}[shell](parser)


def run(args: argparse.Namespace) -> int:
    from tui.cli import build_parser  # noqa: PLC0415 - the whole parser, built on demand

    print(script(args.shell, build_parser()), end="")
    return 0
