"""Deterministic demo data for workspace "demo" and company "demo-company", and a second,
smaller set for any further workspace (``seed_workspace``): some of the same content with
other ids, one block worded differently, and what the promotional templates need missing, so
the two differ the way a staging and a production workspace do."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from braze_sandbox.scim_strings import stable_id
from braze_sandbox.store import Store

WORKSPACE = "demo"
COMPANY = "demo-company"
TAGS = ["newsletter", "promotional", "transactional", "onboarding", "seasonal", "legal", "brand"]
BASE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

PRODUCT_FIELDS = [
    ("id", "string"),
    ("name", "string"),
    ("category", "string"),
    ("brand", "string"),
    ("price", "number"),
    ("sale_price", "number"),
    ("rating", "number"),
    ("stock", "number"),
    ("in_stock", "boolean"),
    ("featured", "boolean"),
    ("released_at", "time"),
    ("image_url", "string"),
    ("color", "string"),
]
CATEGORIES = ["shoes", "jackets", "shirts", "trousers", "bags", "hats", "socks", "watches"]
BRANDS = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Litware", "Adatum"]
COLORS = ["black", "white", "navy", "olive", "red", "sand", "grey"]
ADJECTIVES = ["Classic", "Trail", "Urban", "Coastal", "Alpine", "Everyday", "Studio", "Heritage"]


def _stamp(offset_hours: float) -> str:
    return (BASE + timedelta(hours=offset_hours)).isoformat(timespec="milliseconds")


def _time_value(offset_hours: float) -> str:
    """An item's time value as Braze returns it: UTC with ``Z``."""
    return _stamp(offset_hours).replace("+00:00", "Z")


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seed_demo(store: Store, *, products: int = 10_000, profile: str = "current") -> None:
    rng = random.Random(20260105)
    store.add_tags(WORKSPACE, TAGS)
    _catalogs(store, rng, products, WORKSPACE)
    blocks = _content_blocks(store, rng, WORKSPACE, BLOCKS)
    _templates(store, rng, blocks, WORKSPACE, TEMPLATES)
    _preference_center(store, rng, WORKSPACE)
    _users(store, WORKSPACE)
    _scim_users(store, rng, legacy=profile == "reference")


# In a further workspace: blocks the promotional templates include are missing (a promotion
# brings them along), and the legal notice still carries last year's wording.
_ONLY_IN_DEMO_BLOCKS = {"product_spotlight", "seasonal_banner"}
_FURTHER_LEGAL_NOTICE = (
    '<p style="font-size:11px">© 2025 Example Outfitters Ltd. All rights reserved.</p>'
)


def seed_workspace(store: Store, workspace: str, *, products: int = 10_000) -> None:
    """A further workspace's demo data (dashboard users belong to the company: none here)."""
    rng = random.Random(f"workspace:{workspace}")
    store.add_tags(workspace, TAGS)
    _catalogs(store, rng, max(1, products // 20), workspace)
    blocks = [
        (name, description, _FURTHER_LEGAL_NOTICE if name == "legal_notice" else content, tags)
        for name, description, content, tags in BLOCKS
        if name not in _ONLY_IN_DEMO_BLOCKS
    ]
    ids = _content_blocks(store, rng, workspace, blocks)
    templates = [t for t in TEMPLATES if not {"promotional", "seasonal"} & set(t[3])]
    _templates(store, rng, ids, workspace, templates)
    _preference_center(store, rng, workspace)
    _users(store, workspace)


def _catalog(
    store: Store,
    name: str,
    description: str,
    fields: list[tuple[str, str]],
    at: str,
    workspace: str,
) -> None:
    store.x(
        "INSERT INTO catalogs VALUES (?, ?, ?, ?, ?, ?)",
        (
            workspace,
            name,
            description,
            json.dumps([{"name": n, "type": t} for n, t in fields]),
            at,
            at,
        ),
    )


def _catalogs(store: Store, rng: random.Random, products: int, workspace: str) -> None:
    _catalog(
        store, "products", "Product feed for recommendations", PRODUCT_FIELDS, _stamp(1), workspace
    )
    rows = []
    for n in range(products):
        category = CATEGORIES[n % len(CATEGORIES)]
        price = round(rng.uniform(5, 400), 2)
        stock = rng.randint(0, 250)
        rows.append(
            (
                workspace,
                "products",
                f"sku-{n:06d}",
                json.dumps(
                    {
                        "name": f"{rng.choice(ADJECTIVES)} {category[:-1].title()} {n}",
                        "category": category,
                        "brand": rng.choice(BRANDS),
                        "price": price,
                        "sale_price": round(price * rng.choice([1, 1, 1, 0.8, 0.7]), 2),
                        "rating": round(rng.uniform(1, 5), 1),
                        "stock": stock,
                        "in_stock": stock > 0,
                        "featured": rng.random() < 0.05,
                        "released_at": _time_value(-rng.randint(0, 24 * 700)),
                        "image_url": f"https://img.example.com/products/sku-{n:06d}.jpg",
                        "color": rng.choice(COLORS),
                    }
                ),
            )
        )
    store.xm(
        "INSERT INTO catalog_items (workspace, catalog, item_id, data) VALUES (?, ?, ?, ?)", rows
    )
    stores = [
        ("id", "string"),
        ("city", "string"),
        ("lat", "number"),
        ("lon", "number"),
        ("open_sundays", "boolean"),
        ("opened_at", "time"),
    ]
    _catalog(store, "stores", "Physical stores", stores, _stamp(2), workspace)
    cities = [
        ("London", 51.5, -0.12),
        ("Paris", 48.86, 2.35),
        ("Berlin", 52.52, 13.4),
        ("Madrid", 40.42, -3.7),
        ("Lisbon", 38.72, -9.14),
        ("Dublin", 53.35, -6.26),
    ]
    store.xm(
        "INSERT INTO catalog_items (workspace, catalog, item_id, data) VALUES (?, ?, ?, ?)",
        [
            (
                workspace,
                "stores",
                f"store-{city.lower()}",
                json.dumps(
                    {
                        "city": city,
                        "lat": lat,
                        "lon": lon,
                        "open_sundays": i % 2 == 0,
                        "opened_at": _time_value(-24 * 365 * (i + 1)),
                    }
                ),
            )
            for i, (city, lat, lon) in enumerate(cities)
        ],
    )
    tiers = [("id", "string"), ("label", "string"), ("min_points", "number")]
    _catalog(store, "loyalty_tiers", "Loyalty programme tiers", tiers, _stamp(3), workspace)
    store.xm(
        "INSERT INTO catalog_items (workspace, catalog, item_id, data) VALUES (?, ?, ?, ?)",
        [
            (
                workspace,
                "loyalty_tiers",
                tier,
                json.dumps({"label": tier.title(), "min_points": pts}),
            )
            for tier, pts in (("bronze", 0), ("silver", 1000), ("gold", 5000))
        ],
    )


BLOCKS: list[tuple[str, str, str, list[str]]] = [
    (
        "legal_notice",
        "Legal small print",
        '<p style="font-size:11px">© 2026 Example Outfitters Ltd. All rights reserved.</p>',
        ["legal"],
    ),
    (
        "email_footer",
        "Standard footer with unsubscribe link",
        '<footer>{{content_blocks.${legal_notice}}}<a href="${set_user_to_unsubscribed_url}">'
        "Unsubscribe</a></footer>",
        ["brand"],
    ),
    (
        "email_header",
        "Logo header",
        '<header><img src="https://img.example.com/logo.png" alt="Example Outfitters"></header>',
        ["brand"],
    ),
    ("greeting", "Personal greeting", "Hi {{${first_name} | default: 'there'}},", ["brand"]),
    (
        "product_spotlight",
        "Featured product from the catalog",
        "{% catalog_items products sku-000001 %}<h2>{{ items[0].name }}</h2>"
        "<p>{{ items[0].price }} EUR</p>",
        ["promotional"],
    ),
    (
        "seasonal_banner",
        "Seasonal banner",
        "{% if ${country} == 'GB' %}<p>Spring sale in the UK!</p>{% else %}<p>Spring sale!</p>"
        "{% endif %}",
        ["seasonal", "promotional"],
    ),
]


def _content_blocks(
    store: Store,
    rng: random.Random,
    workspace: str,
    blocks: list[tuple[str, str, str, list[str]]],
) -> dict[str, str]:
    ids: dict[str, str] = {}
    for n, (name, description, content, tags) in enumerate(blocks):
        block_id = _id(rng)
        ids[name] = block_id
        inclusions = [
            {"message_variation_api_id": _id(rng), "campaign_api_id": _id(rng)}
            for _ in range(rng.randint(0, 4))
        ]
        content_type = "html" if "<" in content else "text"
        store.x(
            "INSERT INTO content_blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'html', 0, ?, ?)",
            (
                block_id,
                workspace,
                name,
                description,
                content,
                content_type,
                "draft" if name == "seasonal_banner" else "active",
                json.dumps(tags),
                json.dumps(inclusions),
                _stamp(10 + n),
                _stamp(20 + n),
            ),
        )
    return ids


TEMPLATES = [
    ("Welcome", "Welcome to Example Outfitters", "Your style journey starts here", ["onboarding"]),
    ("Weekly Newsletter", "This Week's Styles", "Fresh picks for you", ["newsletter"]),
    ("Spring Sale", "Spring sale: up to 30% off", "Ends Sunday", ["promotional", "seasonal"]),
    ("Order Confirmation", "Your order is confirmed", "Thanks for shopping", ["transactional"]),
    ("Shipping Update", "Your order is on its way", "Track your parcel", ["transactional"]),
    ("Password Reset", "Reset your password", "This link expires in 1 hour", ["transactional"]),
    ("Back in Stock", "It's back!", "The item you wanted is available", ["promotional"]),
    ("Price Drop", "A price just dropped", "Good news for your wishlist", ["promotional"]),
    ("Loyalty Gold", "Welcome to Gold", "Your new perks", ["brand"]),
    ("Abandoned Cart", "You left something behind", "Complete your order", ["promotional"]),
    ("Winback", "We miss you", "Here is 10% off", ["promotional"]),
    ("Survey", "Tell us how we did", "Two minutes, one coupon", ["newsletter"]),
]


def _templates(
    store: Store,
    rng: random.Random,
    blocks: dict[str, str],
    workspace: str,
    templates: list[tuple[str, str, str, list[str]]],
) -> None:
    for n, (name, subject, preheader, tags) in enumerate(templates):
        body = (
            "<html><body>{{content_blocks.${email_header}}}"
            f"<p>{{{{content_blocks.${{greeting}}}}}}</p><h1>{subject}</h1>"
            "<p>Take a look at https://www.example.com/ for more.</p>"
            + ("{{content_blocks.${product_spotlight}}}" if "promotional" in tags else "")
            + "{{content_blocks.${email_footer}}}</body></html>"
        )
        store.x(
            "INSERT INTO email_templates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                _id(rng),
                workspace,
                name,
                f"{name} email",
                subject,
                body,
                f"{subject}\n\nVisit https://www.example.com/",
                preheader,
                json.dumps(tags),
                None if n % 3 else 1,
                "html",
                _stamp(30 + n),
                _stamp(40 + n * 2),
            ),
        )
    # One drag-and-drop template: Braze's list API hides these (templates.md).
    store.x(
        "INSERT INTO email_templates VALUES"
        " (?, ?, ?, '', ?, ?, NULL, NULL, '[]', NULL, 'dnd', ?, ?)",
        (
            _id(rng),
            workspace,
            "DnD Holiday Card",
            "Happy holidays",
            "<table></table>",
            _stamp(60),
            _stamp(60),
        ),
    )


def _preference_center(store: Store, rng: random.Random, workspace: str) -> None:
    page = (
        '<html><body><h1>Email preferences</h1><form action="{{preference_center_submit_url}}">'
        '<label><input type="checkbox" {% form_field_name :email_global_state %}> All email'
        "</label><p>Status: {{subscribed_state.${email_global}}}</p>"
        "<button>Save</button></form></body></html>"
    )
    store.x(
        "INSERT INTO preference_centers VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)",
        (
            _id(rng),
            workspace,
            "main_preferences",
            "Example Outfitters preferences",
            page,
            "<html><body><p>Your preferences were saved.</p></body></html>",
            json.dumps({"meta-viewport-content": "width=device-width, initial-scale=1"}),
            "active",
            "2026-01-06T10:00:00Z",
            "2026-01-06T10:00:00Z",
        ),
    )


# Customers of the demo workspace, as /users/export/ids describes a user (export object).
CUSTOMERS: list[dict[str, Any]] = [
    {
        "external_id": "customer-1001",
        "braze_id": "5fa0c2d1e3b4a5968778a001",
        "user_aliases": [{"alias_name": "maya-crm-1001", "alias_label": "crm_id"}],
        "first_name": "Maya",
        "last_name": "Lindqvist",
        "email": "maya.lindqvist@example.com",
        "dob": "1988-04-12",
        "home_city": "Stockholm",
        "country": "SE",
        "language": "sv",
        "time_zone": "Europe/Stockholm",
        "gender": "F",
        "random_bucket": 4211,
        "email_subscribe": "opted_in",
        "custom_attributes": {
            "loyalty_points": 1250,
            "tier": "gold",
            "favorite_category": "jackets",
            "pets": [{"type": "dog", "name": "Sixten"}],
        },
        "devices": [{"model": "Pixel 8", "os": "Android 15", "device_id": "dev-maya-1"}],
        "created_at": "2024-02-01T08:15:00.000Z",
    },
    {
        "external_id": "customer-1002",
        "braze_id": "5fa0c2d1e3b4a5968778a002",
        "first_name": "Tomás",
        "email": "tomas.r@example.com",
        "home_city": "Sevilla",
        "country": "ES",
        "language": "es",
        "time_zone": "Europe/Madrid",
        "random_bucket": 903,
        "email_subscribe": "subscribed",
        "custom_attributes": {"loyalty_points": 80, "tier": "bronze"},
        "created_at": "2025-06-20T17:40:00.000Z",
    },
    {
        # No first name and no custom attributes: what a `default:` filter is for.
        "external_id": "customer-1003",
        "braze_id": "5fa0c2d1e3b4a5968778a003",
        "email": "anonymous.shopper@example.com",
        "language": "en",
        "time_zone": "America/Chicago",
        "random_bucket": 7777,
        "email_subscribe": "unsubscribed",
        "created_at": "2026-01-02T11:00:00.000Z",
    },
]


def _users(store: Store, workspace: str) -> None:
    store.xm(
        "INSERT INTO users (workspace, external_id, data) VALUES (?, ?, ?)",
        [(workspace, c["external_id"], json.dumps(c)) for c in CUSTOMERS],
    )


USERS = [
    ("ada.admin@example.com", "Ada", "Admin", "engineering", ["admin"]),
    ("mark.eting@example.com", "Mark", "Eting", "marketing", []),
    ("fin.ance@example.com", "Fin", "Ance", "finance", []),
    ("pam.manager@example.com", "Pam", "Manager", "pm", ["manage_company_settings"]),
    ("aggie.agency@example.com", "Aggie", "Agency", "agency", []),
]
WORKSPACE_ID = "6f1c2b3a4d5e6f7a8b9"


def _legacy_permissions(department: str) -> dict[str, Any]:
    """The reference collection's accounts: legacy strings, no roles or permission sets."""
    return {
        "appGroup": [
            {
                "appGroupId": WORKSPACE_ID,
                "appGroupName": "demo",
                "appGroupPermissions": ["basic_access", "send_campaigns_canvases"]
                if department == "marketing"
                else ["basic_access"],
                "team": [],
            }
        ]
    }


def _granular_permissions(department: str) -> dict[str, Any]:
    """Accounts as Braze holds them after the granular permissions migration: granular
    strings, and some access given through roles, a permission set or a team."""
    group: dict[str, Any] = {"appGroupId": WORKSPACE_ID, "appGroupName": "demo"}
    roles: list[dict[str, str]] = []
    if department == "agency":
        group["appGroupPermissionSets"] = [
            {
                "appGroupPermissionSetName": "Agency Access",
                "appGroupPermissionSetId": stable_id("set", "Agency Access"),
            }
        ]
    elif department == "marketing":
        group["appGroupPermissions"] = ["view_campaigns", "edit_campaigns", "launch_campaigns"]
        group["team"] = [
            {
                "teamId": stable_id("team", "Shoes", 17),
                "teamName": "Shoes",
                "teamPermissions": ["view_campaigns", "edit_campaigns"],
            }
        ]
        roles = [{"roleName": "Content Editor", "roleId": stable_id("role", "Content Editor")}]
    elif department == "pm":
        group["appGroupPermissions"] = ["view_campaigns", "view_canvases"]
        roles = [
            {"roleName": "Workspace Manager", "roleId": stable_id("role", "Workspace Manager")}
        ]
    else:
        group["appGroupPermissions"] = ["view_campaigns", "view_canvases", "view_segments"]
    return {"roles": roles, "appGroup": [group]} if roles else {"appGroup": [group]}


def _scim_users(store: Store, rng: random.Random, *, legacy: bool) -> None:
    for n, (email, given, family, department, company_perms) in enumerate(USERS):
        permissions = {
            "companyPermissions": company_perms,
            **(_legacy_permissions(department) if legacy else _granular_permissions(department)),
        }
        user_id = "-".join(f"{rng.getrandbits(32):08x}" for _ in range(4))
        store.x(
            "INSERT INTO scim_users (id, company, user_name, given_name, family_name,"
            " department, permissions, last_sign_in_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user_id,
                COMPANY,
                email,
                given,
                family,
                department,
                json.dumps(permissions),
                None if n == 4 else "Monday, January 5, 2026 9:00:00 AM",
                _stamp(n),
            ),
        )
