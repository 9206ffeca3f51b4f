"""A person approves in a real browser: Debian's Chromium, headless, driven by Playwright.

No browser is ever downloaded: the test uses /usr/bin/chromium and is skipped (with the reason) only
when that is missing. Screenshots of the approval page (desktop and phone widths) are kept in
test-artifacts/.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.helpers import release

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "approval-page.png"
PHONE_SCREENSHOT = SCREENSHOT.with_name("approval-page-phone.png")
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed "
                       "(apt-get install chromium); the browser test never downloads one"),
]


def test_approve_in_a_browser(devstack):
    """The link from Slack opens a page with the version and the diff, readable at desktop and
    phone widths; Approve deploys it, and the page then links the deployment's own page."""
    from playwright.sync_api import expect, sync_playwright

    sha, version = release()
    dep = devstack.deployment_of("better-chatbot", devstack.push("better-chatbot", sha, version))
    link = devstack.approval_link(dep["id"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(link)
            assert page.evaluate(OVERFLOW) <= 0, "the page scrolls sideways on a phone"
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(PHONE_SCREENSHOT), full_page=True)
            page.set_viewport_size({"width": 1200, "height": 900})
            expect(page.get_by_role("heading", level=1)).to_contain_text(version)
            diff = page.get_by_label("task definition diff")
            expect(diff).to_contain_text("image")
            expect(diff).to_contain_text(dep["image_digest"])
            expect(diff).not_to_contain_text("mountPoints")  # AWS's defaults are not changes
            new_image = diff.locator("ins").first
            expect(new_image).to_contain_text(dep["image_digest"])
            box = new_image.bounding_box()
            assert box and box["x"] + box["width"] <= 1200, "the new image is cut off"
            assert page.evaluate(OVERFLOW) <= 0, "the page scrolls sideways"
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_role("status")).to_contain_text("Approved")
            page.get_by_role("link", name=f"deployment {dep['id']}").click()
            expect(page.get_by_role("heading", level=1)).to_contain_text(version)
            expect(page.get_by_label("timeline")).to_contain_text("APPROVED")
        finally:
            browser.close()
    done = devstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    assert done["approvals"][0]["by"].startswith("slack:")
    assert SCREENSHOT.stat().st_size > 0 and PHONE_SCREENSHOT.stat().st_size > 0


ARTIFACTS = SCREENSHOT.parent


def _shoot(page, name: str) -> None:
    """At 1200 and 390 px: nothing scrolls sideways; both screenshots kept in test-artifacts/."""
    for width, suffix in ((1200, ""), (390, "-phone")):
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(OVERFLOW) <= 0, f"{name} scrolls sideways at {width} px"
        page.screenshot(path=str(ARTIFACTS / f"{name}{suffix}.png"), full_page=True)


def _signing(page, devstack) -> None:
    """Sign every request of ``page`` with SigV4, as an operator's signing proxy would: the
    deployment and service pages are IAM reads (the same auth as the API)."""
    from devstack import sigv4

    keys = devstack._http.keys()

    def sign(route, request):
        wanted = {"Accept": request.headers.get("accept", "text/html")}
        route.continue_(headers={**request.headers,
                                 **sigv4.sign(keys, request.method, request.url, wanted, None)})

    page.route(f"{devstack.url}/**", sign)


def test_phase_bars_and_the_service_page_in_a_browser(devstack):
    """A deployment page shows its phases to scale (approval wait, migration, rollout, and a bake
    whose alarm failed it, marked); the service page shows the last deployments and the DORA
    figures as small charts. Checked at 1200 and 390 px, screenshots kept."""
    from playwright.sync_api import expect, sync_playwright

    good = devstack.deploy()
    devstack.set_ecs(migration_exit_code=1)
    try:
        failed = devstack.deploy()
    finally:
        devstack.set_ecs(migration_exit_code=0)
    sha, version = release()
    baked = devstack.deployment_of("better-chatbot-api",
                                   devstack.push("better-chatbot-api", sha, version))
    for _ in range(100):
        if devstack.get_json(f"/deployments/{baked['id']}")["state"] == "VERIFYING":
            break
        time.sleep(0.2)
    devstack.post_json("/_devstack/alarms", {"name": "better-chatbot-api-5xx", "state": "ALARM",
                                             "reason": "browser test"})
    baked = devstack.wait_finished(baked["id"])
    devstack.post_json("/_devstack/alarms", {"name": "better-chatbot-api-5xx", "state": "OK"})
    assert (good["state"], failed["state"], baked["state"]) == ("SUCCEEDED", "FAILED",
                                                                "ROLLED_BACK")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            _signing(page, devstack)
            page.goto(f"{devstack.url}/deployments/{good['id']}")
            phases = page.get_by_label("phase durations")
            for name in ("waiting for approval", "migration", "rollout"):
                expect(phases).to_contain_text(name)
            expect(phases).not_to_contain_text("failed here")
            _shoot(page, "deployment-phases")
            page.goto(f"{devstack.url}/deployments/{failed['id']}")
            expect(page.get_by_label("phase durations").locator("li").last).to_contain_text(
                "migration")
            expect(page.get_by_label("phase durations")).to_contain_text("failed here")
            expect(page.get_by_label("migration output")).to_be_hidden()  # no lines configured
            page.goto(f"{devstack.url}/deployments/{baked['id']}")
            last = page.get_by_label("phase durations").locator("li").last
            expect(last).to_contain_text("bake")
            expect(last).to_contain_text("failed here")
            _shoot(page, "deployment-bake-failed")
            page.goto(f"{devstack.url}/services/better-chatbot")
            expect(page.get_by_role("heading", level=1)).to_contain_text("better-chatbot")
            expect(page.get_by_role("img", name="last")).to_be_visible()
            expect(page.get_by_label("last deployments")).to_contain_text(good["version"])
            expect(page.get_by_role("table").last).to_contain_text("Change failure rate")
            assert page.locator("svg.spark").count() == 5
            _shoot(page, "service-page")
        finally:
            browser.close()
