"""Accessibility: every screen of every role passes axe-core's checks with no serious or
critical violation, works from the keyboard alone and keeps its layout at 200% zoom.

The walk opens every GET screen of `CRAWL` (tests/console/test_role_crawl.py, itself checked
against the URL conf) that `MATRIX` lets the role open, with the crawl's real objects behind
every path parameter, so a new screen is walked as soon as it is in those tables. axe-core comes
from axe-playwright-python, which ships axe.min.js in its wheel (README, "Dependencies").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.urls import reverse
from playwright.sync_api import Browser, Page, ViewportSize, expect

from console.roles import Role
from tests.browser.helpers import totp_code
from tests.console import test_role_crawl as crawl
from tests.console.test_access_matrix import MATRIX
from tests.factories import TEST_PASSWORD

# The crawl's world and its Braze sandbox settings, shared rather than rebuilt.
braze_world = crawl.braze_world
world_for = crawl.world_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

# GET URLs that answer something other than a screen of the console.
NOT_SCREENS: dict[str, str] = {
    "healthz": "JSON for load balancers",
    "metrics": "Prometheus' text format",
    "catalogs:item_export": "a download",
    "catalog_bulk:errors": "a download",
    "catalog_bulk:report": "a download",
    "bundles:export": "a download (the content files' zip)",
    # Braze's own HTML, shown only inside a sandboxed frame of a console screen (walked there).
    "templates_app:preview": "Braze's HTML, not the console's",
}
BLOCKING = frozenset({"serious", "critical"})
# The sandboxed preview frames hold Braze's HTML and run no script, so axe cannot enter them
# (it would wait for each frame's answer); the frame elements themselves are still checked.
AXE_OPTIONS: dict[str, Any] = {"resultTypes": ["violations"], "iframes": False}
_axe = Axe()
VIEWPORT = ViewportSize(width=1280, height=800)  # tests/browser/conftest.py
ZOOMED = ViewportSize(width=VIEWPORT["width"] // 2, height=VIEWPORT["height"] // 2)


def axe_violations(page: Page, where: str) -> list[str]:
    """The serious and critical violations on the page, one readable line per element."""
    results = _axe.run(page, options=AXE_OPTIONS).response
    return [
        f"{where}: {violation['id']} ({violation['impact']}) at {', '.join(node['target'])}"
        f" — {violation['help']}"
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
        for node in violation["nodes"]
    ]


def _may_open(name: str, who: str) -> bool:
    rule = MATRIX[name]
    if who == crawl.ANONYMOUS:
        return rule.public and name != "logout"
    return rule.any_signed_in or (who != crawl.NO_ROLE and Role(who) in rule.allowed)


def screens_of(world: crawl.World, who: str) -> list[str]:
    """The URL of every screen `who` may open, each once. Targets that only redirect lead to
    screens walked on their own."""
    urls: list[str] = []
    for name, targets in crawl.CRAWL.items():
        if MATRIX[name].method != "get" or name in NOT_SCREENS or not _may_open(name, who):
            continue
        for target in targets:
            if target.ok <= {302, 303, 401}:
                continue
            url = reverse(name, kwargs=target.kwargs(world) or None) + target.query
            if url not in urls:
                urls.append(url)
    return urls


def sign_in_checked(page: Page, base_url: str, username: str) -> list[str]:
    """Sign in through the login page and the second-factor page, checking both with axe."""
    page.goto(f"{base_url}{reverse('login')}")
    problems = axe_violations(page, "login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")
    if reverse("mfa:verify") in page.url:
        problems += axe_violations(page, "second factor")
        page.get_by_label("Code").fill(totp_code(username))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state("load")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return problems


# How far the page scrolls sideways, and the innermost elements that stick out (not those
# inside a box that scrolls or clips on its own).
SIDEWAYS = """() => {
  const root = document.scrollingElement, width = root.clientWidth;
  const sticksOut = (el) => el.getBoundingClientRect().right > width + 1;
  const clipped = (el) => {
    for (let n = el.parentElement; n && n !== document.body; n = n.parentElement) {
      if (getComputedStyle(n).overflowX !== "visible") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className.trim()
       ? "." + el.className.trim().split(/\\s+/).join(".") : "");
  const culprits = [...document.body.querySelectorAll("*")].filter(
    (el) => sticksOut(el) && ![...el.children].some(sticksOut) && !clipped(el));
  return {overflow: root.scrollWidth - width, culprits: culprits.slice(0, 3).map(name)};
}"""


def sideways_scroll(page: Page, where: str) -> list[str]:
    """At 200% zoom (a 1280-pixel screen shows 640 CSS pixels) the page must not scroll
    sideways: wide tables and code scroll inside their own box instead."""
    page.set_viewport_size(ZOOMED)
    found = page.evaluate(SIDEWAYS)
    page.set_viewport_size(VIEWPORT)
    if found["overflow"] <= 0:
        return []
    culprits = ", ".join(found["culprits"])
    return [f"{where}: scrolls sideways by {found['overflow']}px at 200% zoom ({culprits})"]


def walk(page: Page, base_url: str, urls: list[str]) -> list[str]:
    problems: list[str] = []
    for url in urls:
        response = page.goto(f"{base_url}{url}", wait_until="load")
        assert response is not None, url
        content_type = response.headers.get("content-type", "")
        assert content_type.startswith("text/html"), f"{url} answers {content_type}: NOT_SCREENS?"
        problems += axe_violations(page, url)
        problems += sideways_scroll(page, url)
    return problems


@pytest.mark.parametrize("who", crawl.WHO)
def test_every_screen_of_every_role_passes_axe_and_reflows_at_200_percent(
    live_server: Any, browser: Browser, world_for: Callable[[str], crawl.World], who: str
) -> None:
    world = world_for(who)
    page = browser.new_context().new_page()
    problems: list[str] = []
    if world.crawler is not None:
        problems += sign_in_checked(page, live_server.url, world.crawler.get_username())
    urls = screens_of(world, who)
    problems += walk(page, live_server.url, urls)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)
    # The walk cannot pass by opening nothing: the sign-in screens for anonymous, home and
    # one's own account screens for everyone signed in, and the lists for every role.
    fewest = {crawl.ANONYMOUS: 3, crawl.NO_ROLE: 5}.get(who, 20)
    assert len(urls) >= fewest, urls


def _signed_in(browser: Browser, base_url: str, world: crawl.World) -> Page:
    assert world.crawler is not None
    page = browser.new_context().new_page()
    sign_in_checked(page, base_url, world.crawler.get_username())
    return page


def test_htmx_states_pass_axe(
    live_server: Any, browser: Browser, world_for: Callable[[str], crawl.World]
) -> None:
    """What htmx puts on a screen is checked too: a form refused with errors, a live preview
    that reports errors, a filter that finds nothing, a "preview as" result."""
    world = world_for(Role.EDITOR)
    base = live_server.url
    page = _signed_in(browser, base, world)
    problems: list[str] = []

    page.goto(f"{base}{reverse('catalogs:create')}")
    page.get_by_role("button", name="Propose catalog").click()
    page.wait_for_load_state("load")
    expect(page.locator(".field-invalid").first).to_be_visible()
    problems += axe_violations(page, "a new catalog refused with errors")

    page.goto(f"{base}{reverse('catalogs:selection_create', args=[world.catalog])}")
    with page.expect_response(lambda r: r.request.method == "POST"):
        page.get_by_label("Results limit").fill("999")
        page.keyboard.press("Tab")
    expect(page.locator("#preview [role=alert]")).to_be_visible()
    problems += axe_violations(page, "a selection's live preview with errors")

    page.goto(f"{base}{reverse('catalogs:items', args=[world.catalog])}")
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true"):
        page.get_by_label("Search text fields").fill("nothing-matches-this")
    expect(page.locator("#results .empty-state")).to_be_visible()
    problems += axe_violations(page, "an item search that finds nothing")

    detail = reverse("templates_app:content_block_detail", args=[world.content_block_id])
    page.goto(f"{base}{detail}")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("#preview-as iframe").first).to_be_attached()
    problems += axe_violations(page, "a content block previewed as a person")

    assert not problems, "\n".join(problems)


# Where focus is, and whether it is drawn: an outline or ring whose colour stands out at least
# 3:1 (WCAG 1.4.11) from the background around the element, where the indicator is drawn.
FOCUSED = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  const rgb = (s) =>
    ((s || "").match(/rgba?\\(([^)]+)\\)/) || [0, "0,0,0,0"])[1].split(",").map(Number);
  const lum = (c) => {
    const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  let around = [255, 255, 255];
  for (let n = el.parentElement; n; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length < 4 || c[3] > 0) { around = c; break; }
  }
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0
    ? ratio(rgb(style.outlineColor), around) : 0;
  const ring = style.boxShadow !== "none" ? ratio(rgb(style.boxShadow), around) : 0;
  return {
    tag: el.tagName.toLowerCase(), id: el.id, cls: el.className,
    text: (el.textContent || "").trim().slice(0, 40), inMain: !!el.closest("main"),
    shown: box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0,
    contrast: Math.round(Math.max(outline, ring) * 10) / 10,
  };
}"""


def test_tab_from_the_top_reaches_the_skip_link_first_and_it_moves_focus_to_main(
    live_server: Any, browser: Browser, world_for: Callable[[str], crawl.World]
) -> None:
    page = _signed_in(browser, live_server.url, world_for(Role.EDITOR))
    page.goto(f"{live_server.url}{reverse('catalogs:list')}")
    page.keyboard.press("Tab")
    focused = page.evaluate(FOCUSED)
    assert focused["cls"] == "skip-link", focused
    assert focused["shown"], focused
    assert focused["contrast"] >= 3, focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate(FOCUSED)["inMain"], "the next stop after the skip link is in main"


@pytest.mark.parametrize("who", [Role.EDITOR, Role.ADMIN])
def test_every_stop_the_keyboard_reaches_shows_focus(
    live_server: Any, browser: Browser, world_for: Callable[[str], crawl.World], who: Role
) -> None:
    """Tab through the top bar, the navigation and a list screen's filters, table and pager
    (and, for Admins, a form): each element that takes focus draws a focus indicator that
    stands out from what is around it."""
    world = world_for(who)
    page = _signed_in(browser, live_server.url, world)
    screens = [reverse("catalogs:items", args=[world.catalog])]
    if who == Role.ADMIN:
        screens.append(reverse("users_admin:user_create"))
    problems = []
    for url in screens:
        page.goto(f"{live_server.url}{url}")
        seen = 0
        for _ in range(80):
            page.keyboard.press("Tab")
            focused = page.evaluate(FOCUSED)
            if focused["tag"] == "body":
                break
            seen += 1
            if focused["contrast"] < 3:
                problems.append(f"{url}: no focus indicator that stands out 3:1 on {focused}")
        assert seen >= 10, f"{url}: only {seen} stops"
    assert not problems, "\n".join(problems)


def test_progress_is_announced_in_live_regions(
    live_server: Any, browser: Browser, world_for: Callable[[str], crawl.World]
) -> None:
    """A bulk job sending and a catalog sync running: their progress text is inside a live
    region, so a screen reader hears it change as the page polls."""
    from catalog_bulk.models import BulkJob, JobState
    from catalogs.models import Catalog, CatalogSync, SyncState

    world = world_for(Role.EDITOR)
    BulkJob.objects.filter(pk=world.job_id).update(state=JobState.RUNNING)
    CatalogSync.objects.create(
        catalog=Catalog.objects.get(name=world.catalog),
        state=SyncState.RUNNING,
        items_done=50,
        items_expected=200,
    )
    page = _signed_in(browser, live_server.url, world)
    live = "[aria-live=polite], [aria-live=assertive], [role=status], [role=alert], [role=log]"
    checks = {
        reverse("catalog_bulk:job", args=[world.catalog, world.job_id]): "#job-live progress",
        reverse("catalogs:detail", args=[world.catalog]): "#sync progress",
    }
    problems = []
    for url, bar in checks.items():
        page.goto(f"{live_server.url}{url}")
        expect(page.locator(bar)).to_be_visible()
        counts = page.locator(f"{bar} ~ .progress-meta")
        expect(counts).to_contain_text("items")
        if not counts.evaluate(f"el => !!el.closest({live!r})"):
            problems.append(f"{url}: the progress counts are outside any live region")
        problems += axe_violations(page, f"{url} (in progress)")
    assert not problems, "\n".join(problems)
