import os

import pytest
from django.db import connection

from annotate.models import Role
from annotate.services.projects import membership_set, project_create
from tests.factories import OutputFactory, SampleFactory, UserFactory

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def fresh_array_caches():
    """The label log and verdict matrix live in process memory; tests must not share them."""
    from annotate.labels import forget_votes
    from annotate.selection import forget_contexts
    from validators.matrix import forget

    for clear in (forget_votes, forget, forget_contexts):
        clear()
    yield
    for clear in (forget_votes, forget, forget_contexts):
        clear()


@pytest.fixture(autouse=True)
def empty_cache():
    """The login throttles count attempts in Django's cache; no test inherits another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def broker_without_worker(settings, tmp_path):
    """The embedded filesystem broker in a fresh folder, with nobody consuming it: what
    `make run` looks like when its worker is not running."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "filesystem://"
    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(folders["queue"]), "data_folder_out": str(folders["queue"]),
        "data_folder_processed": str(folders["processed"]), "control_folder": str(folders["control"]),
    }
    settings.CONCORD_WORKER_PING_TIMEOUT = 0.3


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner(db):
    return UserFactory(username="olivia")


@pytest.fixture
def annotator(db):
    return UserFactory(username="arjun")


@pytest.fixture
def reviewer(db):
    return UserFactory(username="rita")


@pytest.fixture
def outsider(db):
    return UserFactory(username="mallory")


@pytest.fixture
def project(owner, annotator, reviewer):
    # Random, stated rather than inherited: tests of claims and grades read exact uniform
    # probabilities and reasons whatever the model's default becomes.
    project = project_create(
        name="Support bot", slug="support-bot", owner=owner, default_selector="random"
    )
    membership_set(project=project, user=annotator, role=Role.ANNOTATOR)
    membership_set(project=project, user=reviewer, role=Role.REVIEWER)
    return project


@pytest.fixture
def grounded(project, owner):
    """The criterion most tests grade against."""
    from annotate.services.criteria import criterion_create

    return criterion_create(
        project=project, key="grounded", name="Grounded", definition="Every claim is supported.",
        reason="initial rubric", author=owner,
    )


@pytest.fixture
def make_outputs(project):
    def make(n_samples: int = 4, systems=("alpha", "beta"), target=None):
        target = target or project
        outputs = []
        for i in range(n_samples):
            sample = SampleFactory(project=target, external_id=f"q{i}", input_text=f"Question {i}?")
            for system in systems:
                outputs.append(
                    OutputFactory(sample=sample, project=target, system=system, text=f"{system} answers {i}.")
                )
        return outputs

    return make


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def on_postgres():
    return connection.vendor == "postgresql"


# -- browser tests ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"],
    }


@pytest.fixture(scope="session")
def artifacts_dir():
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "test-artifacts")
    os.makedirs(path, exist_ok=True)
    return path
