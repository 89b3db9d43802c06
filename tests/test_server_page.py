"""The web page of `voxflow serve` in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium): files uploaded, their transcripts appearing, the
downloads, the failures; against the real server and engine on real recordings."""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from serving import BackgroundServer
from voxflow.engines import create_engine
from voxflow.formats import render
from voxflow.pipeline import transcribe
from voxflow.server.config import ServerConfig
from voxflow.server.page import WEB

ROOT = Path(__file__).resolve().parent.parent
AUSTEN = ROOT / "samples" / "austen-0870.wav"
SPANISH = ROOT / "samples" / "es-mx.wav"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server() -> BackgroundServer:
    with BackgroundServer(ServerConfig(port=0), engine=create_engine()) as running:
        yield running


def chromium(*extra: str) -> webdriver.Chrome:
    """Headless Chromium on a phone-sized window, with ``extra`` command-line flags."""
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("Debian's chromium and chromium-driver are missing (.ci/run installs them)")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=390,844", *extra):  # fmt: skip
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


def jobs_done(driver: webdriver.Chrome, count: int, timeout: float = 240) -> list:
    """The page's job cards once ``count`` of them have finished (done or failed)."""

    def finished(d: webdriver.Chrome) -> list | bool:
        cards = d.find_elements(By.CSS_SELECTOR, "#jobs .job")
        ended = [
            c for c in cards
            if "failed" in c.get_attribute("class")
            or c.find_element(By.CLASS_NAME, "status").text == "done"
        ]  # fmt: skip
        return cards if len(cards) == len(ended) == count else False

    return WebDriverWait(driver, timeout).until(finished)


def download(driver: webdriver.Chrome, card, fmt: str) -> tuple[str, str]:
    """A download link's file name and content (read from its blob URL in the page)."""
    link = card.find_element(By.CSS_SELECTOR, f'.downloads a[data-format="{fmt}"]')
    text = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text()).then(done, e => done(`failed: ${e}`));",
        link.get_attribute("href"),
    )
    return link.get_attribute("download"), text


def test_the_page_ships_everything_it_needs() -> None:
    for name in ("index.html", "app.js", "style.css"):
        text = (WEB / name).read_text()
        assert not re.search(r"(src|href)=[\"']?(https?:)?//", text), name  # no CDN
        assert "http://" not in text and "https://" not in text, name


def test_uploaded_files_show_their_segments_and_offer_every_download(
    server: BackgroundServer, browser: webdriver.Chrome
) -> None:
    browser.get(server.http_url + "/")
    assert browser.title == "voxflow"
    browser.find_element(By.ID, "files").send_keys(f"{AUSTEN}\n{SPANISH}")  # two at once
    cards = jobs_done(browser, 2)
    for card, path in zip(cards, (AUSTEN, SPANISH), strict=True):
        expected = transcribe(str(path))
        assert card.find_element(By.CLASS_NAME, "name").text == path.name
        assert card.find_element(By.CLASS_NAME, "status").text == "done"
        rows = card.find_elements(By.CSS_SELECTOR, ".segments li")
        assert [r.find_element(By.CLASS_NAME, "text").text for r in rows] == [
            s.text for s in expected.segments
        ]
        assert {r.find_element(By.CLASS_NAME, "lang").text for r in rows} == {expected.language}
        first = rows[0].find_element(By.TAG_NAME, "time").text
        assert first.startswith(f"0:{expected.segments[0].start:04.1f}")
        assert float(card.find_element(By.TAG_NAME, "progress").get_attribute("value")) == 1
        name, srt = download(browser, card, "srt")
        assert name == path.stem + ".srt" and srt == render(expected, "srt")
        name, data = download(browser, card, "json")
        assert name == path.stem + ".json"
        assert json.loads(data)["segments"] == json.loads(render(expected, "json"))["segments"]
        assert {download(browser, card, f)[1] for f in ("txt", "vtt")} == {
            render(expected, "txt"), render(expected, "vtt")
        }
    # Usable on a phone's screen: nothing wider than it.
    assert browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )


def test_a_file_that_is_not_audio_fails_on_the_page_naming_it(
    server: BackgroundServer, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("meeting notes, not audio\n" * 10)
    browser.get(server.http_url + "/")
    browser.find_element(By.ID, "files").send_keys(str(notes))
    (card,) = jobs_done(browser, 1)
    assert "failed" in card.get_attribute("class")
    assert card.find_element(By.CLASS_NAME, "status").text.startswith("notes.wav: ")
    assert card.find_element(By.CLASS_NAME, "downloads").get_attribute("hidden")


def test_the_microphone_shows_interim_then_final_text(server: BackgroundServer) -> None:
    """Chromium's fake capture device plays a real recording (looping) into the page's
    microphone: interim text appears while it speaks, then final phrases once stopped."""
    driver = chromium("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={AUSTEN}")  # fmt: skip
    try:
        driver.get(server.http_url + "/")
        driver.find_element(By.ID, "mic").click()
        wait = WebDriverWait(driver, 120)
        heard = wait.until(lambda d: d.find_element(By.ID, "interim").text.strip())
        assert not driver.find_elements(By.CSS_SELECTOR, "#finals li")  # interim came first
        time.sleep(4)  # a little more speech, then stop: the turn's last phrase comes
        driver.find_element(By.ID, "mic").click()
        wait.until(lambda d: d.find_element(By.ID, "mic").text == "Start live transcription")
        finals = [li.find_element(By.CLASS_NAME, "text").text
                  for li in driver.find_elements(By.CSS_SELECTOR, "#finals li")]  # fmt: skip
        assert finals, driver.find_element(By.ID, "live-status").text
        said = set(words(" ".join(finals)))
        expected = set(words(transcribe(str(AUSTEN)).text))
        assert len(said & expected) >= 0.6 * len(said) and {"dashwood"} & said
        assert set(words(heard)) & expected
        assert driver.find_element(By.ID, "interim").text == ""
    finally:
        driver.quit()


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())
