"""Lifecycle actions over the phase registry, the way kolla-ansible dispatches `kolla_action`: a playbook phase runs
its playbook with affordml_action=<action> (its role includes <action>.yml); a Python phase runs the step
registered here for (phase, action). This layer knows every engine; each engine's module knows only its own."""

from __future__ import annotations

from importlib import import_module

from affordml.phases.registry import Phase

ACTIONS = ("deploy", "upgrade", "destroy")

# (phase, action) -> "module:function"; imported only when it runs, so the heavy engines stay unloaded.
PYTHON_ACTIONS: dict[tuple[str, str], str] = {
    ("ml", "destroy"): "affordml.lifecycle.destroy_steps:destroy_ml",
    ("gpu", "destroy"): "affordml.lifecycle.destroy_steps:destroy_gpu",
    ("kubernetes", "destroy"): "affordml.lifecycle.destroy_steps:destroy_kubernetes",
    ("cloud", "destroy"): "affordml.lifecycle.destroy_steps:destroy_cloud",
}


def has_action(phase: Phase, action: str) -> bool:
    """Whether the phase does something for the action: every playbook phase does (its role dispatches)."""
    return action == "deploy" or phase.kind == "playbook" or (phase.name, action) in PYTHON_ACTIONS


def run_action(phase: Phase, action: str, ctx) -> object:
    """Run one phase's action with ctx.action set; returns what the step returns (a run ident, a list removed)."""
    from affordml.errors import ConfigError

    if action not in ACTIONS:
        raise ConfigError(f"unknown lifecycle action {action!r}", f"use one of: {', '.join(ACTIONS)}")
    ctx.action = action
    if phase.kind == "playbook":
        from affordml.phases.steps import run_playbook

        return run_playbook(phase, ctx, action)
    if action == "deploy":
        from affordml.phases.steps import execute

        return execute(phase, ctx)
    target = PYTHON_ACTIONS.get((phase.name, action))
    if target is None:
        return None
    module, name = target.split(":")
    return getattr(import_module(module), name)(ctx)
