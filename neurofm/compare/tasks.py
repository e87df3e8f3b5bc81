"""The tasks of a comparison: task configs named as shipped (``bcic_iv_2a``) or by path.

The shipped task configs are the YAML files of the repository's ``finetune/`` folder. A name
(``--tasks bcic_iv_2a``) is looked up there: in a checkout or an editable install, that is the
folder beside the ``neurofm`` package; elsewhere (a wheel install), ``finetune/`` in the working
directory. A path to a YAML file works everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neurofm.eval.settings import TaskConfig, read_task_config

#: The repository's folder of task configs (``<name>.yaml``), beside the ``neurofm`` package.
TASK_CONFIG_DIR = Path(__file__).resolve().parents[2] / "finetune"


def task_config_dir() -> Path:
    """The folder task names are looked up in: :data:`TASK_CONFIG_DIR` in a checkout, else
    ``finetune/`` in the working directory."""
    return TASK_CONFIG_DIR if TASK_CONFIG_DIR.is_dir() else Path("finetune")


def shipped_tasks() -> dict[str, Path]:
    """Name -> path of every shipped task config, sorted by name."""
    return {path.stem: path for path in sorted(task_config_dir().glob("*.yaml"))}


def find_task_config(name_or_path: str) -> Path:
    """The task config a ``--tasks`` entry names: a shipped name, or a path to a YAML file.

    Raises
    ------
    FileNotFoundError
        Neither a file nor a shipped name; the message lists the shipped names.
    """
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = shipped_tasks()
    if name_or_path in shipped:
        return shipped[name_or_path]
    looks_like_path = path.suffix in (".yaml", ".yml") or len(path.parts) > 1
    where = f"no file {path}" if looks_like_path else f"no shipped task {name_or_path!r}"
    raise FileNotFoundError(f"--tasks {name_or_path}: {where}. Name a shipped task "
                            f"({', '.join(shipped) or 'none found in ' + str(task_config_dir())}) "
                            "or give the path of a task config YAML.")


@dataclass(frozen=True)
class TaskEntry:
    """One ``--tasks`` entry, its config read and checked.

    Attributes
    ----------
    label : str
        As given on the command line (a column of the table).
    path : Path
        The task config file.
    config : TaskConfig
    """

    label: str
    path: Path
    config: TaskConfig

    @classmethod
    def read(cls, name_or_path: str) -> TaskEntry:
        path = find_task_config(name_or_path)
        return cls(name_or_path, path, read_task_config(path))

    def protocols(self, which: str = "all") -> list[str]:
        """The protocols the task is run with: its ``protocol`` (default ``cross-subject``),
        then, for ``which="all"``, each of ``also_protocols``."""
        main = self.config.protocol or "cross-subject"
        if which == "main":
            return [main]
        return [main, *[p for p in self.config.also_protocols or [] if p != main]]
