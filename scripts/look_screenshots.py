"""The screenshots of docs/look.md: ``ledrec look`` on a run of MovieLens (titles and genres from movies.csv)
and on a published root, driven in headless Chromium by Selenium (Debian's chromium + chromium-driver; nothing
downloaded), saved as PNGs 1200 px wide, palette-quantised to keep them small.

    python scripts/look_screenshots.py --run runs/look/mls-led --data ../shared/data/ml-latest-small \
        --root runs/look/published --out docs/look
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from ledrec.look.process import start_look, stop_server

WIDTH = 1200
HISTORY = ("star wars episode iv", "raiders of the lost ark", "terminator 2")  # typed as a user would
ANIMATED = "toy story"


def chromium() -> webdriver.Chrome:
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a browser or a driver
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WIDTH},1000")
    return webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))


def shoot(browser: webdriver.Chrome, path: Path, max_height: int = 2400) -> None:
    """The whole page (up to ``max_height``), quantised to 256 colours."""
    height = min(int(browser.execute_script("return document.documentElement.scrollHeight")), max_height)
    # the viewport itself made as tall as the page (a headless window is capped by its screen)
    metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    time.sleep(0.3)
    browser.save_screenshot(str(path))
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    image = Image.open(path).convert("RGB")
    if image.width != WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)))
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def type_history(browser: webdriver.Chrome, wait: WebDriverWait, words: str) -> str:
    """Search ``words`` and add the first (most popular) match; returns its title."""
    box = browser.find_element(By.ID, "q")
    box.clear()
    box.send_keys(words)
    browser.find_element(By.ID, "search").click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "button.add"))
    first = browser.find_element(By.CSS_SELECTOR, "button.add")
    title = first.find_element(By.XPATH, "..").text.removeprefix("add").strip()
    item = first.get_attribute("data-id")
    first.click()
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'#history a[href$="id={item}"]'))
    assert not browser.find_elements(By.ID, "found")  # (an added item ends its search)
    return title


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.add_argument("--data", required=True, help="MovieLens folder with movies.csv and ratings.csv")
    parser.add_argument("--root", default=None, help="a published root for the daily job's page")
    parser.add_argument("--out", default="docs/look")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    flags = ("--items", str(data / "movies.csv"), "--events", str(data / "ratings.csv"))
    proc, ready = start_look(args.run, *flags, stderr=None)
    browser = chromium()
    wait = WebDriverWait(browser, 60)
    said: dict[str, object] = {"ready": ready}
    try:
        base = ready["url"]
        while "t-SNE of" not in urllib.request.urlopen(base + "map", timeout=60).read().decode():
            time.sleep(1)  # the map's t-SNE runs from the ready line on
        browser.get(base)
        said["history"] = [type_history(browser, wait, words) for words in HISTORY]
        said["led"] = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#led-table td.title a")]
        said["gbo"] = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#gbo-table td.title a")]
        shoot(browser, out / "figure8.png")
        map_url = browser.find_element(By.ID, "on-the-map").get_attribute("href")
        browser.get(base + "?q=" + ANIMATED.replace(" ", "+"))
        browser.find_element(By.CSS_SELECTOR, "button.add").click()
        browser.find_element(By.CSS_SELECTOR, "#history li a").click()
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#similar-table td.title a"))
        said["item"] = browser.find_element(By.ID, "item-title").text
        said["similar"] = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#similar-table td.title a")]
        shoot(browser, out / "item.png")
        browser.get(map_url)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#map circle"))
        shoot(browser, out / "map.png")
    finally:
        browser.quit()
        stop_server(proc)
    if args.root:
        proc, ready = start_look(args.root, "--map", "pca", stderr=None)
        browser = chromium()
        try:
            browser.get(ready["url"] + "pipeline")
            WebDriverWait(browser, 60).until(
                lambda b: all(b.execute_script("return Array.from(document.images).map(i => i.complete)"))
            )
            shoot(browser, out / "pipeline.png", max_height=3000)
        finally:
            browser.quit()
            stop_server(proc)
    print(json.dumps(said, indent=1))


if __name__ == "__main__":
    main()
