"""Forms built from a catalog's schema; every rule Braze would refuse is checked here."""

from __future__ import annotations

from typing import Any

from django import forms
from django.forms import formset_factory

from catalogs import rules
from catalogs.models import Catalog
from catalogs.selectors import ItemFilter, ItemQuery
from console.workspaces import workspace_default_key

BOOL_CHOICES = [("", "Any"), ("true", "True"), ("false", "False")]
DEFAULT_COLUMNS = 6


def _field_key(name: str) -> str:
    return f"v_{name}"


def _geo_keys(name: str) -> tuple[str, str]:
    return f"v_{name}__longitude", f"v_{name}__latitude"


def _lines(text: str) -> list[str]:
    return [line.rstrip("\r") for line in text.split("\n") if line.strip()]


class ItemForm(forms.Form):
    """Create or edit one item: one typed input per catalog field (two for a geolocation)."""

    item_id = forms.CharField(label="Item ID", max_length=1000, required=True)

    def __init__(self, *args: Any, catalog: Catalog, editing: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        self.editing = editing
        if editing:
            del self.fields["item_id"]
        else:
            self.fields[
                "item_id"
            ].help_text = "Letters, numbers, hyphens and underscores; at most 250 characters."
        for spec in catalog.value_fields():
            name, kind = str(spec["name"]), str(spec["type"])
            label = f"{name} ({kind})"
            field: forms.Field
            if kind == "geolocation":
                for key, word, bound in zip(
                    _geo_keys(name), ("longitude", "latitude"), (180, 90), strict=True
                ):
                    coordinate = forms.CharField(
                        label=f"{name} {word}",
                        required=False,
                        help_text=f"Decimal degrees, from -{bound} to {bound}.",
                    )
                    coordinate.widget.attrs["inputmode"] = "decimal"
                    self.fields[key] = coordinate
                continue
            if kind == "boolean":
                field = forms.ChoiceField(
                    label=label,
                    required=False,
                    choices=[("", "(empty)"), ("true", "true"), ("false", "false")],
                )
            elif kind == "array":
                field = forms.CharField(
                    label=label,
                    required=False,
                    strip=False,
                    widget=forms.Textarea(attrs={"rows": 4}),
                    help_text=(
                        f"One value per line, at most {rules.ARRAY_MAX_ELEMENTS}. "
                        + (
                            "Lines you add or remove are sent as $add and $remove, so values "
                            "added in Braze in the meantime stay."
                            if editing
                            else ""
                        )
                    ).strip(),
                )
            elif kind == "string" or kind == "object":
                widget = forms.Textarea(attrs={"rows": 2}) if kind != "string" else None
                field = forms.CharField(label=label, required=False, strip=False, widget=widget)
                if kind == "object":
                    field.help_text = 'A JSON object, e.g. {"size": "M", "colour": "red"}.'
            else:
                help_text = {
                    "number": "A number, e.g. 12 or 19.99.",
                    "time": "ISO 8601, e.g. 2026-03-01T09:30:00Z; stored in UTC.",
                }.get(kind, "")
                field = forms.CharField(label=label, required=False, help_text=help_text)
                if kind == "number":
                    field.widget.attrs["inputmode"] = "decimal"
            self.fields[_field_key(name)] = field

    def value_fields(self) -> list[forms.BoundField]:
        bound = []
        for spec in self.catalog.value_fields():
            name = str(spec["name"])
            if spec["type"] == "geolocation":
                bound += [self[key] for key in _geo_keys(name)]
            else:
                bound.append(self[_field_key(name)])
        return bound

    def clean_item_id(self) -> str:
        item_id: str = self.cleaned_data["item_id"]
        for error in rules.item_id_errors(item_id):
            self.add_error("item_id", error)
        return item_id

    def _geolocation(self, cleaned: dict[str, Any], name: str) -> Any:
        lon_key, lat_key = _geo_keys(name)
        texts = [(cleaned.get(k) or "").strip() for k in (lon_key, lat_key)]
        if not any(texts):
            return None
        numbers: list[float] = []
        for key, text, word in zip(
            (lon_key, lat_key), texts, ("longitude", "latitude"), strict=True
        ):
            try:
                number = float(text)
            except ValueError:
                self.add_error(key, f"Enter the {word} as a number (unable-to-coerce-value).")
                continue
            numbers.append(int(number) if number.is_integer() and "." not in text else number)
        if len(numbers) != 2:
            raise ValueError("")
        try:
            return rules.check_geolocation(numbers)
        except ValueError as exc:
            key = lon_key if "Longitude" in str(exc) else lat_key
            self.add_error(key, str(exc))
            raise ValueError("") from None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        values: dict[str, Any] = {}
        for spec in self.catalog.value_fields():
            name, kind = str(spec["name"]), str(spec["type"])
            key = _field_key(name)
            try:
                if kind == "geolocation":
                    values[name] = self._geolocation(cleaned, name)
                    continue
                if key not in cleaned:
                    continue
                if kind == "array":
                    lines = _lines(cleaned[key] or "")
                    values[name] = rules.check_array(lines) if lines else None
                else:
                    values[name] = rules.parse_value(kind, cleaned[key] or "")
            except ValueError as exc:
                if str(exc):
                    self.add_error(key, str(exc))
        if not self.errors:
            for error in rules.item_size_errors(values):
                self.add_error(None, error)
        cleaned["values"] = values
        return cleaned

    @staticmethod
    def initial_for(catalog: Catalog, data: dict[str, Any]) -> dict[str, str]:
        types = catalog.field_types()
        initial = {}
        for name, value in data.items():
            kind = types.get(name, "string")
            if kind == "geolocation" and isinstance(value, list) and len(value) == 2:
                for key, coordinate in zip(_geo_keys(name), value, strict=True):
                    initial[key] = str(coordinate)
            elif kind == "array" and isinstance(value, list):
                initial[_field_key(name)] = "\n".join(str(v) for v in value)
            else:
                initial[_field_key(name)] = rules.value_as_text(kind, value)
        return initial


class FieldRowForm(forms.Form):
    name = forms.CharField(label="Field name", required=False, max_length=1000)
    type = forms.ChoiceField(
        label="Type", choices=[(t, t) for t in rules.FIELD_TYPES], initial="string"
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        if name:
            for error in rules.field_name_errors(name):
                self.add_error("name", error)
        return name


FieldRowFormSet = formset_factory(FieldRowForm, extra=0, max_num=1000, absolute_max=1000)


class CatalogCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=1000,
        help_text="Letters, numbers, hyphens and underscores; at most 250 characters. "
        "A catalog's name cannot be changed later.",
    )
    description = forms.CharField(
        label="Description", required=False, max_length=1000, widget=forms.TextInput
    )

    def clean_name(self) -> str:
        name: str = self.cleaned_data["name"].strip()
        for error in rules.catalog_name_errors(name):
            self.add_error("name", error)
        if Catalog.objects.filter(
            workspace=workspace_default_key(), name=name, present_in_braze=True
        ).exists():
            self.add_error(
                "name", "A catalog with that name already exists (catalog-name-already-exists)."
            )
        return name

    def clean_description(self) -> str:
        description: str = self.cleaned_data["description"]
        for error in rules.description_errors(description):
            self.add_error("description", error)
        return description


def schema_errors(formset: Any) -> list[str]:
    """Whole-list rules (id first, unique names, the field limit) on a valid formset."""
    return rules.fields_errors(schema_fields(formset))


def schema_fields(formset: Any) -> list[tuple[str, str]]:
    return [
        (f.cleaned_data["name"], f.cleaned_data["type"])
        for f in formset.forms
        if f.cleaned_data.get("name")
    ]


class CatalogDeleteForm(forms.Form):
    confirm_name = forms.CharField(label="Type the catalog's name to confirm", max_length=1000)

    def __init__(self, *args: Any, catalog: Catalog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog

    def clean_confirm_name(self) -> str:
        typed: str = self.cleaned_data["confirm_name"]
        if typed != self.catalog.name:
            raise forms.ValidationError(
                f"That is not the catalog's name; type {self.catalog.name} exactly."
            )
        return typed


class ItemFilterForm(forms.Form):
    """Search, typed filters per field, and the column chooser. Bad values are ignored
    with a message, never an error page: the list keeps answering as the user types."""

    q = forms.CharField(label="Search text fields", required=False, max_length=200)

    def __init__(self, *args: Any, catalog: Catalog, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.catalog = catalog
        for spec in catalog.value_fields():
            name, kind = str(spec["name"]), str(spec["type"])
            if kind == "string":
                self.fields[f"f_{name}"] = forms.CharField(
                    label=f"{name} contains", required=False, max_length=200
                )
            elif kind == "number":
                self.fields[f"f_{name}_min"] = forms.FloatField(
                    label=f"{name} from", required=False
                )
                self.fields[f"f_{name}_max"] = forms.FloatField(label=f"{name} to", required=False)
            elif kind == "boolean":
                self.fields[f"f_{name}"] = forms.ChoiceField(
                    label=name, required=False, choices=BOOL_CHOICES
                )
            elif kind == "time":
                for suffix, word in (("after", "from"), ("before", "to")):
                    self.fields[f"f_{name}_{suffix}"] = forms.CharField(
                        label=f"{name} {word}",
                        required=False,
                        help_text="ISO 8601 date or time",
                        widget=forms.TextInput(attrs={"placeholder": "2026-01-31"}),
                    )
        names = [str(s["name"]) for s in catalog.value_fields()]
        self.fields["cols"] = forms.MultipleChoiceField(
            label="Columns",
            required=False,
            choices=[(n, n) for n in names],
            widget=forms.CheckboxSelectMultiple,
        )

    def filter_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("f_")]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for spec in self.catalog.value_fields():
            name = str(spec["name"])
            for suffix in ("after", "before"):
                key = f"f_{name}_{suffix}"
                text = cleaned.get(key)
                if text:
                    try:
                        moment = rules.parse_time(text)
                    except ValueError:
                        self.add_error(key, "Use an ISO 8601 date or time, e.g. 2026-01-31.")
                        continue
                    if suffix == "before" and "T" not in text:
                        # A bare date "to" means the end of that day.
                        moment = moment.replace(hour=23, minute=59, second=59, microsecond=999000)
                    cleaned[key] = rules.time_canonical(moment)
        return cleaned

    def columns(self) -> list[str]:
        names = [str(s["name"]) for s in self.catalog.value_fields()]
        chosen = self.cleaned_data.get("cols") if self.is_bound and self.is_valid() else None
        return [n for n in names if n in chosen] if chosen else names[:DEFAULT_COLUMNS]

    def item_query(self, *, sort: str, descending: bool) -> ItemQuery:
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        if self.is_bound and not self.is_valid():
            # Keep the valid filters: a half-typed value must not empty the list.
            data = {k: v for k, v in self.cleaned_data.items() if k not in self.errors}
        filters = []
        for spec in self.catalog.value_fields():
            name, kind = str(spec["name"]), str(spec["type"])
            if kind == "string" and data.get(f"f_{name}"):
                filters.append(ItemFilter(name, "contains", data[f"f_{name}"]))
            elif kind == "boolean" and data.get(f"f_{name}") in ("true", "false"):
                filters.append(ItemFilter(name, "is", data[f"f_{name}"] == "true"))
            elif kind == "number":
                for suffix in ("min", "max"):
                    if data.get(f"f_{name}_{suffix}") is not None:
                        filters.append(ItemFilter(name, suffix, data[f"f_{name}_{suffix}"]))
            elif kind == "time":
                for suffix in ("after", "before"):
                    if data.get(f"f_{name}_{suffix}"):
                        filters.append(ItemFilter(name, suffix, data[f"f_{name}_{suffix}"]))
        return ItemQuery(
            search=data.get("q", "") or "", sort=sort, descending=descending, filters=filters
        )
