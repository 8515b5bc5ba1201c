"""The renderer behind every text on the grading pages: Markdown, chat transcripts, code,
the diff from the reference, and the hostile texts that must come out inert."""

import json
from html.parser import HTMLParser

import pytest

from annotate.text_rendering import (
    MAX_RENDERED_CHARACTERS,
    SHOWN_CHARACTERS,
    chat_messages,
    markdown_html,
    render_reading,
    word_diff_html,
)

# -- Markdown ------------------------------------------------------------------------------------

def test_markdown_heading_list_emphasis_and_line_breaks():
    html = markdown_html("# Refunds\n\nOpen **Billing**\nthen *Orders*.\n\n1. One\n2. Two\n")

    assert html == (
        "<h1>Refunds</h1>\n"
        "<p>Open <strong>Billing</strong><br>\nthen <em>Orders</em>.</p>\n"
        "<ol>\n<li>One</li>\n<li>Two</li>\n</ol>\n"
    )


def test_links_get_rel_and_keep_their_address():
    html = markdown_html("See [the article](https://help.example/refunds).")

    assert html == ('<p>See <a href="https://help.example/refunds" rel="noopener noreferrer nofollow">'
                    "the article</a>.</p>\n")


def test_an_image_becomes_a_link_and_is_never_loaded():
    html = markdown_html("![chart](https://tracker.example/pixel.png)")

    assert html == ('<p><a href="https://tracker.example/pixel.png" rel="noopener noreferrer nofollow">'
                    "[image: chart]</a></p>\n")


def test_tables_keep_cells_but_not_inline_styles():
    html = markdown_html("| Plan | Seats |\n|:--|--:|\n| Basic | 5 |\n")

    assert "<td>Basic</td>\n<td>5</td>" in html
    assert "style" not in html


# -- code ----------------------------------------------------------------------------------------

def test_fenced_block_with_a_language_is_highlighted_with_classes():
    html = markdown_html("```python\ndef refund(days):\n    return days <= 30\n```\n")

    assert html == (
        '<pre class="code-block" data-language="python"><code>'
        '<span class="k">def</span><span class="w"> </span><span class="nf">refund</span>'
        '<span class="p">(</span><span class="n">days</span><span class="p">):</span>\n'
        '    <span class="k">return</span> <span class="n">days</span> <span class="o">&lt;=</span> '
        '<span class="mi">30</span>\n</code></pre>\n\n'
    )


def test_unlabelled_block_is_guessed_only_when_sure():
    sure = markdown_html("```\n#!/usr/bin/env python\nimport os\n```\n")
    unsure = markdown_html("```\nmove the file to the folder\n```\n")

    assert sure.startswith('<pre class="code-block" data-language="python"><code><span class="ch">')
    assert unsure == '<pre class="code-block"><code>move the file to the folder\n</code></pre>\n\n'


def test_unknown_language_stays_plain_and_escaped():
    html = markdown_html("```klingon\n<b>qapla'</b>\n```\n")

    assert html == '<pre class="code-block"><code>&lt;b&gt;qapla\'&lt;/b&gt;\n</code></pre>\n\n'


# -- chat transcripts ----------------------------------------------------------------------------

def test_chat_with_string_content_is_a_conversation():
    text = json.dumps([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Refund after **20** days?"},
        {"role": "assistant", "content": "Yes."},
    ])

    reading = render_reading(text)

    assert reading.kind == "chat"
    assert reading.tail == ""
    assert reading.head == (
        '<div class="chat">'
        '<div class="message role-system"><div class="role">system</div>'
        '<div class="message-content"><p>Be brief.</p>\n</div></div>\n'
        '<div class="message role-user"><div class="role">user</div>'
        '<div class="message-content"><p>Refund after <strong>20</strong> days?</p>\n</div></div>\n'
        '<div class="message role-assistant"><div class="role">assistant</div>'
        '<div class="message-content"><p>Yes.</p>\n</div></div>\n'
        "</div>"
    )


def test_chat_content_parts_are_joined_and_other_parts_named():
    text = json.dumps({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x.example/a.png"}},
    ]}]})

    assert chat_messages(text)[0].content == "What is this?\n\n*[image_url part not shown]*"


def test_tool_calls_are_shown_as_json_code():
    text = json.dumps([{"role": "assistant", "content": None,
                        "tool_calls": [{"id": "c1", "type": "function"}]}])

    messages = chat_messages(text)

    assert [(m.role, m.content) for m in messages] == [
        ("assistant", '```json\n[\n  {\n    "id": "c1",\n    "type": "function"\n  }\n]\n```')
    ]


def test_unknown_role_gets_a_neutral_bubble():
    reading = render_reading('[{"role": "narrator", "content": "Hi"}]')

    assert reading.head.startswith('<div class="chat"><div class="message role-other"><div class="role">narrator</div>')


@pytest.mark.parametrize("text", [
    "[not json",
    "[]",
    '[{"content": "no role"}]',
    '[{"role": "user", "content": 42}]',
    '[{"role": "user", "content": [{"text": "part without a type"}]}]',
    '["just", "strings"]',
    '{"role": "user", "content": "an object, not a list"}',
    "[1, 2, 3]",
])
def test_anything_that_is_not_a_transcript_stays_text(text):
    reading = render_reading(text)

    assert chat_messages(text) is None
    assert reading.kind == "markdown"
    assert "message" not in reading.head


def test_long_chat_shows_a_screen_of_messages_and_folds_the_rest():
    text = json.dumps([{"role": "user", "content": f"message {i} " + "x" * 1000} for i in range(6)])

    reading = render_reading(text)

    assert reading.head.count('class="message ') == 3
    assert reading.tail.count('class="message ') == 3
    assert "message 3 " in reading.tail


# -- long texts ----------------------------------------------------------------------------------

def test_long_markdown_is_cut_between_blocks_and_nothing_is_lost():
    paragraphs = [f"Paragraph {i} " + "word " * 100 for i in range(20)]
    text = "\n\n".join(paragraphs[:8]) + "\n\n```python\nx = 1\n```\n\n" + "\n\n".join(paragraphs[8:])

    reading = render_reading(text)

    assert reading.kind == "markdown"
    assert reading.total == len(text)
    assert reading.head.count("<p>") == 5  # 5 × 508 characters fit in SHOWN_CHARACTERS
    assert reading.tail.count("<p>") == 15
    assert reading.tail.count('<pre class="code-block"') == 1
    assert len(reading.head) < SHOWN_CHARACTERS


def test_a_text_too_long_to_render_is_left_plain():
    reading = render_reading("a" * (MAX_RENDERED_CHARACTERS + 1))

    assert (reading.kind, reading.head, reading.tail) == ("plain", "", "")


# -- hostile texts -------------------------------------------------------------------------------

XSS = [
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 1">',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](  javascript:alert(1) )",
    "[x](javascript:alert(1))",
    "<a href='javascript:alert(1)'>x</a>",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![pixel](data:image/png;base64,iVBORw0KGgo=)",
    "<div onclick=alert(1)>\nraw html block\n</div>",
    "<iframe src=https://evil.example></iframe>",
    '[x](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    '[x](https://ok.example/"onmouseover="alert(1))',
    "<svg/onload=alert(1)>",
    "```\"><script>alert(1)</script>\nx\n```",
    "<style>body{display:none}</style>",
    "[ref]\n\n[ref]: javascript:alert(1)",
    "<!-- <script>alert(1)</script> -->",
]

ALLOWED_TAGS = {"p", "br", "a", "pre", "code", "span", "div", "em", "strong"}


class _Markup(HTMLParser):
    """Every element and attribute a browser would build from the HTML: escaped text such as
    &lt;script&gt; is harmless and never shows up here."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def live_dangers(html: str) -> list[str]:
    found = []
    for tag, attrs in _Markup(html).elements:
        if tag not in ALLOWED_TAGS:
            found.append(f"<{tag}>")
        for name, value in attrs.items():
            if name.startswith("on") or name in {"style", "src", "srcdoc"}:
                found.append(f"{tag}[{name}]")
            if name == "href" and not value.lower().startswith(("https:", "http:", "mailto:")):
                found.append(f"{tag}[href={value}]")
    return found


@pytest.mark.parametrize("attack", XSS)
def test_xss_in_markdown_is_inert(attack):
    reading = render_reading(f"Answer:\n\n{attack}\n")

    assert live_dangers(reading.head + reading.tail) == []


@pytest.mark.parametrize("attack", XSS)
def test_xss_in_chat_content_is_inert(attack):
    text = json.dumps([{"role": "user", "content": attack},
                       {"role": "assistant", "content": [{"type": "text", "text": attack}]}])

    reading = render_reading(text)

    assert reading.kind == "chat"
    assert live_dangers(reading.head + reading.tail) == []


def test_role_names_are_escaped():
    reading = render_reading('[{"role": "<img src=x onerror=alert(1)>", "content": "hi"}]')

    assert '<div class="role">&lt;img src=x onerror=alert(1)&gt;</div>' in reading.head


def test_raw_html_is_shown_as_text_not_markup():
    assert markdown_html("<b>bold?</b>") == "<p>&lt;b&gt;bold?&lt;/b&gt;</p>\n"


# -- diff from the reference ---------------------------------------------------------------------

def test_word_diff_marks_insertions_and_deletions():
    diff = word_diff_html("Refunds within 30 days from Billing.", "Refunds within 14 days, sorry.")

    assert diff == "Refunds within <del>30 days from Billing.</del><ins>14 days, sorry.</ins>"


def test_word_diff_ignores_rewrapping():
    assert word_diff_html("Open Settings\nthen Security.", "Open Settings then  Security. Done.") == (
        "Open Settings then  Security. <ins>Done.</ins>")


def test_word_diff_escapes_both_sides():
    assert word_diff_html("<b>", "<script>") == "<del>&lt;b&gt;</del><ins>&lt;script&gt;</ins>"


def test_word_diff_of_identical_texts_has_no_marks():
    assert word_diff_html("Same words here.", "Same words here.") == "Same words here."


def test_word_diff_gives_up_on_huge_texts():
    assert word_diff_html("word " * 6000, "other " * 6000) is None


def test_the_danger_check_sees_live_markup_and_ignores_escaped_text():
    html = ('<p>&lt;script&gt;</p><img src="x" onerror="1"><a href="javascript:alert(1)">x</a>'
            '<a href="https://ok.example" title="a&quot; onclick=&quot;b">y</a>')

    assert live_dangers(html) == ["<img>", "img[src]", "img[onerror]", "a[href=javascript:alert(1)]"]


def test_a_fence_language_is_looked_up_once_whatever_its_case():
    from annotate.text_rendering import _lexer_named

    assert _lexer_named("python") is _lexer_named("python")
    assert _lexer_named("no-such-language") is None
    html = markdown_html("```Python\nimport os\n```\n")
    assert html.startswith('<pre class="code-block" data-language="python"><code><span class="kn">import</span>')
