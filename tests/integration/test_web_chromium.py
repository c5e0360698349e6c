"""The grid worker's page in a real browser: headless Chromium on a phone-sized screen.

The API runs in uvicorn on a loopback port over an in-memory ledger holding a small
generated county; Debian's ``chromium`` (installed with apt when missing, with the Noto
CJK fonts) is driven over the DevTools protocol: real mouse clicks on the filter chips,
a person's card and the export buttons, downloads saved to a folder and opened again.
Screenshots of the narrow screen are saved under ``var/screenshots/`` and checked
pixel by pixel (a small PNG decoder: zlib + struct) for the page's colours.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import shutil
import socket
import struct
import subprocess
import threading
import time
import zlib
from collections import Counter
from datetime import date
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote
from urllib.request import urlopen

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "var" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
APT_PACKAGES = ("chromium", "fonts-noto-cjk")

YEAR, AS_OF = 2025, "2025-03-31"
TOWNSHIP = "610902100"      # 5 people not covered in the generated county, one of them subsidised
GRID_A = "610902100204"     # 3 of them
GRID_B = "610902101201"
TOKENS = {
    "tok-township": ("township.worker", "grid_worker", [TOWNSHIP]),
    "tok-grid-a": ("grid.a", "grid_worker", [GRID_A]),
}
PHONE = {"width": 390, "height": 844}
BRAND = (0x0B, 0x5C, 0xAD)        # header and selected chip
SUBSIDISED = (0xC2, 0x41, 0x0C)   # the accent of a subsidised person's card


# ------------------------------------------------------------------ the browser on this machine
def _has_cjk_font() -> bool:
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


def _apt_install(packages: list[str]) -> None:
    if shutil.which("apt-get") is None:
        pytest.fail(f"{', '.join(packages)} missing and there is no apt-get: install Debian's chromium and "
                    "fonts-noto-cjk by hand", pytrace=False)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for command in (["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed (exit {done.returncode}); the browser test needs Debian's "
                        f"{', '.join(packages)} (run it as root, or install them by hand):\n{done.stderr[-2000:]}",
                        pytrace=False)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium and a CJK font, installed with apt-get when missing (root is needed then)."""
    missing = [p for p, present in zip(APT_PACKAGES, (CHROMIUM.exists(), _has_cjk_font())) if not present]
    if missing:
        _apt_install(missing)
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} still missing after apt-get install chromium", pytrace=False)
    return CHROMIUM


# ------------------------------------------------------------------ the API over a small county
@pytest.fixture(scope="module")
def site() -> Iterator[dict[str, Any]]:
    """uvicorn on a free loopback port serving the app over a generated county (300 people, seed 3)."""
    import uvicorn

    from entrypoints.wiring import bootstrap
    from infra.settings import Settings
    from entrypoints.http.app import create_app
    from entrypoints.http.auth import TokenStore
    from entrypoints.http.read_model import ViewReads
    from entrypoints.simulation import generate_county
    from tests.unit.http_support import policies

    system = bootstrap(Settings(persistence="memory", id_key=b"web-test"), policies=policies())
    county = generate_county(3, 300)
    county.apply_to(system.ledger)
    reads = ViewReads(system)
    reads.catch_up()
    app = create_app(system, TokenStore.from_tokens(TOKENS), reads=reads)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, log_config=None))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    try:
        yield {"base": base, "gaps": _api(base, f"/grids/{TOWNSHIP}/gaps", "tok-township")["gaps"],
               "system": system, "county": county}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        system.close()


def _api(base: str, path: str, token: str) -> dict[str, Any]:
    from urllib.request import Request

    request = Request(f"{base}{path}?year={YEAR}&as_of={AS_OF}", headers={"Authorization": f"Bearer {token}"})
    with urlopen(request, timeout=20) as response:
        return json.load(response)


# ------------------------------------------------------------------ DevTools protocol
class DevTools:
    """A Chromium started headless with a DevTools port, and one websocket to its browser target."""

    def __init__(self, binary: Path, profile: Path) -> None:
        from websockets.sync.client import connect

        self.process = subprocess.Popen(
            [str(binary), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--no-proxy-server", "--hide-scrollbars",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", f"--user-data-dir={profile}",
             f"--window-size={PHONE['width']},{PHONE['height']}",
             # a Chinese user's browser: the pages follow Accept-Language (headless Chromium says en-US)
             "--lang=zh-CN", "--accept-lang=zh-CN,zh", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                err = self.process.stderr.read().decode(errors="replace") if self.process.poll() is not None else ""
                self.close()
                pytest.fail(f"chromium did not open its DevTools port: {err[-2000:]}", pytrace=False)
            time.sleep(0.05)
        port, path = port_file.read_text().split("\n")[:2]
        self.connection = ExitStack()
        self.ws = self.connection.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", proxy=None, max_size=None, open_timeout=10))
        self.next_id = 0

    def send(self, method: str, session: str | None = None, timeout: float = 15, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            answer = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]

    def new_tab(self) -> Tab:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tab = Tab(self, session)
        tab.send("Page.enable")
        tab.send("Runtime.enable")
        tab.viewport(PHONE["width"], PHONE["height"], mobile=True)
        return tab

    def close(self) -> None:
        if getattr(self, "connection", None) is not None:
            self.connection.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Tab:
    """One page: navigate, evaluate, wait, click like a finger would, take screenshots."""

    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools = devtools
        self.session = session

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.devtools.send(method, self.session, **params)

    def viewport(self, width: int, height: int, *, mobile: bool) -> None:
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def goto(self, url: str) -> None:
        self.js("window.__left = true")  # gone once the new document replaced this one
        self.send("Page.navigate", url=url)
        self.wait_for("!window.__left && document.readyState === 'complete' && document.body "
                      "&& document.body.dataset.state !== 'starting'")

    def wait_for(self, expression: str, timeout: float = 15) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                page = self.js("({state: document.body && document.body.dataset.state, url: location.href, "
                               "message: (document.getElementById('message') || {}).innerText})")
                raise AssertionError(f"timed out waiting for {expression}; page: {page}")
            time.sleep(0.05)

    def tap(self, selector: str) -> None:
        """A real mouse click in the middle of the element (it must be visible and on top there)."""
        box = self.js(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            if (!e) return null;
            e.scrollIntoView({{block: 'center'}});
            const r = e.getBoundingClientRect();
            const x = r.left + r.width / 2, y = r.top + r.height / 2;
            const top = document.elementFromPoint(x, y);
            return {{x, y, onTop: e === top || e.contains(top)}};
        }})()""")
        assert box is not None, f"no element {selector}"
        assert box["onTop"], f"{selector} is covered by another element"
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def screenshot(self, path: Path, *, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.js("({w: document.documentElement.clientWidth, h: document.documentElement.scrollHeight})")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["w"], "height": size["h"],
                                                            "scale": 1})
        png = base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return png

    def close(self) -> None:
        self.devtools.send("Target.closeTarget", targetId=self.send("Target.getTargetInfo")["targetInfo"]["targetId"])


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    devtools = DevTools(chromium, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield devtools
    finally:
        devtools.close()


@pytest.fixture()
def tab(browser: DevTools) -> Iterator[Tab]:
    t = browser.new_tab()  # a tab of its own: sessionStorage (the token) is per tab
    try:
        yield t
    finally:
        t.close()


def page_url(site: dict[str, Any], token: str, **state: str) -> str:
    state = {"year": str(YEAR), "as_of": AS_OF, **state}
    return f"{site['base']}/web/?token={quote(token)}#" + "&".join(f"{k}={quote(v)}" for k, v in state.items())


# ------------------------------------------------------------------ a tiny PNG decoder
def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB or RGBA PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
    assert header is not None
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, f"unsupported PNG {header}"
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        previous = line
        rows.append(bytes(line) if bpp == 3 else bytes(b for j in range(0, stride, 4) for b in line[j:j + 3]))
    return width, height, rows


def pixel(rows: list[bytes], x: int, y: int) -> tuple[int, int, int]:
    return tuple(rows[y][3 * x:3 * x + 3])  # type: ignore[return-value]


def near(colour: tuple[int, int, int], target: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(colour, target))


# ------------------------------------------------------------------ the tests
CARDS = "document.querySelectorAll('#gap-rows tr.gap-card')"


def test_load_shows_the_gap_cards_on_a_phone_subsidised_first_with_masked_ids(site, tab):
    expected = site["gaps"]
    assert len(expected) >= 4 and expected[0]["subsidised"], "the generated county changed: pick another area"
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP))
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert "token" not in tab.js("location.href"), "the token must leave the address bar"
    assert tab.js("sessionStorage.getItem('ledger.web.token')") == "tok-township"
    assert tab.js("document.querySelector('h1').innerText") == "应保尽保 · 网格员工作台"
    assert tab.js("document.querySelector('.section-title').innerText").startswith("未参保人员")
    assert tab.js("document.getElementById('stat-all').innerText").startswith("参保率")
    assert tab.js("document.getElementById('stat-subsidised').innerText").startswith("资助参保对象参保率")
    cards = tab.js(f"[...{CARDS}].map(r => ({{id: r.dataset.personId, text: r.innerText, "
                   f"sub: r.classList.contains('subsidised'), width: r.getBoundingClientRect().width}}))")
    assert [c["id"] for c in cards] == [g["person_id"] for g in expected]
    assert cards[0]["sub"] and "资助参保对象" in cards[0]["text"]
    for card, gap in zip(cards, expected):
        assert gap["id_number"] in card["text"] and "**********" in gap["id_number"]
        assert gap["label"] in card["text"] and gap["name"] in card["text"]
        assert card["width"] <= PHONE["width"]
    # Cards, not a table, on a phone: no header row, nothing wider than the screen.
    assert tab.js("getComputedStyle(document.querySelector('#gaps thead')).display") == "none"
    assert tab.js("document.documentElement.scrollWidth") <= PHONE["width"]
    chips = tab.js("[...document.querySelectorAll('#chips .chip')].map(c => c.innerText.replace(/\\s+/g, ' '))")
    counts = Counter(g["label"] for g in expected)
    assert chips[0] == f"全部 {len(expected)}"
    assert sorted(chips[1:]) == sorted(f"{label} {n}" for label, n in counts.items())
    # Chinese glyphs are drawn, not boxes: "保" differs from an unassigned code point's box.
    assert tab.js("""(() => {
        const draw = (ch) => { const c = document.createElement('canvas'); c.width = c.height = 40;
          const g = c.getContext('2d'); g.font = '32px ' + getComputedStyle(document.body).fontFamily;
          g.fillText(ch, 2, 34); return c.toDataURL(); };
        return draw('保') !== draw('\\u0378') && draw('保') !== draw('侣');
    })()""")

    card = tab.js(f"(() => {{ window.scrollTo(0, 0); const r = {CARDS}[0].getBoundingClientRect(); "
                  "return {x: r.left, y: r.top, h: r.height}; })()")
    png = tab.screenshot(SCREENSHOTS / "web-gaps-390.png")
    width, height, rows = decode_png(png)
    assert (width, height) == (PHONE["width"], PHONE["height"])
    colours = Counter(pixel(rows, x, y) for y in range(0, height, 4) for x in range(0, width, 4))
    assert len(colours) > 20, "the screenshot is (nearly) blank"
    assert colours.most_common(1)[0][1] < 0.8 * sum(colours.values()), "the screenshot is (nearly) one colour"
    assert near(pixel(rows, 4, 4), BRAND) and near(pixel(rows, width - 4, 4), BRAND), "the header band is missing"
    # Subsidised people are the first thing to see: the first card, with its orange mark, on the first screen.
    assert card["y"] + card["h"] / 2 < height, f"the first card starts below the first screen ({card})"
    assert near(pixel(rows, int(card["x"]) + 2, int(card["y"] + card["h"] / 2)), SUBSIDISED, 30), \
        "the subsidised person's card lacks its orange mark"
    tab.screenshot(SCREENSHOTS / "web-gaps-390-full.png", full_page=True)


def test_a_wide_screen_shows_a_table(site, tab):
    tab.viewport(1024, 768, mobile=False)
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP))
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert tab.js("getComputedStyle(document.querySelector('#gaps thead')).display") == "table-header-group"
    assert tab.js("[...document.querySelectorAll('#gaps th')].map(t => t.innerText).slice(0, 4)") == \
        ["姓名", "证件号码", "网格", "未参保原因"]
    tab.screenshot(SCREENSHOTS / "web-gaps-1024.png")


def test_filter_chips_and_the_address_filter_the_list(site, tab):
    expected = site["gaps"]
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP))
    tab.wait_for("document.body.dataset.state === 'ready'")
    reason = next(g["reason"] for g in expected if not g["subsidised"])
    wanted = [g["person_id"] for g in expected if g["reason"] == reason]
    tab.tap(f"#chips .chip[data-reason='{reason}']")
    tab.wait_for(f"{CARDS}.length === {len(wanted)}")
    assert tab.js(f"[...{CARDS}].map(r => r.dataset.personId)") == wanted
    assert tab.js(f"document.querySelector(\"#chips .chip[data-reason='{reason}']\").getAttribute('aria-pressed')") \
        == "true"
    assert f"reason={reason}" in tab.js("location.hash")
    assert tab.js("document.getElementById('gap-count').innerText") == f"筛选后 {len(wanted)} 人（共 {len(expected)} 人）"
    tab.screenshot(SCREENSHOTS / "web-filtered-390.png")
    tab.tap("#chips .chip[data-reason='']")
    tab.wait_for(f"{CARDS}.length === {len(expected)}")
    # The state is in the address: a link with #reason= opens the filtered list.
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP, reason="SUBSIDISED_NOT_COVERED"))
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert tab.js(f"[...{CARDS}].map(r => r.dataset.personId)") == [g["person_id"] for g in expected if g["subsidised"]]


def test_a_person_opens_with_the_entitlement_explained(site, tab):
    first = site["gaps"][0]
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP))
    tab.wait_for("document.body.dataset.state === 'ready'")
    tab.tap(f"#gap-rows tr.gap-card[data-person-id='{first['person_id']}'] td.open button")
    tab.wait_for("document.getElementById('person').dataset.state === 'ready'")
    panel = tab.js("document.getElementById('person').innerText")
    assert first["name"] in panel and first["id_number"] in panel
    assert "不能享受医保待遇" in tab.js("document.getElementById('person-headline').innerText")
    topics = tab.js("[...document.querySelectorAll('#person-lines dt')].map(d => d.innerText)")
    assert topics[:3] == ["参保登记", "缴费", "资助参保"]
    assert tab.js("document.getElementById('person-advice').innerText").startswith("建议：资助参保对象")
    assert f"person={first['person_id']}" in tab.js("location.hash")
    tab.screenshot(SCREENSHOTS / "web-person-390.png")
    tab.tap("#person-close")
    tab.wait_for("document.getElementById('person').hidden && !location.hash.includes('person=')")


def _downloaded(folder: Path, suffix: str, timeout: float = 15) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.05)
    raise AssertionError(f"no {suffix} download in {folder}: {[p.name for p in folder.iterdir()]}")


def test_export_buttons_download_csv_and_xlsx(site, tab, browser, tmp_path):
    from openpyxl import load_workbook

    expected = site["gaps"]
    browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(tmp_path))
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP))
    tab.wait_for("document.body.dataset.state === 'ready'")
    tab.tap("#export-csv")
    csv_file = _downloaded(tmp_path, ".csv")
    assert csv_file.name == f"应保尽保名单_{TOWNSHIP}_{YEAR}.csv"
    data = csv_file.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert table[0][:4] == ["序号", "姓名", "证件类型", "证件号码（已脱敏）"]
    assert [r[3] for r in table[1:]] == [g["id_number"] for g in expected]
    tab.wait_for("document.getElementById('export-status').innerText.startsWith('已导出')")

    reason = expected[0]["reason"]
    tab.tap(f"#chips .chip[data-reason='{reason}']")
    # Tap the export button once the filtered list is on screen, as a person would: while the
    # list re-renders the button moves, and a tap aimed at its old place lands elsewhere.
    filtered = len([g for g in expected if g["reason"] == reason])
    tab.wait_for(f"{CARDS}.length === {filtered} && !document.getElementById('result').hasAttribute('aria-busy')")
    tab.tap("#export-xlsx")
    xlsx_file = _downloaded(tmp_path, ".xlsx")
    assert xlsx_file.name == f"应保尽保名单_{TOWNSHIP}_{YEAR}_{expected[0]['reason']}.xlsx"
    sheet = load_workbook(xlsx_file).active
    rows = list(sheet.iter_rows(values_only=True))
    assert [r[3] for r in rows[1:]] == [g["id_number"] for g in expected if g["reason"] == expected[0]["reason"]]
    assert sheet["A1"].font.b


def test_a_grid_worker_of_grid_a_sees_a_clear_refusal_for_grid_b(site, tab):
    tab.goto(page_url(site, "tok-grid-a", grid=GRID_B))
    tab.wait_for("document.body.dataset.state === 'error'")
    assert tab.js("document.getElementById('message-title').innerText") == f"你没有网格 {GRID_B} 的权限"
    assert GRID_A in tab.js("document.getElementById('message-text').innerText")
    assert tab.js("document.getElementById('result').hidden")
    tab.screenshot(SCREENSHOTS / "web-forbidden-390.png")
    # Their own grid still works from the picker.
    tab.js(f"(() => {{ const s = document.getElementById('grid-select'); s.value = '{GRID_A}'; "
           "s.dispatchEvent(new Event('change')); })()")
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert tab.js(f"{CARDS}.length") == len([g for g in site["gaps"] if g["grid_code"] == GRID_A])


def test_without_a_token_the_page_asks_for_one(site, tab):
    tab.goto(f"{site['base']}/web/")
    tab.wait_for("document.body.dataset.state === 'login'")
    assert "输入访问令牌" in tab.js("document.getElementById('login').innerText")
    tab.js("document.getElementById('token-input').value = 'tok-grid-a'")
    tab.tap("#login-form button")
    tab.wait_for("document.body.dataset.state === 'ready'")
    assert tab.js("document.getElementById('who').innerText").startswith("网格员 grid.a")


# ------------------------------------------------------------------ last: it adds a transfer to the ledger
def test_an_overdue_transfer_shows_its_state_on_the_card_and_in_the_panel(site, tab):
    """A covered person of the township transferred out on Monday 10 March 2025 with no transfer-in:
    the receiving half was due in 5 working days (17 March); on the page's day, 31 March, the card
    and the person's panel say 待转入，已逾期 10 个工作日 (18-21, 24-28, 31 March), computed when read."""
    from ledger.domain.errors import DomainError
    from ledger.inbound_records import Provenance

    ledger, shown = site["system"].ledger, {g["person_id"] for g in site["gaps"]}
    moved = None
    for p in site["county"].persons:
        if not (p.grid_code or "").startswith(TOWNSHIP) or p.stop is not None:
            continue
        try:
            person = ledger.find_person("RESIDENT_ID", p.id_number)
            if str(person.id) in shown:
                continue
            ledger.transfer_out(person.id, transfer_id="ZY-WEB-OVERDUE", counterpart_region="610921",
                                effective_date=date(2025, 3, 10),
                                provenance=Provenance(source="api", user="clerk", request_id="web-test-transfer"))
        except DomainError:
            continue
        moved = str(person.id)
        break
    assert moved, "the generated county changed: no covered person of the township to transfer"
    gaps = _api(site["base"], f"/grids/{TOWNSHIP}/gaps", "tok-township")["gaps"]
    line = next(g for g in gaps if g["person_id"] == moved)
    assert line["reason"] == "TRANSFER_INCOMPLETE"
    assert [t["label"] for t in line["transfers"]] == ["待转入，已逾期 10 个工作日"]
    tab.goto(page_url(site, "tok-township", grid=TOWNSHIP))
    tab.wait_for("document.body.dataset.state === 'ready'")
    card = f"#gap-rows tr.gap-card[data-person-id='{moved}']"
    assert tab.js(f"document.querySelector(\"{card} .transfer.overdue\").innerText") == \
        "转移单 ZY-WEB-OVERDUE：待转入，已逾期 10 个工作日"
    assert tab.js("document.querySelectorAll('#gap-rows .transfer').length") == \
        sum(len(g["transfers"]) for g in gaps)
    tab.tap(f"{card} td.open button")
    tab.wait_for("document.getElementById('person').dataset.state === 'ready'")
    texts = tab.js("Object.fromEntries([...document.querySelectorAll('#person-lines dt')]"
                   ".map(d => [d.innerText, d.nextElementSibling.innerText]))")
    assert texts["转移接续"] == "转移单 ZY-WEB-OVERDUE 待转入，已逾期 10 个工作日"
    assert "转移接续已超过办理时限" in tab.js("document.getElementById('person-advice').innerText")
    tab.screenshot(SCREENSHOTS / "web-transfer-overdue-390.png")
