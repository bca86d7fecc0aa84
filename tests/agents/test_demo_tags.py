"""`manage.py demo_seed` makes the demo's tags once, and keeps what an admin changed."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from agents.models import Tag

pytestmark = pytest.mark.django_db


def test_demo_seed_makes_the_tags_once_and_keeps_an_admins_changes():
    call_command("demo_seed", stdout=StringIO())
    assert list(Tag.objects.values_list("name", "colour", "active")) == [
        ("bug", "orange", True),
        ("delivery", "blue", True),
        ("feedback", "green", True),
        ("refund", "red", True),
        ("vip", "purple", True),
    ]
    Tag.objects.filter(name="vip").update(name="VIP", colour="pink")
    Tag.objects.filter(name="bug").update(active=False)
    call_command("demo_seed", stdout=StringIO())
    assert list(Tag.objects.values_list("name", "colour", "active")) == [
        ("bug", "orange", False),
        ("delivery", "blue", True),
        ("feedback", "green", True),
        ("refund", "red", True),
        ("VIP", "pink", True),
    ]
