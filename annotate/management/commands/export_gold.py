import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.export_formats import EXPORT_FORMATS
from annotate.gold import GoldOptions, write_gold
from annotate.models import Project


class Command(BaseCommand):
    help = (
        "Export a project's gold labels (majority or adjudicated, one row per output and "
        "criterion; JSON Lines: one line per output, re-importable with --with-labels)."
    )

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("--format", choices=list(EXPORT_FORMATS), default="csv", dest="fmt")
        parser.add_argument(
            "--out", default=None,
            help="file to write (default: <slug>-gold.<format>; '-' writes csv/jsonl to stdout)",
        )
        parser.add_argument(
            "--all-grades", action="store_true",
            help="add every counted grade (annotator, verdict, version, note) to each row",
        )
        parser.add_argument(
            "--include-stale", action="store_true",
            help="count verdicts given under older criterion versions too",
        )
        parser.add_argument(
            "--labelled-only", action="store_true", help="leave out rows without any vote",
        )

    def handle(self, *args, project: str, fmt: str, out: str | None, all_grades: bool,
               include_stale: bool, labelled_only: bool, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with the slug '{project}'.")
        gold_options = GoldOptions(
            all_grades=all_grades, include_stale=include_stale, labelled_only=labelled_only
        )
        if out == "-":
            if not EXPORT_FORMATS[fmt].streams:
                raise CommandError(f"{EXPORT_FORMATS[fmt].label} cannot go to stdout; give --out FILE.")
            rows = write_gold(target, fmt, sys.stdout.buffer, options=gold_options)
            sys.stdout.buffer.flush()
            self.stderr.write(f"{rows} {EXPORT_FORMATS[fmt].unit}")
            return
        path = Path(out or f"{target.slug}-gold.{fmt}")
        if path.parent and not path.parent.is_dir():
            raise CommandError(f"No such folder: {path.parent}")
        with path.open("wb") as stream:
            rows = write_gold(target, fmt, stream, options=gold_options)
        unit = EXPORT_FORMATS[fmt].unit_long
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows} {unit} to {path}."))
