"""Forms for catalog fields and selections: every rule Braze would refuse, in its words."""

from __future__ import annotations

from typing import Any

from django import forms

from catalogs import rules, schema_rules
from catalogs.models import Catalog
from catalogs.schema_services import catalog_selections_known, selection_definition

FILTER_ROWS = schema_rules.MAX_FILTERS
OPERATOR_CHOICES = [("", "—")] + [
    (op, op) for op in dict.fromkeys(o for ops in schema_rules.OPERATORS.values() for o in ops)
]


FIELD_ROWS = 5
TYPE_CHOICES = [(t, t) for t in rules.FIELD_TYPES]


class FieldAddForm(forms.Form):
    """Up to FIELD_ROWS new fields at once; blank rows are ignored."""

    def __init__(self, *args: Any, catalog: Catalog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        for n in range(1, FIELD_ROWS + 1):
            self.fields[f"name_{n}"] = forms.CharField(
                label=f"Field {n}: name", max_length=1000, required=n == 1
            )
            self.fields[f"type_{n}"] = forms.ChoiceField(
                label=f"Field {n}: type", choices=[("", "—"), *TYPE_CHOICES], required=n == 1
            )

    def rows(self) -> list[tuple[Any, Any]]:
        return [(self[f"name_{n}"], self[f"type_{n}"]) for n in range(1, FIELD_ROWS + 1)]

    def new_fields(self) -> list[tuple[str, str]]:
        data = self.cleaned_data
        return [
            (data[f"name_{n}"], data[f"type_{n}"])
            for n in range(1, FIELD_ROWS + 1)
            if data.get(f"name_{n}")
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        held = [str(f["name"]) for f in self.catalog.fields]
        named = []
        for n in range(1, FIELD_ROWS + 1):
            name, field_type = data.get(f"name_{n}"), data.get(f"type_{n}")
            if name and not field_type:
                self.add_error(f"type_{n}", "Choose the field's type.")
            elif field_type and not name and n > 1:
                self.add_error(f"name_{n}", "Name the field, or set its type back to —.")
            elif name and field_type:
                named.append(n)
                # Each row's own rules, shown beside it.
                for error in schema_rules.new_field_errors([(name, field_type)], held=held):
                    self.add_error(f"name_{n}", error)
        if named and not self.errors:
            # Rules over the set (names twice, the catalog's 500 fields), shown above the rows.
            for error in schema_rules.new_field_errors(self.new_fields(), held=held):
                self.add_error(None, error)
        return data


class ConfirmNameForm(forms.Form):
    """Type the name of what is deleted, exactly, to confirm."""

    confirm_name = forms.CharField(label="Type its name to confirm", max_length=1000)

    def __init__(self, *args: Any, expected: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expected = expected

    def clean_confirm_name(self) -> str:
        typed: str = self.cleaned_data["confirm_name"]
        if typed != self.expected:
            raise forms.ValidationError(f"That is not its name; type {self.expected} exactly.")
        return typed


class SelectionForm(forms.Form):
    """The builder: name, up to four filters over the catalog's fields, sort and limit."""

    name = forms.CharField(label="Selection name", max_length=1000)
    description = forms.CharField(label="Description", required=False, max_length=250)
    results_limit = forms.IntegerField(label="Results limit", initial=10)
    sort_order = forms.ChoiceField(
        label="Order",
        required=False,
        choices=[("", "random (no sort)"), ("asc", "ascending"), ("desc", "descending")],
    )

    def __init__(self, *args: Any, catalog: Catalog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        filterable = [
            (str(f["name"]), f"{f['name']} ({f['type']})")
            for f in catalog.fields
            if f["type"] in schema_rules.OPERATORS
        ]
        self.fields["sort_field"] = forms.ChoiceField(
            label="Sort by", required=False, choices=[("", "—"), *filterable]
        )
        for n in range(FILTER_ROWS):
            self.fields[f"filter_{n}_field"] = forms.ChoiceField(
                label=f"Filter {n + 1}: field", required=False, choices=[("", "—"), *filterable]
            )
            self.fields[f"filter_{n}_operator"] = forms.ChoiceField(
                label=f"Filter {n + 1}: operator", required=False, choices=OPERATOR_CHOICES
            )
            self.fields[f"filter_{n}_value"] = forms.CharField(
                label=f"Filter {n + 1}: value", required=False, max_length=1000
            )

    def filter_rows(self) -> list[tuple[Any, Any, Any]]:
        return [
            (self[f"filter_{n}_field"], self[f"filter_{n}_operator"], self[f"filter_{n}_value"])
            for n in range(FILTER_ROWS)
        ]

    def definition(self) -> dict[str, Any]:
        data = self.cleaned_data
        filters = [
            {
                "field": data[f"filter_{n}_field"],
                "operator": data[f"filter_{n}_operator"],
                "value": data[f"filter_{n}_value"],
            }
            for n in range(FILTER_ROWS)
            if data.get(f"filter_{n}_field")
        ]
        return selection_definition(
            catalog=self.catalog,
            name=data.get("name") or "",
            description=data.get("description") or "",
            filters=filters,
            results_limit=data.get("results_limit") or 0,
            sort_field=data.get("sort_field") or None,
            sort_order=data.get("sort_order") or None,
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        errors = schema_rules.selection_errors(
            self.definition(),
            types=self.catalog.field_types(),
            taken=catalog_selections_known(catalog=self.catalog),
        )
        for error in errors:
            self.add_error(None, error)
        return data
