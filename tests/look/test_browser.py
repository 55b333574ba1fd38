"""The pages in a real browser: Debian's Chromium, headless, driven by Selenium through Debian's chromedriver
(never Selenium Manager: nothing is downloaded). ``ledrec look`` runs as a user starts it (port 0, its ready
line); the test types a history by title, sees LED's titles come back, opens an item's neighbours, the map and
the daily job's page, and keeps a screenshot of each under $LEDREC_TEST_ARTIFACTS (default: pytest's tmp_path).
Skipped with the reason where Chromium or its driver is not installed (scripts/test.sh installs them as root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="ledrec look needs the look extra: pip install -e '.[look]'")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from ledrec.look.process import start_look, stop_server  # noqa: E402

DRIVER, BROWSER = Path("/usr/bin/chromedriver"), Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (DRIVER.exists() and BROWSER.exists()),
        reason=f"no {DRIVER} or {BROWSER}: apt-get install chromium chromium-driver (scripts/test.sh does, as root)",
    ),
]


def chromium(width: int = 1280, height: int = 1000) -> webdriver.Chrome:
    """Headless Chromium through the system's driver; the paths given and SE_OFFLINE set, so Selenium Manager
    never looks for (or downloads) a browser or a driver."""
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(BROWSER)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LEDREC_TEST_ARTIFACTS") or tmp_path) / "look-browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def site(world):
    proc, ready = start_look(world["root"], "--items", str(world["items"]), "--events", str(world["events"]))
    yield ready["url"]
    stop_server(proc)


def test_a_history_typed_by_title_its_neighbours_the_map_and_the_daily_job(site, artifacts):
    browser = chromium()
    # (a page replaced between finding an element and reading it: look again, as a person's eyes would)
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    try:
        browser.get(site + "?catalogue=fr")
        for words, item in (("toy story", "m21"), ("aladdin", "m25")):
            box = browser.find_element(By.ID, "q")
            box.clear()
            box.send_keys(words)
            browser.find_element(By.ID, "search").click()
            wait.until(lambda b, item=item: b.find_elements(By.CSS_SELECTOR, f'button.add[data-id="{item}"]'))
            browser.find_element(By.CSS_SELECTOR, f'button.add[data-id="{item}"]').click()
            wait.until(lambda b, words=words: words.split()[0] in b.find_element(By.ID, "history").text.lower())
        history = browser.find_element(By.ID, "history").text
        assert "Toy Story (1995)" in history and "Aladdin (1992)" in history
        led = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#led-table td.title a")]
        gbo = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#gbo-table td.title a")]
        assert len(led) == 10 and len(gbo) == 10 and all(led) and "Toy Story (1995)" not in led
        assert led[0].startswith("Animation")  # the genre of the history, which the model's vectors are
        browser.save_screenshot(str(artifacts / "figure8.png"))

        map_link = browser.find_element(By.ID, "on-the-map").get_attribute("href")
        browser.find_element(By.CSS_SELECTOR, "#led-table td.title a").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#similar-table td.title a"))
        neighbours = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#similar-table td.title a")]
        assert len(neighbours) == 20 and all(neighbours)
        assert browser.find_elements(By.CSS_SELECTOR, "#holders li")
        browser.save_screenshot(str(artifacts / "item.png"))

        browser.get(map_link)
        wait.until(lambda b: "t-SNE" in b.find_element(By.ID, "map-method").text and "PCA" not in b.title)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#map circle")) == 40
        assert len(browser.find_elements(By.CSS_SELECTOR, "#map circle.history")) == 2
        browser.save_screenshot(str(artifacts / "map.png"))

        browser.find_element(By.ID, "nav-pipeline").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "img.plot"))
        drawn = browser.execute_script(
            "return Array.from(document.querySelectorAll('img.plot')).map(i => i.complete && i.naturalWidth)"
        )
        assert len(drawn) == 2 and all(drawn), drawn  # both catalogues' plots loaded and decoded
        text = browser.find_element(By.TAG_NAME, "main").text
        assert "refused" in text and "rollback" in text
        browser.save_screenshot(str(artifacts / "pipeline.png"))
    finally:
        browser.quit()
    assert all((artifacts / f"{name}.png").stat().st_size > 1000 for name in ("figure8", "item", "map", "pipeline"))
