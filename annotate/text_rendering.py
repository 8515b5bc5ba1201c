"""Inputs, outputs and references as a person reads them: Markdown, chat transcripts, code.

Every text shown on the grading, pairwise and meeting pages goes through `render_reading`.
The texts come from LLMs and from uploads, so they are hostile: Markdown is parsed with raw
HTML off (markdown-it escapes it), and the HTML that comes out is cleaned again by nh3 against
an allow-list, so a bug in one wall is not a script in an annotator's session. Images are
never loaded (the app works offline, and a remote image is a tracking pixel): they become links.

Pure module: no Django import, so it is tested and timed alone.
"""

from __future__ import annotations

import difflib
import html
import json
import re
from dataclasses import dataclass
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# About a screen of text; the rest waits behind "Show all" (as annotate/templatetags/long_text).
SHOWN_CHARACTERS = 3000
# markdown-it-py renders about 150 KB/s on this machine: above this size a text is shown as
# plain text, so a first view never costs more than about a third of a second.
MAX_RENDERED_CHARACTERS = 50_000
# Guessing a language runs every lexer's heuristic; beyond this size a block stays plain.
MAX_GUESSED_CHARACTERS = 5_000
# Pygments' heuristics score 0..1; below this the guess is as likely wrong as right, and a
# wrongly coloured block reads worse than a plain one.
CONFIDENT_GUESS = 0.5
# Word diffs are quadratic in the worst case (difflib); beyond this many words per side the
# diff view says so instead of stalling the page.
MAX_DIFF_WORDS = 5_000
CACHED_TEXTS = 512

CHAT_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}

_ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li",
    "strong", "em", "s", "del", "ins", "code", "pre", "a", "span", "div",
    "table", "thead", "tbody", "tr", "th", "td",
}
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    # class values are limited by _ALLOWED_CLASSES below (nh3 wants them in one place only).
    "pre": {"data-language"},
}
_ALLOWED_CLASSES = {
    "pre": {"code-block"},
    "span": {name for name in STANDARD_TYPES.values() if name},
    "div": {"chat", "message", "message-content", "role"} | {f"role-{r}" for r in CHAT_ROLES}
    | {"role-other"},
}
_URL_SCHEMES = {"http", "https", "mailto"}
_LINK_REL = "noopener noreferrer nofollow"

_formatter = HtmlFormatter(nowrap=True)


@dataclass(frozen=True)
class Reading:
    """A text ready to show: `head` is shown, `tail` waits behind "Show all" (empty when the
    text is short). Both are safe HTML. `kind` is markdown, chat or plain."""

    kind: str
    head: str
    tail: str
    total: int


@lru_cache(maxsize=128)
def _lexer_named(name: str):
    """The lexer for a fence's language, or None. Looking a name up walks Pygments' whole
    lexer table, and the same few names come back on every text; lexers keep no state
    between texts, so one instance per name serves them all."""
    try:
        return get_lexer_by_name(name)
    except ClassNotFound:
        return None


def _highlight_fence(code: str, language: str, _attrs: object) -> str:
    lexer = None
    name = (language or "").strip().split(maxsplit=1)[0] if language and language.strip() else ""
    if name:
        lexer = _lexer_named(name.lower()[:64])
    elif len(code) <= MAX_GUESSED_CHARACTERS:
        lexer = _confident_guess(code)
    if lexer is None:
        body = html.escape(code)
        label = ""
    else:
        body = highlight(code, lexer, _formatter)
        label = f' data-language="{html.escape(lexer.aliases[0] if lexer.aliases else lexer.name)}"'
    # markdown-it uses the highlighter's answer as is when it starts with <pre.
    return f'<pre class="code-block"{label}><code>{body}</code></pre>\n'


def _confident_guess(code: str):
    try:
        lexer = guess_lexer(code)
    except ClassNotFound:
        return None
    if lexer.name == "Text only" or lexer.analyse_text(code) < CONFIDENT_GUESS:
        return None
    return lexer


def _markdown() -> MarkdownIt:
    # breaks: a single newline stays a line break, as LLM answers and chat UIs expect.
    parser = MarkdownIt(
        "commonmark", {"html": False, "breaks": True, "highlight": _highlight_fence}
    ).enable(["table", "strikethrough"])
    parser.add_render_rule("image", _image_as_link)
    return parser


def _image_as_link(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    alt = self.renderInlineAsText(token.children or [], options, env) or "image"
    src = html.escape(token.attrGet("src") or "")
    return f'<a href="{src}">[image: {html.escape(alt)}]</a>'


_md = _markdown()


def _clean(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        allowed_classes=_ALLOWED_CLASSES,
        url_schemes=_URL_SCHEMES,
        link_rel=_LINK_REL,
        strip_comments=True,
    )


def _plain(text: str) -> str:
    return f'<pre class="text">{html.escape(text)}</pre>'


def markdown_html(text: str) -> str:
    """`text` as clean HTML, rendered whole."""
    return _clean(_md.render(text))


def _markdown_split(text: str) -> tuple[str, str] | None:
    """The text rendered as two halves cut between top-level blocks, so neither half has an
    unclosed list or code fence; None when the first block alone is too long to cut."""
    tokens = _md.parse(text)
    line_starts = [0]
    for match in re.finditer("\n", text):
        line_starts.append(match.end())
    cut = None
    for index, token in enumerate(tokens):
        if index == 0 or token.level != 0 or token.nesting == -1 or not token.map:
            continue
        if line_starts[token.map[0]] > SHOWN_CHARACTERS:
            break
        cut = index
    if cut is None:
        return None
    render = _md.renderer.render
    return (_clean(render(tokens[:cut], _md.options, {})),
            _clean(render(tokens[cut:], _md.options, {})))


# -- chat transcripts --------------------------------------------------------------------------

@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


def chat_messages(text: str) -> list[ChatMessage] | None:
    """The messages of an OpenAI-style transcript (a JSON list of {"role", "content"}, or an
    object holding one under "messages"); None for anything else, which then stays text."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(value, dict) and set(value) >= {"messages"}:
        value = value["messages"]
    if not isinstance(value, list) or not value:
        return None
    messages = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("role"), str):
            return None
        content = _message_text(item.get("content"))
        if content is None:
            return None
        if item.get("tool_calls"):
            calls = json.dumps(item["tool_calls"], indent=2, ensure_ascii=False)
            content = f"{content}\n\n```json\n{calls}\n```" if content else f"```json\n{calls}\n```"
        messages.append(ChatMessage(item["role"], content))
    return messages


def _message_text(content: object) -> str | None:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append(part["text"])
        elif isinstance(part, dict) and isinstance(part.get("type"), str):
            # Images and audio are not fetched (offline); the reader learns one was there.
            parts.append(f"*[{part['type']} part not shown]*")
        else:
            return None
    return "\n\n".join(parts)


def _message_html(message: ChatMessage) -> str:
    role_class = f"role-{message.role}" if message.role in CHAT_ROLES else "role-other"
    content = message.content
    body = markdown_html(content) if len(content) <= MAX_RENDERED_CHARACTERS else _plain(content)
    return (f'<div class="message {role_class}"><div class="role">{html.escape(message.role)}</div>'
            f'<div class="message-content">{body}</div></div>\n')


def _chat_reading(messages: list[ChatMessage], total: int) -> Reading:
    head, tail, shown = [], [], 0
    for message in messages:
        # The first message is always shown, however long; later ones once a screen is full.
        (head if not head or shown < SHOWN_CHARACTERS else tail).append(_message_html(message))
        shown += len(message.content)
    wrap = '<div class="chat">{}</div>'.format
    return Reading("chat", wrap("".join(head)), wrap("".join(tail)) if tail else "", total)


# -- the one entry point -----------------------------------------------------------------------

@lru_cache(maxsize=CACHED_TEXTS)
def render_reading(text: str) -> Reading:
    """How `text` is shown: a chat transcript, Markdown, or (too long) plain text."""
    total = len(text)
    messages = chat_messages(text) if total <= MAX_RENDERED_CHARACTERS else None
    if messages is not None:
        return _chat_reading(messages, total)
    if total > MAX_RENDERED_CHARACTERS:
        return Reading("plain", "", "", total)
    if total <= SHOWN_CHARACTERS:
        return Reading("markdown", markdown_html(text), "", total)
    halves = _markdown_split(text)
    if halves is None:
        return Reading("plain", "", "", total)
    return Reading("markdown", halves[0], halves[1], total)


# -- differences from the reference ----------------------------------------------------------

# A word with the whitespace after it; words are compared without it, so a re-wrapped line is
# not a change and a lone space never counts as a match between two unrelated passages.
_WORDS = re.compile(r"\s+|\S+\s*")


@lru_cache(maxsize=CACHED_TEXTS)
def word_diff_html(reference: str, output: str) -> str | None:
    """The output against the reference, word by word: words only in the output in <ins>,
    words only in the reference in <del>. None when either side is too long to compare."""
    old = _WORDS.findall(reference)
    new = _WORDS.findall(output)
    if len(old) > MAX_DIFF_WORDS or len(new) > MAX_DIFF_WORDS:
        return None
    pieces = []
    matcher = difflib.SequenceMatcher(
        None, [w.strip() for w in old], [w.strip() for w in new], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append(html.escape("".join(new[j1:j2])))  # the output's own spacing
            continue
        if op in ("delete", "replace"):
            pieces.append(f"<del>{html.escape(''.join(old[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            pieces.append(f"<ins>{html.escape(''.join(new[j1:j2]))}</ins>")
    return "".join(pieces)
