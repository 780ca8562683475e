"""The ``{name}`` placeholders of a workflow's command line."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# Only ``{word}`` is a placeholder; any other brace is literal text. Substitution runs this
# regex once over the template, so a substituted value is never scanned again: a value
# containing ``{python}`` stays literal.
PLACEHOLDER = re.compile(r"\{(\w+)\}")

PYTHON_PLACEHOLDER = "python"
"""The placeholder replaced by the worker's Python interpreter, not by a parameter."""

PYTHON_ON_NODE = "{" + PYTHON_PLACEHOLDER + "}"
"""Passed as the interpreter when only the node knows it (DIRAC): the command's first element
stays ``{python}``, and the job's wrapper puts the node's interpreter there."""


def find_placeholders(templates: Iterable[str]) -> set[str]:
    """Return the names of every placeholder in ``templates``.

    Parameters
    ----------
    templates
        Argument templates such as ``"--showers={showers_per_job}"``.

    Returns
    -------
    set of str
        The placeholder names, without braces.
    """
    return {match.group(1) for template in templates for match in PLACEHOLDER.finditer(template)}


def substitute(template: str, lookup: Callable[[str], str]) -> str:
    """Replace each placeholder in ``template`` by ``lookup(name)``, in a single pass.

    Parameters
    ----------
    template
        One argument template.
    lookup
        Returns the text for a placeholder name; raises ``KeyError`` for an unknown name.

    Returns
    -------
    str
        The template with every placeholder replaced.
    """
    return PLACEHOLDER.sub(lambda match: lookup(match.group(1)), template)
