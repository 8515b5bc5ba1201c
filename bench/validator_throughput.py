"""Throughput of validators (DESIGN §5): code assertions in the sandbox pool.

    .venv/bin/python bench/validator_throughput.py [--outputs 20000] [--workers 2]

Ten regex and length assertions run over generated outputs through `SandboxPool`: zygotes
inside bubblewrap's namespaces, each batch in a freshly forked child under seccomp (issue 11).
Beside it, in the same run: the same pool in weak mode (no bubblewrap), the cost of starting a
fresh worker, a fresh worker per verdict (the baseline, extrapolated from a small sample), and
the same compiled assertions in this process without any sandbox.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from validators.sandbox import CheckItem, SandboxPool  # noqa: E402
from validators.sandbox.policy import (  # noqa: E402
    assertion_globals,
    compile_assertion,
    load_allowed_modules,
)

ASSERTIONS: dict[str, tuple[str, float | None]] = {
    "mentions_refund": (
        "import re\n"
        "PATTERN = re.compile(r'\\brefund(s|ed)?\\b', re.I)\n"
        "def check(output, input, reference, meta):\n"
        "    return PATTERN.search(output) is not None\n",
        None,
    ),
    "no_apology": (
        "import re\n"
        "def check(output, input, reference, meta):\n"
        "    return re.search(r'\\b(sorry|apologi[sz]e)\\b', output, re.I) is None\n",
        None,
    ),
    "under_120_words": (
        "def check(output, input, reference, meta):\n"
        "    return len(output.split()) <= 120\n",
        None,
    ),
    "length_ratio": (
        "def check(output, input, reference, meta):\n"
        "    return min(1.0, len(output) / max(1, 4 * len(input)))\n",
        0.5,
    ),
    "has_order_number": (
        "import re\n"
        "def check(output, input, reference, meta):\n"
        "    return re.search(r'#\\d{5,}', output) is not None\n",
        None,
    ),
    "ends_with_punctuation": (
        "def check(output, input, reference, meta):\n"
        "    return output.rstrip()[-1:] in ('.', '!', '?')\n",
        None,
    ),
    "no_email_address": (
        "import re\n"
        "EMAIL = re.compile(r'[\\w.+-]+@[\\w-]+\\.[\\w.]+')\n"
        "def check(output, input, reference, meta):\n"
        "    return EMAIL.search(output) is None\n",
        None,
    ),
    "sentence_count": (
        "import re\n"
        "def check(output, input, reference, meta):\n"
        "    return len([s for s in re.split(r'[.!?]+', output) if s.strip()])\n",
        2.0,
    ),
    "no_shouting": (
        "def check(output, input, reference, meta):\n"
        "    words = [w for w in output.split() if len(w) > 3]\n"
        "    shouted = sum(1 for w in words if w.isupper())\n"
        "    return shouted <= max(1, len(words) // 10)\n",
        None,
    ),
    "mentions_customer_name": (
        "def check(output, input, reference, meta):\n"
        "    return meta.get('customer', '').lower() in output.lower()\n",
        None,
    ),
}

_PHRASES = (
    "Thanks for reaching out about order #{order}.",
    "We have issued a refund to your card.",
    "Sorry for the trouble, {name}.",
    "The replacement ships tomorrow!",
    "Please reply to help@example.com if anything else comes up.",
    "Your account has been UPDATED as requested.",
    "Refunds usually take five business days",
    "Is there anything else we can do?",
)
_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald")


def generated_items(n_outputs: int, seed: int = 7) -> list[CheckItem]:
    rng = random.Random(seed)
    items = []
    for index in range(n_outputs):
        name = rng.choice(_NAMES)
        sentences = [
            rng.choice(_PHRASES).format(order=10000 + index, name=name)
            for _ in range(rng.randint(1, 6))
        ]
        items.append(CheckItem(
            output=" ".join(sentences),
            input=f"Customer {name} asks where the refund for order #{10000 + index} is.",
            reference=None,
            meta={"customer": name, "channel": rng.choice(("email", "chat"))},
        ))
    return items


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _pooled_rate(items: list[CheckItem], workers: int, **pool_options) -> tuple[float, dict]:
    """Seconds for every assertion over every item, and the pool's status, workers already
    started (a long-lived pool pays that once)."""
    with SandboxPool(size=workers, **pool_options) as pool:
        pool.run(ASSERTIONS["under_120_words"][0], items[: workers * pool.batch_size])
        status = pool.status()
        started = time.perf_counter()
        outcomes = {"pass": 0, "fail": 0, "error": 0}
        for source, threshold in ASSERTIONS.values():
            for result in pool.run(source, items, threshold=threshold):
                outcomes[result.outcome] += 1
        seconds = time.perf_counter() - started
    return seconds, {**status, "outcomes": outcomes}


def bench_code_assertions(
    n_outputs: int = 20000, workers: int = 2, baseline_verdicts: int = 100
) -> dict[str, float | int | str]:
    items = generated_items(n_outputs)
    verdicts = n_outputs * len(ASSERTIONS)
    pooled_seconds, status = _pooled_rate(items, workers)
    outcomes = status["outcomes"]
    # The same pool where the platform refuses namespaces and an admin accepted less: no
    # bubblewrap, the rest of the wall (uid, seccomp, limits, a fresh child per batch) as is.
    weak_seconds, _ = _pooled_rate(items, workers, bwrap=None, allow_weak_isolation=True)

    # What starting a fresh worker costs (bubblewrap, the interpreter, imports, warm-up):
    # paid once per pool slot, and again only when a zygote dies.
    starts = []
    for _ in range(5):
        started = time.perf_counter()
        with SandboxPool(size=1) as fresh:
            fresh.status()
            starts.append(time.perf_counter() - started)

    # One fresh, fully confined worker per verdict (start, check one output, stop).
    sample = items[:baseline_verdicts]
    sources = list(ASSERTIONS.values())
    started = time.perf_counter()
    for index, item in enumerate(sample):
        source, threshold = sources[index % len(sources)]
        with SandboxPool(size=1) as single_use:
            single_use.run(source, [item], threshold=threshold)
    baseline_seconds = time.perf_counter() - started

    # The same checks with no sandbox at all, to show what the isolation costs.
    modules = load_allowed_modules()
    started = time.perf_counter()
    for source, _threshold in ASSERTIONS.values():
        code, error = compile_assertion(source)
        assert code is not None, error
        namespace = assertion_globals(modules)
        exec(code, namespace)  # the benchmark's own trusted assertions
        check = namespace["check"]
        for item in items:
            check(item.output, item.input, item.reference, item.meta)
    in_process_seconds = time.perf_counter() - started

    pooled_rate = _rate(verdicts, pooled_seconds)
    baseline_rate = _rate(len(sample), baseline_seconds)
    return {
        "assertions": len(ASSERTIONS),
        "outputs": n_outputs,
        "verdicts": verdicts,
        "workers": workers,
        "mode": status["mode"],
        "barriers": len(status["active_barriers"]),
        "pass": outcomes["pass"],
        "fail": outcomes["fail"],
        "error": outcomes["error"],
        "pooled_seconds": pooled_seconds,
        "pooled_verdicts_per_second": pooled_rate,
        "weak_seconds": weak_seconds,
        "weak_verdicts_per_second": _rate(verdicts, weak_seconds),
        "worker_start_seconds_median": sorted(starts)[len(starts) // 2],
        "baseline_verdicts": len(sample),
        "baseline_seconds": baseline_seconds,
        "baseline_verdicts_per_second": baseline_rate,
        "baseline_seconds_extrapolated": verdicts / baseline_rate,
        "speedup_over_baseline": pooled_rate / baseline_rate,
        "in_process_verdicts_per_second": _rate(verdicts, in_process_seconds),
    }


TARGET_VERDICTS_PER_SECOND = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outputs", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--baseline", type=int, default=100)
    arguments = parser.parse_args()
    code = bench_code_assertions(arguments.outputs, arguments.workers, arguments.baseline)
    print(f"Code assertions: {code['assertions']} assertions x {code['outputs']} outputs = "
          f"{code['verdicts']} verdicts ({code['pass']} pass, {code['fail']} fail, "
          f"{code['error']} error)")
    rows = (
        (f"pool, {code['workers']} zygotes, {code['mode']} ({code['barriers']} barriers)",
         code["verdicts"], code["pooled_seconds"], code["pooled_verdicts_per_second"]),
        ("pool, weak isolation (no bubblewrap)", code["verdicts"], code["weak_seconds"],
         code["weak_verdicts_per_second"]),
        (f"fresh worker per verdict ({code['baseline_verdicts']} measured)",
         code["verdicts"], code["baseline_seconds_extrapolated"],
         code["baseline_verdicts_per_second"]),
        ("in-process, no sandbox (reference)", code["verdicts"],
         code["verdicts"] / code["in_process_verdicts_per_second"],
         code["in_process_verdicts_per_second"]),
    )
    print(f"{'runner':<52} {'verdicts':>9} {'seconds':>9} {'verdicts/s':>11}")
    for label, count, seconds, rate in rows:
        print(f"{label:<52} {count:>9} {seconds:>9.2f} {rate:>11.0f}")
    met = "met" if code["pooled_verdicts_per_second"] >= TARGET_VERDICTS_PER_SECOND else "MISSED"
    print(f"target >= {TARGET_VERDICTS_PER_SECOND} verdicts/s with the full wall: {met}; "
          f"starting a fresh worker: {code['worker_start_seconds_median'] * 1000:.0f} ms (median of 5); "
          f"speed-up over a fresh worker per verdict: {code['speedup_over_baseline']:.0f}x")
    print()
    # The LLM half of the benchmark: graders against the stub at 100 ms, concurrency 32.
    import llm_throughput

    sys.argv = sys.argv[:1]
    llm_throughput.main()


if __name__ == "__main__":
    main()
