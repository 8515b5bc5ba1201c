"""Throughput of the LLM grader client against the loopback stub (DESIGN §5, §7).

    .venv/bin/python bench/llm_throughput.py [--prompts 2000] [--latency 0.1] [--concurrency 32]

The stub answers every chat completion after a fixed latency (a stand-in for a model thinking),
so the figure that matters is verdicts per second at the provider's concurrency limit. The
baseline, measured in the same run on a smaller sample, sends one request at a time; the ideal
is concurrency / latency (320 verdicts/s at 32 and 100 ms), and the gap to it is the client's
and the stub's own CPU time, both in this one Python process. A third row replays the same
prompts from an in-memory answer cache: what a resumed or repeated run pays.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from concord_testing.llm_stub import LLMStubServer  # noqa: E402
from validators.llm import InMemoryAnswerCache, ProviderConfig, grade_prompts  # noqa: E402

PROMPT = (
    "Question: what does the passage say about item {index}?\n"
    "Answer: {answer}\n"
    "Is every claim in the answer supported by the passage? Answer YES or NO."
)


def _prompts(count: int, *, offset: int = 0) -> list[str]:
    # Distinct prompts, half containing the stub's YES keyword, so nothing is deduplicated.
    return [
        PROMPT.format(
            index=offset + index,
            answer="[[yes]] it is grounded" if index % 2 else "it is made up",
        )
        for index in range(count)
    ]


def bench_llm_graders(
    n_prompts: int = 2000,
    latency_s: float = 0.1,
    concurrency: int = 32,
    sequential_prompts: int = 40,
) -> dict[str, float | int]:
    with LLMStubServer(latency_s=latency_s) as stub:
        provider = ProviderConfig(
            base_url=stub.base_url,
            model="bench-grader",
            api_key=None,
            concurrency=concurrency,
            timeout_seconds=30.0,
        )
        # The SDK imports its resources lazily on the first request; keep that out of timings.
        grade_prompts(provider, ["warm-up"])
        stub.reset()

        prompts = _prompts(n_prompts)
        cache = InMemoryAnswerCache()
        started = time.perf_counter()
        results = grade_prompts(provider, prompts, cache=cache)
        concurrent_seconds = time.perf_counter() - started
        errors = sum(result.outcome == "error" for result in results)
        max_in_flight = stub.max_in_flight
        requests = stub.request_count

        sequential = dataclasses.replace(provider, concurrency=1)
        sample = _prompts(sequential_prompts, offset=n_prompts)
        started = time.perf_counter()
        grade_prompts(sequential, sample)
        sequential_seconds = time.perf_counter() - started

        started = time.perf_counter()
        replayed = grade_prompts(provider, prompts, cache=cache)
        cached_seconds = time.perf_counter() - started
        assert all(result.cached for result in replayed)
        assert stub.request_count == requests + sequential_prompts

    concurrent_rate = n_prompts / concurrent_seconds
    sequential_rate = sequential_prompts / sequential_seconds
    return {
        "n_prompts": n_prompts,
        "latency_s": latency_s,
        "concurrency": concurrency,
        "concurrent_seconds": concurrent_seconds,
        "concurrent_verdicts_per_s": concurrent_rate,
        "ideal_verdicts_per_s": concurrency / latency_s,
        "max_in_flight": max_in_flight,
        "errors": errors,
        "sequential_prompts": sequential_prompts,
        "sequential_verdicts_per_s": sequential_rate,
        "speedup": concurrent_rate / sequential_rate,
        "cached_verdicts_per_s": n_prompts / cached_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1, help="stub seconds per answer")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential-prompts", type=int, default=40)
    options = parser.parse_args()

    figures = bench_llm_graders(
        n_prompts=options.prompts,
        latency_s=options.latency,
        concurrency=options.concurrency,
        sequential_prompts=options.sequential_prompts,
    )
    target = 100.0
    print(
        f"LLM graders against the stub: {figures['latency_s'] * 1000:.0f} ms per answer, "
        f"concurrency {figures['concurrency']}"
    )
    print(f"{'mode':<34}{'prompts':>9}{'verdicts/s':>13}")
    print(
        f"{'sequential (one at a time)':<34}{figures['sequential_prompts']:>9}"
        f"{figures['sequential_verdicts_per_s']:>13.1f}"
    )
    print(
        f"{'concurrent':<34}{figures['n_prompts']:>9}{figures['concurrent_verdicts_per_s']:>13.1f}"
    )
    print(f"{'ideal (concurrency / latency)':<34}{'':>9}{figures['ideal_verdicts_per_s']:>13.1f}")
    print(
        f"{'replayed from the answer cache':<34}{figures['n_prompts']:>9}"
        f"{figures['cached_verdicts_per_s']:>13.0f}"
    )
    print(
        f"speed-up over sequential: {figures['speedup']:.1f}x; "
        f"max in flight {figures['max_in_flight']}; errors {figures['errors']}; "
        f"target >= {target:.0f} verdicts/s: "
        f"{'met' if figures['concurrent_verdicts_per_s'] >= target else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
