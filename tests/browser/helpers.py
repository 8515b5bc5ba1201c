"""What many browser tests do the same way."""

from playwright.sync_api import Page, expect

TEST_PASSWORD = "pw-for-tests"


def log_in(page: Page, live_server, username: str) -> None:
    """Log in through the form as a user made by tests.factories (they share one password)."""
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
