"""Files a newcomer can download from the Import page, edit and upload: one per record format
(per output and pairwise), each importing cleanly with `--with-labels` (a test does it)."""

from __future__ import annotations

import json

SAMPLE_OUTPUTS = [
    {"item_id": "q1", "input": "How do I reset my password?",
     "reference": "Settings > Security > Reset password; the emailed link works for 30 minutes.",
     "system": "rag-v1", "output": "Go to Settings > Security and choose Reset password. The link we email lasts 30 minutes.",
     "human": {"label": 1, "criteria": {"grounded": 1, "helpful": 1}}},
    {"item_id": "q1", "input": "How do I reset my password?",
     "reference": "Settings > Security > Reset password; the emailed link works for 30 minutes.",
     "system": "baseline", "output": "Please contact support.",
     "human": {"label": 0, "criteria": {"grounded": 1, "helpful": 0}}},
    {"item_id": "q2", "input": "What is the largest file I can upload?", "reference": None,
     "system": "rag-v1", "output": "Up to 5 GB in the browser and 50 GB with the desktop app.",
     "metadata": {"ticket": "T-1042"}},
]

SAMPLE_PAIRS = [
    {"item_id": "p1", "input_id": "q1", "input": "How do I reset my password?",
     "system_a": "rag-v1", "output_a": "Go to Settings > Security and choose Reset password.",
     "system_b": "baseline", "output_b": "Please contact support.", "human_preference": "a"},
    {"item_id": "p2", "input_id": "q1", "input": "How do I reset my password?",
     "system_a": "baseline", "output_a": "Please contact support.",
     "system_b": "rag-v2", "output_b": "Settings > Security > Reset password.", "human_preference": "b"},
    {"item_id": "p3", "input": "Summarise: the meeting moved to Friday.",
     "system_a": None, "output_a": "The meeting is now on Friday.",
     "system_b": None, "output_b": "The meeting moved.", "human_preference": "tie"},
]

SAMPLES = {"outputs": SAMPLE_OUTPUTS, "pairs": SAMPLE_PAIRS}


def sample_jsonl(kind: str) -> str:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in SAMPLES[kind])
