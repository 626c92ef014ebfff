#!/usr/bin/env python3
"""tests/report/check-html.py - render an HTML report in headless Chromium and fail on any
console error, failed load or external request; keep screenshots.

    tests/report/check-html.py REPORT.html --shot FULL.png [--top TOP.png] [--min-plots N]

Drives Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe: fd 3 in,
fd 4 out, NUL-separated JSON), so nothing listens on a port. A page fails when:
  - a script throws (Runtime.exceptionThrown) or calls console.error / console.assert;
  - the browser logs an error (Log.entryAdded level "error": failed loads, blocked content);
  - it requests anything but itself (Network.requestWillBeSent): a report must be
    self-contained, so data: URLs are the only other thing allowed;
  - an inline plot (svg.plot) has no size, or there are fewer than --min-plots of them.
Exit 0 pass, 1 fail (each problem on its own line), 77 skip (no chromium; the reason is
printed), 2 bad usage. The program is $CHROMIUM, else chromium or chromium-browser on PATH.
"""
import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 90


class Browser:
    def __init__(self, exe, profile_dir):
        cmd_r, self.cmd_w = os.pipe()  # we write commands; chromium reads fd 3
        self.resp_r, resp_w = os.pipe()  # chromium writes fd 4; we read

        def child():
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        args = [exe, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                "--mute-audio", "--remote-debugging-pipe", "--user-data-dir=" + profile_dir,
                "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=child, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(resp_w)
        self.buf = b""
        self.next_id = 0
        self.events = []

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            r, _, _ = select.select([self.resp_r], [], [], left)
            if not r:
                continue
            chunk = os.read(self.resp_r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe (exit %s)" % self.proc.poll())
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None, timeout=TIMEOUT_S):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"].get("message")))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout):
        deadline = time.monotonic() + timeout
        for m in self.events:
            if m.get("method") == method:
                return m
        while True:
            m = self._read_message(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def drain(self, seconds):
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read_message(deadline))
        except TimeoutError:
            pass

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.cmd_w)
        os.close(self.resp_r)


def problems_in(events, page_url):
    out = []
    for m in events:
        meth, p = m.get("method"), m.get("params", {})
        if meth == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text")
            out.append("uncaught exception: %s (line %s)" % (text, d.get("lineNumber")))
        elif meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.append("console.%s: %s" % (p.get("type"), args))
        elif meth == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            out.append("browser error (%s): %s %s" % (e.get("source"), e.get("text"), e.get("url", "")))
        elif meth == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if url != page_url and not url.startswith("data:") and url != "about:blank":
                out.append("external request: %s (a report must be self-contained)" % url)
        elif meth == "Network.loadingFailed" and not p.get("canceled"):
            out.append("load failed: %s" % p.get("errorText"))
    return out


def main():
    ap = argparse.ArgumentParser(description="render a report in headless Chromium; fail on console errors")
    ap.add_argument("html")
    ap.add_argument("--shot", required=True, help="full-page screenshot (PNG)")
    ap.add_argument("--top", help="screenshot of the first screen (PNG)")
    ap.add_argument("--min-plots", type=int, default=0)
    ap.add_argument("--width", type=int, default=1360)
    a = ap.parse_args()

    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("check-html: skip: chromium is not installed (Debian: apt-get install chromium)")
        return 77
    if not os.path.isfile(a.html):
        print("check-html: no such file: %s" % a.html, file=sys.stderr)
        return 2
    page_url = "file://" + os.path.abspath(a.html)
    with tempfile.TemporaryDirectory(prefix="mixq-chromium-") as prof:
        b = Browser(exe, prof)
        try:
            target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for dom in ("Runtime", "Log", "Page", "Network"):
                b.call(dom + ".enable", session=s)
            b.call("Emulation.setDeviceMetricsOverride",
                   {"width": a.width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=s)
            b.call("Page.navigate", {"url": page_url}, session=s)
            b.wait_event("Page.loadEventFired", TIMEOUT_S)
            b.drain(1.0)  # late console messages
            res = b.call("Runtime.evaluate", {"returnByValue": True, "expression": """JSON.stringify({
                title: document.title,
                plots: [...document.querySelectorAll('svg.plot')].map(e => {
                    const r = e.getBoundingClientRect(); return [r.width, r.height]; }),
                tables: document.querySelectorAll('table').length})"""}, session=s)
            info = json.loads(res["result"]["value"])
            if a.top:
                shot = b.call("Page.captureScreenshot", {"format": "png"}, session=s)
                with open(a.top, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
            m = b.call("Page.getLayoutMetrics", session=s)
            size = m.get("cssContentSize") or m.get("contentSize")
            h = min(int(size["height"]) + 1, 30000)
            shot = b.call("Page.captureScreenshot",
                          {"format": "png", "captureBeyondViewport": True,
                           "clip": {"x": 0, "y": 0, "width": a.width, "height": h, "scale": 1}}, session=s)
            with open(a.shot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
            problems = problems_in(b.events, page_url)
        except (TimeoutError, RuntimeError, KeyError) as e:
            print("check-html: %s: %s" % (a.html, e), file=sys.stderr)
            return 1
        finally:
            b.close()
    if not info["title"]:
        problems.append("the page has no title")
    small = [p for p in info["plots"] if p[0] < 50 or p[1] < 50]
    if small:
        problems.append("%d inline plots have no size: %s" % (len(small), small[:3]))
    if len(info["plots"]) < a.min_plots:
        problems.append("%d inline plots, want at least %d" % (len(info["plots"]), a.min_plots))
    for p in problems:
        print("check-html: %s: %s" % (a.html, p), file=sys.stderr)
    print("check-html: %s: %s, %d plots, %d tables, %d px tall; screenshot %s" % (
        a.html, "FAIL" if problems else "ok", len(info["plots"]), info["tables"], h, a.shot))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
