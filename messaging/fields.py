"""Model fields."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import lookups
from django.db.models.fields.related_descriptors import ForwardManyToOneDescriptor

from .db import operations
from .db.postgresql import CODE_POINT_COLLATIONS  # noqa: F401 - importable here as before


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
    row when one has that id, else to ``None`` instead of raising. The column takes the
    text lookups of a ``CharField`` (``message_id__startswith``, ``__contains``,
    ``__icontains``, ``__endswith``, ``__iexact``, ``__regex``…) besides ``exact``/``in``.
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


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest string greater than every string starting with ``prefix`` in
    code-point order (``None``: there is none, every string >= prefix matches)."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: skip them
        following = 0xE000
    return stripped[:-1] + chr(following)


def sorts_by_code_point(connection: Any) -> bool:
    """Does a text column without its own collation compare by code point here?

    SQLite's default (BINARY) does. On PostgreSQL it depends on the database's collation
    (asked once per database); other backends: assume not."""
    return operations(connection).sorts_by_code_point(connection)


class PrefixRange(lookups.StartsWith):
    """``startswith`` as ``column >= prefix AND column < next(prefix)`` where the column
    sorts by code point, so the column's plain btree index serves it (``LIKE 'p%'``
    needs a ``varchar_pattern_ops`` index on PostgreSQL, ``case_sensitive_like`` on
    SQLite); ``LIKE`` elsewhere. Case-sensitive everywhere, SQLite included."""

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        prefix = self.rhs
        if (
            not self.rhs_is_direct_value()
            or not isinstance(prefix, str)
            or self.bilateral_transforms
            or not sorts_by_code_point(connection)
        ):
            return super().as_sql(compiler, connection)
        lhs_sql, lhs_params = self.process_lhs(compiler, connection)
        upper = prefix_upper_bound(prefix)
        if upper is None:
            return f"{lhs_sql} >= %s", (*lhs_params, prefix)
        return f"({lhs_sql} >= %s AND {lhs_sql} < %s)", (*lhs_params, prefix, *lhs_params, upper)


# The column holds text (the AMQP message_id): the text lookups a CharField has, on top of
# the related lookups (exact, in, gt/gte/lt/lte, isnull) every foreign key has.
for _lookup in (
    PrefixRange,
    lookups.IStartsWith,
    lookups.Contains,
    lookups.IContains,
    lookups.EndsWith,
    lookups.IEndsWith,
    lookups.IExact,
    lookups.Regex,
    lookups.IRegex,
):
    LooseForeignKey.register_lookup(_lookup)
