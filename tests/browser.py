"""Headless Chromium for the report tests: what each <audio> of a page did, screenshots.

Debian's ``chromium`` package (``.ci/run`` installs it); without it the tests that need it
skip, saying so.
"""

import json
import os
import re
import shutil
import subprocess

import pytest

# Appended to a copy of the page: waits until every <audio> has its metadata or an error,
# then writes what each element did into the DOM, which --dump-dom prints.
_PROBE = """<script>
function probe() {
  const audio = [...document.querySelectorAll('audio')];
  if (!audio.every(a => a.readyState >= 1 || a.error)) { setTimeout(probe, 50); return; }
  const out = document.createElement('pre');
  out.id = 'freqrex-probe';
  out.textContent = JSON.stringify(audio.map(a => ({src: a.getAttribute('src'),
    ready: a.readyState, error: a.error ? a.error.code : null, duration: a.duration})));
  document.body.appendChild(out);
}
window.addEventListener('load', probe);
</script>"""


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt-get install chromium); "
    ".ci/run installs it so CI runs this test")


def _browser(*args, timeout=90):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--allow-file-access-from-files", "--disable-dev-shm-usage", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HOME": os.environ.get("HOME", "/tmp")})


def audio_states(page):
    """What Chromium made of each <audio> of ``page``: src, readyState, error, duration."""
    probe = page.with_name("_probe.html")
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    try:
        done = _browser("--virtual-time-budget=15000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    found = re.search(r'<pre id="freqrex-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not report; chromium said: {done.stderr[-500:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


def screenshot(page, png):
    _browser("--hide-scrollbars", "--window-size=1280,1600", f"--screenshot={png}",
             page.as_uri())
    return png
