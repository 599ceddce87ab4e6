"""Simulated staff for `make bench-web` (Locust): Editors browse, filter and propose; Reviewers
look through the queue and approve. Real pages and htmx fragments of a running console.

Not run on its own: scripts/bench_web.py signs the users in and writes BENCH_WEB_PLAN (a JSON
file: session cookies per role, the catalog, its item ids and a number field to edit), then
runs Locust with this file and reads the response times it writes to BENCH_WEB_SAMPLES.

Each request is named "page: …" or "fragment: …" (htmx requests that swap one element),
so the two kinds get their own p95.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

PLAN: dict[str, Any] = (
    json.loads(Path(os.environ["BENCH_WEB_PLAN"]).read_text())
    if os.environ.get("BENCH_WEB_PLAN")
    else {"editor": [""], "reviewer": [""], "catalog": "products", "items": ["1"], "field": ""}
)
SAMPLES: dict[str, list[float]] = {"page": [], "fragment": []}
BY_NAME: dict[str, list[float]] = {}
ERRORS: list[str] = []
_cookies = {role: itertools.cycle(PLAN[role]) for role in ("editor", "reviewer")}
_CHANGE_LINK = re.compile(r'href="/changes/(\d+)/"')
HTMX = {"HX-Request": "true", "HX-Target": "results"}


@events.request.add_listener
def _record(name: str, response_time: float, exception: Exception | None, **_: Any) -> None:
    kind = name.split(":", 1)[0]
    if exception is not None:
        ERRORS.append(f"{name}: {exception}"[:300])
    elif kind in SAMPLES:
        SAMPLES[kind].append(response_time)
        BY_NAME.setdefault(name, []).append(response_time)


@events.quitting.add_listener
def _write(**_: Any) -> None:
    if path := os.environ.get("BENCH_WEB_SAMPLES"):
        Path(path).write_text(
            json.dumps({"samples": SAMPLES, "by_name": BY_NAME, "errors": ERRORS})
        )


class _Form(HTMLParser):
    """The fields of a page's POST forms: name -> value (checked boxes, selected options)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name:
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if a.get("type") != "submit":
                self.fields[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""
        elif (
            tag == "option"
            and self._select
            and ("selected" in a or self._select not in self.fields)
        ):
            self.fields[self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_fields(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html)
    return parser.fields


def _named(name: str) -> dict[str, str]:
    """The request's name for the server-side figures (scripts/bench_web_gunicorn.py)."""
    return {"X-Bench-Name": name}


class _Staff(HttpUser):
    abstract = True
    wait_time = between(1, 3)  # people read a page before the next click
    role = ""

    def on_start(self) -> None:
        self.client.cookies.set("sessionid", next(_cookies[self.role]))

    def get(self, url: str, name: str, *, fragment: bool = False, **kw: Any) -> Any:
        headers = {**(HTMX if fragment else {}), **_named(name)}
        return self.client.get(url, name=name, headers=headers, **kw)


class Editor(_Staff):
    weight = 4
    role = "editor"

    def _items(self) -> str:
        return f"/catalogs/{PLAN['catalog']}/items/"

    @task(4)
    def item_list(self) -> None:
        self.get(self._items(), "page: item list")

    @task(4)
    def item_filter(self) -> None:
        self.get(
            self._items(),
            "fragment: item filter",
            fragment=True,
            params={"q": random.choice(PLAN["items"])[:4]},
        )

    @task(3)
    def item_detail(self) -> None:
        self.get(f"{self._items()}{random.choice(PLAN['items'])}/", "page: item detail")

    @task(1)
    def propose(self) -> None:
        url = f"{self._items()}{random.choice(PLAN['items'])}/edit/"
        page = self.get(url, "page: edit form")
        if page.status_code != 200 or not PLAN["field"]:
            return
        fields = form_fields(page.text)
        fields[PLAN["field"]] = str(random.randint(1, 10**6))
        with self.client.post(
            url,
            data=fields,
            name="page: propose",
            headers={"Referer": page.url, **_named("page: propose")},
            catch_response=True,
        ) as answer:
            if "/changes/" not in answer.url:
                answer.failure(f"the proposal was not made ({answer.status_code} at {answer.url})")


class Reviewer(_Staff):
    weight = 1
    role = "reviewer"

    @task(3)
    def change_list(self) -> None:
        self.get("/changes/", "page: change list")

    @task(3)
    def change_filter(self) -> None:
        self.get("/changes/", "fragment: change filter", fragment=True, params={"view": "all"})

    @task(2)
    def approve(self) -> None:
        # The requests awaiting this reviewer (the list's default view for a Reviewer).
        queue = self.get(
            "/changes/", "fragment: change filter", fragment=True, params={"view": "review"}
        )
        pending = _CHANGE_LINK.findall(queue.text)
        if not pending:
            return
        pk = random.choice(pending)
        page = self.get(f"/changes/{pk}/", "page: change detail")
        token = form_fields(page.text).get("csrfmiddlewaretoken", "")
        with self.client.post(
            f"/changes/{pk}/act",
            data={"op": "approve", "csrfmiddlewaretoken": token},
            name="page: approve",
            headers={"Referer": page.url, **_named("page: approve")},
            catch_response=True,
        ) as answer:
            # Another reviewer may have approved it first, or it needs a second approver:
            # the console answers with a message, which is not an error of the web tier.
            if answer.status_code >= 400:
                answer.failure(f"approve answered {answer.status_code}")
