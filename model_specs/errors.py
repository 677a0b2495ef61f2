"""Errors a user can cause. Each carries a message that names the bad value and what would be accepted."""

from __future__ import annotations

from collections.abc import Iterable


class EmdUserError(ValueError):
    """Bad input from the user: the CLI prints the message and exits 2, synth fails with the same text."""


class CatalogueError(Exception):
    """The catalogue data itself is invalid (a bug in model_specs/data, not a user mistake)."""


def did_you_mean(value: str, choices: Iterable[str], n: int = 3) -> str:
    """' Did you mean X?' for the closest choices (case-insensitive), or '' when nothing is close."""
    import difflib  # only on the error path: it costs every `emd` start ~0.6 ms

    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    matches = difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=0.6)
    if not matches:
        # substring match helps with ids like 'qwen2.5-7b' -> 'Qwen2.5-7B-Instruct'
        matches = [c for c in lowered if value.lower() in c][:n]
    if not matches:
        return ""
    names = [lowered[m] for m in matches]
    return " Did you mean " + " or ".join(repr(n) for n in names) + "?"


def unknown_value_error(kind: str, value: str, choices: Iterable[str], max_listed: int = 12) -> EmdUserError:
    """'unknown <kind> 'x'. Did you mean ...? Accepted: a, b, c' as an EmdUserError."""
    choices = sorted(choices)
    listed = ", ".join(choices[:max_listed]) + (
        f", … ({len(choices)} in all)" if len(choices) > max_listed else ""
    )
    return EmdUserError(f"unknown {kind} {value!r}.{did_you_mean(value, choices)} Accepted: {listed}")
