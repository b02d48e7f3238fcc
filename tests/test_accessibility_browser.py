"""Usable by everyone: no sideways scrolling on a phone, a skip link first, and colours that read (WCAG AA)."""

from __future__ import annotations

import pytest

from tests.conftest import ARTIFACTS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}

# Every coloured text the back-office shows, in the boxes it is shown in: the page, a card, a table row.
COLOURED = [
    *(f"band band-{band}" for band in "ABCDE"),
    *(f"band-text-{band}" for band in "ABCDE"),
    *(f"decision decision-{decision}" for decision in ("accept", "guarantee", "refuse", "refer")),
    *(f"status status-{status}" for status in ("pending", "failed", "scored", "queued", "running", "done")),
    "override-pending",
    "tag",
    "muted",
    "meta",
    "flash",
    "flash flash-error",
]

# WCAG 2.x relative luminance and contrast ratio, measured on the colours the browser computed.
CONTRAST_JS = """
(classes) => {
  const rgba = (text) => text.match(/[\\d.]+/g).map(Number);
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const luminance = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const colour = rgba(getComputedStyle(node).backgroundColor);
      if (colour.length < 4 || colour[3] > 0) return colour;
    }
    return [255, 255, 255];
  };
  const ratio = (a, b) => {
    const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (light + 0.05) / (dark + 0.05);
  };
  const hosts = {
    page: document.querySelector("main"),
    card: Object.assign(document.createElement("section"), { className: "card" }),
    row: document.createElement("tbody"),
  };
  document.querySelector("main").append(hosts.card);
  const table = Object.assign(document.createElement("table"), { className: "grid" });
  table.append(hosts.row);
  hosts.card.append(table);
  const results = [];
  for (const [where, host] of Object.entries(hosts)) {
    for (const cls of classes) {
      let el = Object.assign(document.createElement(cls.startsWith("flash") ? "p" : "span"), { className: cls });
      el.textContent = "Texte";
      if (where === "row") {
        const tr = Object.assign(document.createElement("tr"), { className: "current" });
        const td = document.createElement("td");
        td.append(el); tr.append(td); host.append(tr);
      } else {
        host.append(el);
      }
      results.push([where, cls, ratio(rgba(getComputedStyle(el).color), background(el))]);
    }
  }
  for (const el of document.querySelectorAll(".band, .decision, .status, .tag, .flash")) {
    results.push(["shown", el.className, ratio(rgba(getComputedStyle(el).color), background(el))]);
  }
  return results;
}
"""


def log_in(page, url: str, user) -> None:
    page.goto(url)
    page.locator("#id_username").fill(user.username)  # the labels are French or English
    page.locator("#id_password").fill(PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(url)


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("language", ["en", "fr"])
def test_at_390_px_neither_the_queue_nor_the_dossier_scrolls_sideways(
    live_server, browser_page, analyst, committed_dossier, language
):
    """French labels run longer: both languages fit a 390 px phone."""
    from playwright.sync_api import expect

    page = browser_page
    page.set_viewport_size(PHONE)
    page.context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    log_in(page, f"{live_server.url}/dossiers/", analyst)
    expect(page.locator("table.grid tbody tr", has_text=committed_dossier.applicant_name)).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"queue-390-{language}.png"), full_page=True)
    assert page_width(page) <= PHONE["width"], "the queue scrolls sideways"

    page.goto(f"{live_server.url}/dossiers/{committed_dossier.pk}/")
    expect(page.get_by_test_id("factors")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"dossier-390-{language}.png"), full_page=True)
    assert page_width(page) <= PHONE["width"], "the dossier scrolls sideways"
    # Every reason of the "Why" card is inside the screen, none cut off.
    reasons = page.get_by_test_id("factors").locator("li")
    edges = reasons.evaluate_all("items => items.map(li => li.getBoundingClientRect()).map(r => [r.left, r.right])")
    assert edges and all(left >= 0 and right <= PHONE["width"] for left, right in edges), edges
    assert page.broken_resources == []


def test_the_skip_link_is_the_first_stop_and_leads_to_the_content(live_server, browser_page, analyst):
    page = browser_page
    log_in(page, f"{live_server.url}/dossiers/", analyst)
    page.goto(f"{live_server.url}/dossiers/")  # a fresh page: focus starts at the top

    page.keyboard.press("Tab")

    focused = page.evaluate("[document.activeElement.className, document.activeElement.textContent]")
    assert focused == ["skip-link", "Skip to content"]
    assert page.locator(".skip-link").bounding_box()["y"] >= 0  # shown when focused
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"


def test_coloured_text_reaches_wcag_aa_contrast(live_server, browser_page, analyst, committed_dossier):
    """Bands, decisions, statuses, tags, muted text and flashes: 4.5:1 or more against what is behind them."""
    page = browser_page
    log_in(page, f"{live_server.url}/dossiers/{committed_dossier.pk}/", analyst)

    measured = page.evaluate(CONTRAST_JS, COLOURED)

    assert len(measured) >= 3 * len(COLOURED)
    failing = [(where, cls, round(ratio, 2)) for where, cls, ratio in measured if ratio < 4.5]
    assert failing == []
