"""Checks of a ``python -m monai.bundle run ...`` command line, and short error messages.

MONAI's bundle command line (``python -m monai.bundle run``, parsed by ``fire``) accepts any
``--key value`` and adds an unknown key to the config silently, so ``--num_epoch 1`` (for
``--num_epochs``) trains for the default number of epochs. The bundle's configs call
:func:`check_command_line` first thing in their ``initialize`` list; when the process is that
command line it

* refuses an override key that is not in the config files (nor a MONAI ``run`` argument), with
  the closest valid key (``difflib``), before any data is read or any network built;
* checks a few values that would otherwise fail minutes later (``--network_name``,
  ``--normalisation``, ``--profile``, and that ``--input_path``, ``--dataset_dir`` and
  ``--datalist_file`` exist);
* installs a ``sys.excepthook`` that ends an error with one line saying what is wrong and which
  override set it, instead of MONAI's 60-70 lines of nested tracebacks. ``MONAI_BAC_DEBUG=1``
  keeps the full traceback.

In any other process (``ConfigWorkflow`` used from Python, pytest) it does nothing: the command
line is only read when ``sys.argv[0]`` is ``monai/bundle/__main__.py`` and the command is ``run``.
An intentionally new key is accepted with ``MONAI_BAC_ALLOW_NEW_KEYS=1``.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator

__all__ = ["check_command_line", "check_overrides", "parse_overrides", "is_bundle_command_line",
           "short_error", "install_excepthook", "OverrideError", "DEBUG_ENV"]

DEBUG_ENV = "MONAI_BAC_DEBUG"
ALLOW_NEW_KEYS_ENV = "MONAI_BAC_ALLOW_NEW_KEYS"

_checked = False


class OverrideError(ValueError):
    """A command-line override that names no config key, or a value that cannot work."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def is_bundle_command_line(argv: list[str] | None = None) -> bool:
    """True when this process is ``python -m monai.bundle run ...`` (also under ``torchrun -m``)."""
    argv = sys.argv if argv is None else argv
    if len(argv) < 2 or argv[1] != "run":
        return False
    main = Path(argv[0])
    return main.name == "__main__.py" and main.parent.name == "bundle" and main.parent.parent.name == "monai"


def _is_flag(token: str) -> bool:
    """fire's notion of a flag: ``--name`` or ``-x`` (``-1`` is a value)."""
    return token.startswith("--") or re.match(r"^-[a-zA-Z]", token) is not None


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``--key value`` / ``--key=value`` / bare ``--flag`` pairs of a ``monai.bundle run`` command
    line (the tokens after ``run``), keyed as fire passes them to ``run(**override)`` (``-`` read as
    ``_``; MONAI's ``::`` separator read as ``#``). Values stay strings; a bare flag is True."""
    pairs: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":  # fire's own flags (--help, --trace, ...) follow
            break
        if not _is_flag(token):
            i += 1  # a positional argument: the run id
            continue
        key, eq, value = token.lstrip("-").partition("=")
        key = key.replace("-", "_").replace("::", "#")
        if eq:
            pairs[key] = value
        elif i + 1 < len(args) and not _is_flag(args[i + 1]):
            pairs[key] = args[i + 1]
            i += 1
        else:
            pairs[key] = True
        i += 1
    return pairs


def _literal(value: Any) -> Any:
    """A command-line value as fire would give it (``"['a.json','b.json']"`` -> a list)."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _ids(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every id of a config (``a``, ``a#b``, ``a#0``) with its content."""
    if prefix:
        yield prefix, config
    if isinstance(config, dict):
        for key, value in config.items():
            yield from _ids(value, f"{prefix}#{key}" if prefix else str(key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            yield from _ids(value, f"{prefix}#{index}" if prefix else str(index))


def _run_arguments() -> set[str]:
    """Keyword arguments that MONAI's ``run`` / ``create_workflow`` / ``ConfigWorkflow`` take themselves."""
    from monai.bundle import ConfigWorkflow
    from monai.bundle.scripts import create_workflow, run

    names = set()
    for fn in (run, create_workflow, ConfigWorkflow.__init__):
        names |= {p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}
    return names


def _config_files(pairs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The config file(s) of the command line and the overrides an ``--args_file`` adds."""
    from monai.bundle import ConfigParser

    from_args_file: dict[str, Any] = {}
    if "args_file" in pairs:
        from_args_file = dict(ConfigParser.load_config_file(str(pairs["args_file"])))
    files = _literal(pairs.get("config_file", from_args_file.pop("config_file", None)))
    return files, from_args_file


def _check_values(pairs: dict[str, Any], config: dict) -> list[str]:
    """Problems with values that would otherwise fail only after data loading."""
    problems = []

    def choose(key: str, choices) -> None:
        if key in pairs and str(pairs[key]) not in choices:
            close = difflib.get_close_matches(str(pairs[key]), list(choices), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"--{key} {pairs[key]}: not one of {', '.join(sorted(choices))}{hint}")

    if "network_name" in config:
        from monai_bac.networks import NETWORKS

        choose("network_name", NETWORKS)
    if "normalisation" in config:
        from monai_bac.transforms.pipeline import NORMALISATIONS

        choose("normalisation", NORMALISATIONS)
    if isinstance(config.get("profiles"), dict):
        choose("profile", config["profiles"])
    for key, test, what in (("input_path", os.path.exists, "does not exist"),
                            ("dataset_dir", os.path.isdir, "is not a folder"),
                            ("datalist_file", os.path.isfile, "is not a file"),
                            ("bundle_root", os.path.isdir, "is not a folder")):
        value = pairs.get(key)
        if key in config and isinstance(value, str) and value.lower() not in ("none", "null") and not test(value):
            problems.append(f"--{key} {value}: {value} {what}")
    return problems


def check_overrides(pairs: dict[str, Any]) -> None:
    """Raise :class:`OverrideError` naming every override that is not a key of the config files
    (with the closest valid key) and every value that cannot work."""
    from monai.bundle import ConfigParser
    from monai.bundle.utils import DEFAULT_EXP_MGMT_SETTINGS

    files, from_args_file = _config_files(pairs)
    if files is None:
        return  # MONAI reports the missing config file itself
    config = ConfigParser.load_config_files(files)
    ids = dict(_ids(config))
    known = set(ids) | _run_arguments()
    tracking = pairs.get("tracking", from_args_file.get("tracking"))
    if isinstance(tracking, str) and tracking in DEFAULT_EXP_MGMT_SETTINGS:
        known |= set(DEFAULT_EXP_MGMT_SETTINGS[tracking].get("configs", {}))
    names = ", ".join(Path(f).name for f in (files if isinstance(files, (list, tuple)) else str(files).split(",")))
    problems = []
    for key in list(from_args_file) + list(pairs):
        if key in known or key.startswith("_meta_"):
            continue
        parent = key.rsplit("#", 1)[0] if "#" in key else None
        if parent is not None and isinstance(ids.get(parent), dict) and "_target_" in ids[parent]:
            continue  # a new keyword argument of a component: the component itself checks it
        if _env_flag(ALLOW_NEW_KEYS_ENV):
            continue
        pool = [i for i in ids if "#" not in i] if parent is None else [i for i in ids if i.startswith(f"{parent}#")]
        close = difflib.get_close_matches(key, pool or list(ids), n=1, cutoff=0.6)
        hint = f"did you mean --{close[0]}?" if close else f"valid keys are listed in {names}"
        problems.append(f"--{key} is not a key of {names} ({hint})")
    if not problems:
        problems = _check_values({**from_args_file, **pairs}, config)
    if problems:
        new_keys = f" ({ALLOW_NEW_KEYS_ENV}=1 adds new keys on purpose)" if "not a key" in problems[0] else ""
        raise OverrideError("; ".join(problems) + new_keys)


# ------------------------------------------------------------------------------------- errors
def _chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
    return chain


_WRAPPER = re.compile(r"^Failed to (?:instantiate component '([^']+)'|evaluate ConfigExpression:\s*\"?(.*?)\"?$)",
                      re.DOTALL)


def short_error(exc: BaseException, overrides: dict[str, Any] | None = None) -> str:
    """One line for an exception raised through MONAI's config machinery: the innermost error's
    type and message, the component being built, and the command-line override that set it."""
    chain = _chain(exc)
    root = chain[-1]
    message = " ".join(str(root).split()) or type(root).__name__
    if isinstance(root, OverrideError):  # names the overrides itself
        return f"error: {message}"
    context = ""
    for wrapper in reversed(chain[:-1]):  # the innermost MONAI wrapper names the component
        m = _WRAPPER.match(str(wrapper).strip())
        if m and m.group(1):
            context = f" (building {m.group(1)})"
            break
    culprits = [f"--{k} {v}" for k, v in (overrides or {}).items()
                if (isinstance(v, str) and len(v) > 1 and v in message) or f"'{k.rsplit('#', 1)[-1]}'" in message]
    source = f"; set by {', '.join(culprits)}" if culprits else ""
    hint = ""
    if isinstance(root, FileNotFoundError) and str(getattr(root, "filename", "")).endswith("model.pt"):
        hint = ("; no trained model yet: train first (python -m monai.bundle run training --config_file "
                "bundle/configs/train.json), or pass --bundle_root of a trained bundle")
    return f"error: {type(root).__name__}: {message}{context}{source}{hint}"


def install_excepthook(overrides: dict[str, Any] | None = None) -> None:
    """Replace the traceback of an uncaught error by two lines (unless ``MONAI_BAC_DEBUG=1``)."""
    if _env_flag(DEBUG_ENV):
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return
        try:
            line = short_error(exc, overrides)
        except Exception:  # never hide an error behind a failing error report
            previous(exc_type, exc, tb)
            return
        print(f"monai-bac: the bundle run stopped; rerun with {DEBUG_ENV}=1 for the full traceback\n{line}",
              file=sys.stderr, flush=True)

    sys.excepthook = hook


def check_command_line(argv: list[str] | None = None) -> bool:
    """Check the overrides of a ``python -m monai.bundle run`` command line (see the module doc)
    and shorten its error messages; returns whether it was such a command line. Called from the
    configs' ``initialize`` list, so it runs before any data is read."""
    global _checked
    argv = sys.argv if argv is None else argv
    if not is_bundle_command_line(argv):
        return False
    pairs = parse_overrides(argv[2:])
    if not _checked:
        install_excepthook(pairs)
        _checked = True
    check_overrides(pairs)
    return True
