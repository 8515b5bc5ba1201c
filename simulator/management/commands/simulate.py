"""`manage.py simulate`: replay a labelled file, in memory by default or through the real
services (DESIGN §7)."""

import json
import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from simulator.engine import ProgressBar
from simulator.pairwise_judges import DEFAULT_SEEDS as DEFAULT_JUDGE_SEEDS
from simulator.report import format_judge_table, format_table, plot_result
from simulator.runner import SimulationError, SimulationSettings, is_judge_choice, simulate


def _numbers(text: str, kind=int) -> tuple:
    try:
        return tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise CommandError(f"expected comma-separated numbers, got {text!r}") from exc


class Command(BaseCommand):
    help = (
        "Simulate label efficiency: an oracle annotator answers from a labelled JSONL file while "
        "each selector chooses what to grade; writes Kendall τ, validator hit/regret, labels "
        "needed and parity against random as JSON (DESIGN §7)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, help="labelled JSONL (per-output or *_pairs)")
        parser.add_argument("--validators",
                            help="validators file (JSON, DESIGN §6); on a pairwise file also "
                                 "recorded judges (LLMBar JSONL) or external verdicts (JSONL "
                                 "{validator, item_id, winner}), which simulate judge choice")
        parser.add_argument("--selectors",
                            help="comma-separated selector names (default random,ranking_uncertainty; "
                                 "random,judge_disagreement,judge_choice for judge choice); "
                                 "s2e_metric_var, "
                                 "s2e_metric_avg and s2e_diversity replay subset2evaluate's static "
                                 "orderings")
        parser.add_argument("--budgets",
                            help="default 50,100,200,400; every 5 pairs for judge choice")
        parser.add_argument("--seeds", type=int,
                            help=f"default 3; {DEFAULT_JUDGE_SEEDS} for judge choice (in memory, fast)")
        parser.add_argument("--out", required=True, help="where to write the JSON result")
        parser.add_argument("--plot", help="also draw τ and validator-pick rate to this PNG")
        parser.add_argument("--scale", choices=["binary", "rating"], default="binary")
        parser.add_argument("--pass-threshold", type=float)
        parser.add_argument("--scale-min", type=float)
        parser.add_argument("--scale-max", type=float)
        parser.add_argument("--epsilon", type=float,
                            help="the project's random mix ε (default: the app's default)")
        parser.add_argument("--keep", action="store_true",
                            help="keep the throw-away projects for inspection (--through-services)")
        parser.add_argument("--through-services", action="store_true",
                            help="drive the real claim and grade services against the database "
                                 "instead of the in-memory engine (same figures, far slower)")
        parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                            help="processes running seeds in parallel (in-memory engine; "
                                 "default: the CPU count)")
        parser.add_argument("--batch", type=int, default=1,
                            help="items taken per scoring after --exact-until labels (in-memory "
                                 "engine; default 1: re-score after every label, as the app does)")
        parser.add_argument("--exact-until", type=int, default=0,
                            help="labels re-scored one by one before batches of --batch start")

    def handle(self, *args, **options):
        data = Path(options["data"])
        validators = Path(options["validators"]) if options["validators"] else None
        try:
            judges = is_judge_choice(data, validators)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        selectors = options["selectors"] or (
            "random,judge_disagreement,judge_choice" if judges else "random,ranking_uncertainty")
        budgets = options["budgets"] or ("" if judges else "50,100,200,400")
        seeds = options["seeds"] or (DEFAULT_JUDGE_SEEDS if judges else 3)
        settings = SimulationSettings(
            data=data,
            validators=validators,
            selectors=tuple(s.strip() for s in selectors.split(",") if s.strip()),
            budgets=_numbers(budgets),
            seeds=seeds,
            scale=options["scale"],
            pass_threshold=options["pass_threshold"],
            scale_min=options["scale_min"],
            scale_max=options["scale_max"],
            epsilon=options["epsilon"],
            keep=options["keep"],
            through_services=options["through_services"],
            jobs=max(1, options["jobs"]),
            batch=options["batch"],
            exact_until=options["exact_until"],
        )
        if settings.batch < 1 or settings.exact_until < 0:
            raise CommandError("--batch must be at least 1 and --exact-until at least 0")
        started = time.perf_counter()
        verbose = options["verbosity"] >= 1
        try:
            result = simulate(
                settings, progress=self.stdout.write if verbose else (lambda m: None),
                progress_bar=ProgressBar(len(settings.selectors) * settings.seeds)
                if verbose else None,
            )
        except (SimulationError, FileNotFoundError) as exc:
            raise CommandError(str(exc)) from exc
        result["seconds"] = round(time.perf_counter() - started, 1)
        out = Path(options["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if options["plot"] and judges:
            self.stderr.write("--plot draws rankings; judge choice has none, so no plot was drawn")
        elif options["plot"]:
            plot = Path(options["plot"])
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot_result(result, plot)
        if verbose:
            self.stdout.write(format_judge_table(result) if judges else format_table(result))
            self.stdout.write(f"wrote {out} in {result['seconds']} s")
