"""What a reloaded configuration changes, and whether it needs a restart. Pure: nothing is applied."""

from __future__ import annotations

from dataclasses import dataclass

from monitor_service.config import MonitorConfig


@dataclass(frozen=True)
class ReloadPlan:
    """The difference between the running config and a new one."""

    restart_needed: tuple[str, ...]  # what only a restart can change (then nothing is applied)
    changed_models: tuple[str, ...]  # models whose settings differ
    new_references: tuple[str, ...]  # models whose reference file changed (to be read and checked)

    @property
    def applicable(self) -> bool:
        return not self.restart_needed


def plan_reload(running: MonitorConfig, new: MonitorConfig) -> ReloadPlan:
    """Drift settings, schedules, metrics, labels, moving reference, window max_age and the
    reference file apply to running models. Models added or removed, changed columns, window size
    or age_by, contracts or timestamps, and any change to `server` or `storage` need a restart."""
    restart: list[str] = []
    if [m.name for m in new.models] != [m.name for m in running.models]:
        restart.append("the list of models")
    if new.server != running.server or new.storage != running.storage:
        restart.append("server or storage settings")
    for section in ("reports", "exporters", "cluster"):
        if getattr(new, section) != getattr(running, section):
            restart.append(f"the {section} settings")
    changed: list[str] = []
    references: list[str] = []
    for model in new.models:
        old = running.model(model.name)
        if old is None:
            continue
        if model.columns != old.columns or model.window.max_rows != old.window.max_rows:
            restart.append(f"columns or window.max_rows of model {model.name!r}")
        if (
            model.contracts != old.contracts
            or model.timestamps != old.timestamps
            or model.window.age_by != old.window.age_by
        ):  # they shape the stored rows and the normalised reference
            restart.append(f"contracts, timestamps or window.age_by of model {model.name!r}")
        if model != old:
            changed.append(model.name)
        if model.reference != old.reference:
            references.append(model.name)
    return ReloadPlan(tuple(restart), tuple(changed), tuple(references))
