"""A glued phrase is Markdown for {glue:md} and its own plain text, never an object repr."""

from __future__ import annotations

import ast

from IPython.core.formatters import format_display_data

from gantricks.prose import Prose


def test_a_phrase_is_displayed_as_markdown_with_its_text_as_plain_text() -> None:
    phrase = Prose("`d_wins` fires at step 200")
    data, _ = format_display_data(phrase)
    assert data["text/markdown"] == "`d_wins` fires at step 200"
    assert ast.literal_eval(data["text/plain"]) == str(phrase)  # what myst-nb's glue:text would paste
    assert "object" not in data["text/plain"] and isinstance(phrase, str)
