from django.core.management.base import BaseCommand

from validators.demo import DEMO_LOGINS, demo_load


class Command(BaseCommand):
    help = "Create the demo project (support answers, criteria, grades, validators) and its logins."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="delete and rebuild the demo project")

    def handle(self, *args, reset: bool, **options):
        project, created = demo_load(reset=reset)
        verb = "Created" if created else "Found"
        self.stdout.write(self.style.SUCCESS(f"{verb} the demo project '{project.name}' (/p/{project.slug}/)."))
        self.stdout.write("Demo logins (username / password):")
        for username, password, role in DEMO_LOGINS:
            self.stdout.write(f"  {role:<10} {username} / {password}")
