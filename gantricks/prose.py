"""Phrases a chapter glues into its prose as Markdown (chapters 7 and 8 quote their runs this way).

myst-nb's ``{glue:md}`` role pastes a glued value's ``text/markdown`` representation, parsed as inline Markdown, so
a phrase that depends on a run can name a symptom as code (`` `d_wins` ``); ``{glue:text}`` pastes ``text/plain``
verbatim, backticks included. Dollar math is not parsed in a pasted phrase (Jupyter Book 1 leaves ``$x$`` as it
is), so write symbols as text (γ, D(G(z))). IPython's ``Markdown`` object has the Markdown, but its plain text is
``<IPython.core.display.Markdown object>``, an object repr stored in the notebook. :class:`Prose` is a ``str`` that
also offers itself as Markdown, so its plain text is the phrase itself.
"""

from __future__ import annotations


class Prose(str):
    """A phrase for ``glue(name, Prose(text), display=False)`` and ``{glue:md}`name``` in a chapter's Markdown."""

    def _repr_markdown_(self) -> str:
        return str(self)
