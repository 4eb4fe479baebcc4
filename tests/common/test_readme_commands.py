"""The README's commands parse with their own arguments, and by default none writes into docs/."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

from neg_agents.bench import BenchConfig
from neg_agents.cli import train, watch
from negdl.cli import parse_args

REPO = Path(__file__).resolve().parents[2]
#: The README and the site's guides, where the commands now live.
README = "\n".join(
    path.read_text()
    for path in [REPO / "README.md", REPO / "docs" / "getting-started.md",
                 *sorted((REPO / "docs" / "guide").glob("*.md"))]
)  # fmt: skip
#: Only scripts/update_docs.py writes into docs/.
DOCS_WRITER = "update_docs.py"
#: Argument fields that name something a command writes.
OUTPUT_FIELD = re.compile(r"out|output|dir$")


def script_args(name: str) -> type:
    """The ``Args`` dataclass of ``scripts/<name>``, imported without running the script."""
    spec = importlib.util.spec_from_file_location(f"readme_{name[:-3]}", REPO / "scripts" / name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module.Args


#: The supervised studies' installed commands and their arguments.
SUPERVISED = {
    f"negdl-{path.stem.replace('_', '-')}": importlib.import_module(
        f"supervised.cli.{path.stem}"
    ).Args
    for path in sorted((REPO / "supervised" / "cli").glob("*.py"))
    if path.stem not in ("__init__", "common")
}


def args_class(words: list[str]) -> tuple[type, list[str]]:
    """The arguments dataclass a command line parses into, and its arguments."""
    if words[0] == "negdl-train" or words[:3] == ["python", "-m", "neg_agents.cli.train"]:
        return train.Args, words[1 if words[0] != "python" else 3 :]
    if words[0] == "negdl-watch":
        return watch.Args, words[1:]
    if words[0] == "negdl-bench" or words[:3] == ["python", "-m", "neg_agents.cli.bench"]:
        return BenchConfig, words[1 if words[0] != "python" else 3 :]
    if words[0].startswith("negdl-") and words[0] in SUPERVISED:
        return SUPERVISED[words[0]], words[1:]
    if words[0] == "python" and words[1].startswith("scripts/"):
        return script_args(words[1].removeprefix("scripts/")), words[2:]
    raise AssertionError(f"not a negdl command: {words}")


def readme_commands() -> list[str]:
    """negdl commands in the README's shell blocks and inline code, comments dropped, chains split."""
    found = []
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    # A line ending in a backslash continues on the next one, as in the shell.
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    lines += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", prose)]
    for line in lines:
        for part in line.split("&&"):
            command = part.split(" #")[0].strip()
            if "<" in command:  # a pattern such as scripts/<name>.py, not a command
                continue
            if re.match(r"(negdl-[a-z-]+|python (scripts/|-m neg_agents\.cli\.))", command):
                found.append(command)
    return list(dict.fromkeys(found))


COMMANDS = readme_commands()


def test_the_readme_has_commands_of_every_kind():
    kinds = {args_class(shlex.split(command))[0] for command in COMMANDS}
    assert {train.Args, watch.Args, BenchConfig} <= kinds
    assert len(kinds) >= 8  # and the scripts
    assert sum(DOCS_WRITER in command for command in COMMANDS) >= 1


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_parses_and_writes_outside_docs(command):
    cls, argv = args_class(shlex.split(command))
    with pytest.raises(SystemExit) as exit_info:
        parse_args(cls, ["--help"], "readme")
    assert exit_info.value.code == 0
    args = parse_args(cls, argv, "readme")
    if DOCS_WRITER in command:
        return
    for field in dataclasses.fields(args):
        value = getattr(args, field.name)
        if OUTPUT_FIELD.search(field.name) and isinstance(value, str):
            assert not Path(value).parts[:1] == ("docs",), f"{command} writes {value}"


@pytest.mark.parametrize(
    "cls",
    [train.Args, watch.Args, BenchConfig]
    + [script_args(path.name) for path in sorted((REPO / "scripts").glob("*.py"))]
    + list(SUPERVISED.values()),
    ids=lambda cls: cls.__module__,
)
def test_default_outputs_stay_out_of_docs(cls):
    if cls.__module__.endswith(DOCS_WRITER[:-3]):
        return
    defaults = parse_args(cls, [], "defaults")
    for field in dataclasses.fields(defaults):
        value = getattr(defaults, field.name)
        if OUTPUT_FIELD.search(field.name) and isinstance(value, str):
            assert Path(value).parts[:1] != ("docs",), f"{cls.__module__}.{field.name} = {value}"
