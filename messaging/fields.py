"""Model fields."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor


class _LooseForwardDescriptor(ForwardManyToOneDescriptor):
    def get_object(self, instance: models.Model) -> Any:
        if not getattr(instance, self.field.attname):
            return None
        try:
            return super().get_object(instance)
        except self.field.remote_field.model.DoesNotExist:
            return None


class LooseForeignKey(models.ForeignKey):
    """A foreign key without a database constraint whose target may not exist.

    ``Receipt.message`` uses it: the column holds the AMQP ``message_id`` exactly as it
    arrived (any producer's, not only ours), and the attribute resolves to the ``Message``
    row when one has that id, else to ``None`` instead of raising.
    """

    forward_related_accessor_class = _LooseForwardDescriptor

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["db_constraint"] = False
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        # The target may not exist: skip ForeignKey's "is a valid choice" lookup.
        models.Field.validate(self, value, model_instance)

    def deconstruct(self) -> tuple[Any, ...]:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("db_constraint", None)
        return name, path, args, kwargs
