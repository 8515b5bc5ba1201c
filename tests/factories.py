import factory
from django.contrib.auth import get_user_model

from annotate.models import Membership, Output, Project, Role, Sample


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class SampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sample

    project = factory.SubFactory(ProjectFactory)
    external_id = factory.Sequence(lambda n: f"item-{n}")
    input_text = factory.Sequence(lambda n: f"Question number {n}?")
    reference = "The reference answer."


class OutputFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Output

    sample = factory.SubFactory(SampleFactory)
    project = factory.LazyAttribute(lambda o: o.sample.project)
    system = factory.Sequence(lambda n: f"system-{n % 3}")
    text = factory.Sequence(lambda n: f"An answer, number {n}.")
