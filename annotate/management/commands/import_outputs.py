from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotate.models import Project
from annotate.services.imports import outputs_import


class Command(BaseCommand):
    help = "Import outputs (JSONL, CSV or Parquet) into a project; nothing is written if the file has a problem."

    def add_arguments(self, parser):
        parser.add_argument("project", help="project slug")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--with-labels", action="store_true",
            help="turn each record's `human` field into grades by the import annotator",
        )
        parser.add_argument("--annotator", default="import", help="username for imported grades")
        parser.add_argument("--format", choices=["jsonl", "csv", "parquet"], default=None)

    def handle(self, *args, project: str, file: Path, with_labels: bool, annotator: str, format, **options):
        target = Project.objects.filter(slug=project).first()
        if target is None:
            raise CommandError(f"No project with the slug '{project}'.")
        if not file.is_file():
            raise CommandError(f"No such file: {file}")
        with file.open("rb") as stream:
            result = outputs_import(
                project=target, stream=stream, filename=file.name, fmt=format,
                with_labels=with_labels, annotator_name=annotator,
            )
        if not result.ok:
            for problem in result.problems:
                self.stderr.write(f"{file.name}: {problem}")
            raise CommandError(result.summary())
        self.stdout.write(self.style.SUCCESS(result.summary()))
