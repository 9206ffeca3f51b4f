"""A person approves in a real browser: Debian's Chromium, headless, driven by Playwright.

No browser is ever downloaded: the test uses /usr/bin/chromium and is skipped (with the reason) only
when that is missing. Screenshots of the approval page (desktop and phone widths) are kept in
test-artifacts/.
"""
from __future__ import annotations

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
