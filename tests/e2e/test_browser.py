"""A person approves in a real browser: Debian's Chromium, headless, driven by Playwright.

No browser is ever downloaded: the test uses /usr/bin/chromium and is skipped (with the reason) only
when that is missing. The screenshot of the approval page is kept in test-artifacts/.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import release

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "approval-page.png"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed "
                       "(apt-get install chromium); the browser test never downloads one"),
]


def test_approve_in_a_browser(devstack):
    """The link from Slack opens a page with the version and the diff; Approve deploys it."""
    from playwright.sync_api import expect, sync_playwright

    sha, version = release()
    dep = devstack.deployment_of("better-chatbot", devstack.push("better-chatbot", sha, version))
    link = devstack.approval_link(dep["id"])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            page = browser.new_page()
            page.goto(link)
            expect(page.get_by_role("heading", level=1)).to_contain_text(version)
            diff = page.get_by_label("task definition diff")
            expect(diff).to_contain_text("image")
            expect(diff).to_contain_text(dep["image_digest"])
            expect(diff).not_to_contain_text("mountPoints")  # AWS's defaults are not changes
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_role("status")).to_contain_text("Approved")
        finally:
            browser.close()
    done = devstack.wait_finished(dep["id"])
    assert done["state"] == "SUCCEEDED", done["timeline"]
    assert done["approvals"][0]["by"].startswith("slack:")
    assert SCREENSHOT.stat().st_size > 0
