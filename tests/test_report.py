"""`kerasae report`: one self-contained HTML page per run, read as text and opened in Chromium.

The browser check talks to headless Chromium over the DevTools protocol on a pipe
(`--remote-debugging-pipe`: commands on the browser's fd 3, replies and events on fd 4)
and collects every error the page's console would show: uncaught exceptions
(`Runtime.exceptionThrown`), `console.error`/`console.assert` (`Runtime.consoleAPICalled`)
and the browser's own error entries (`Log.entryAdded`: failed loads, blocked resources,
CSP violations). `--enable-logging=stderr` would miss the last kind, which is the one a
broken data URI or an external reference causes. A control page with known errors first
proves that the check sees them.
"""

import base64
import io
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time

import pytest

from kerasae.cli import main
from kerasae.report_sections import latest_grids
from tests.helpers import run_cli

FIXTURE_EXPORT = os.path.join(os.path.dirname(__file__), "..", "export", "tests", "fixture")
PNG_URI = "data:image/png;base64,"
# 3 history terms (loss, kl, reconstruction; beta stays 1, so it is not logged) and 3
# grids (reconstructions, samples, traversal)
IMAGES = 6
SECTIONS = ("metrics", "history", "grids", "threshold", "export", "config")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from kerasae.runs.config import TrainConfig
    from kerasae.runs.training import train

    out = str(tmp_path_factory.mktemp("report") / "vae-run")
    train(
        TrainConfig(
            model="vae",
            dataset="digits",
            epochs=2,
            latent_dim=2,
            out=out,
            params={"hidden_units": [32]},
        ),
        verbose=0,
    )  # about 5 s
    # a real `kerasae export` manifest and files (of a tiny vae), where export writes them
    shutil.copytree(FIXTURE_EXPORT, os.path.join(out, "export"))
    return out


@pytest.fixture(scope="module")
def report(run_dir):
    proc = run_cli("report", run_dir)
    assert proc.returncode == 0, proc.stderr
    path = os.path.join(run_dir, "report.html")
    assert proc.stdout.strip().splitlines()[-1] == path
    with open(path, encoding="utf-8") as f:
        return path, f.read()


@pytest.mark.slow
def test_report_holds_every_section_inline(run_dir, report):
    from PIL import Image

    from kerasae.evaluation.reconstruction import evaluate

    _, page = report
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in page
    assert "<title>kerasae report: vae-run</title>" in page
    # each a PNG that decodes
    uris = re.findall(r'src="(data:[^"]*)"', page)
    assert len(uris) == page.count(PNG_URI) == IMAGES
    for uri in uris:
        Image.open(io.BytesIO(base64.b64decode(uri[len(PNG_URI) :]))).verify()
    for caption in (
        "loss: loss and val_loss",
        "kl: kl and val_kl",
        "samples/reconstructions_epoch002.png",
        "samples/samples_epoch002.png",
        "samples/traversal_epoch002.png",
    ):
        assert caption in page
    assert not re.search(
        r"""(src|href)\s*=\s*["']?(https?:|//)|url\(|@import|<script""", page, re.I
    )
    metrics = evaluate(run_dir)  # deterministic: the posterior mean is decoded
    assert f"{metrics['test_mse']:.6g}" in page and f"{metrics['psnr']:.2f}" in page
    with open(os.path.join(run_dir, "threshold.json")) as f:
        assert f"{json.load(f)['threshold']:.6g}" in page
    for text in ("decoder.onnx", "present", "(N, 8, 8, 1)", "z_mean", "max |diff|"):
        assert text in page
    assert 'class="bad"' not in page  # every file of the manifest is there
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(report[0]).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


NO_TF = """
import sys
from kerasae.cli import main
code = main(sys.argv[1:])
heavy = [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras")]
sys.exit(code or (3 if heavy else 0))
"""


@pytest.mark.slow
def test_no_evaluate_imports_no_tensorflow(run_dir, tmp_path):
    out = tmp_path / "page.html"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TF,
            "report",
            run_dir,
            "--no-evaluate",
            "--quiet",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    page = out.read_text()
    assert "not evaluated (--no-evaluate)" in page and page.count(PNG_URI) == IMAGES


@pytest.mark.slow
def test_unavailable_data_leaves_the_metrics_out(run_dir, tmp_path, capsys):
    run = shutil.copytree(
        run_dir,
        tmp_path / "moved",
        ignore=shutil.ignore_patterns("report.html", "tensorboard", "checkpoints", "export"),
    )
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "dataset": str(tmp_path / "gone.npy")}))
    assert main(["report", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kerasae: warning: not evaluated:"), err
    page = (run / "report.html").read_text()
    assert "not evaluated:" in page and "gone.npy" in page and page.count(PNG_URI) == IMAGES


@pytest.mark.slow
def test_out_that_is_a_folder_fails_first(run_dir, tmp_path, capsys):
    assert main(["report", run_dir, "--out", str(tmp_path)]) == 2  # before any evaluation
    assert "is a folder" in capsys.readouterr().err


def _fake_run(folder, config):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.keras").write_bytes(b"")  # never loaded without evaluation
    (folder / "history.csv").write_text("epoch,loss,val_loss,<b>term\n0,2.0,,1\n1,1.0,1.5,x\n")
    return folder


def test_text_from_the_run_is_escaped(tmp_path, capsys):
    evil = '<script>alert("x")</script>'
    run = _fake_run(
        tmp_path / "run<i>",
        {"model": evil, "dataset": "a&b", "model_config": {evil: evil, "units": [1, 2]}},
    )
    assert main(["report", str(run), "--no-evaluate"]) == 0
    page = (run / "report.html").read_text()
    assert "<script" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page and "a&amp;b" in page
    assert "<code>[1, 2]</code>" in page and "run&lt;i&gt;" in page
    assert "&amp;amp;" not in page and "&amp;lt;" not in page  # escaped once, not twice
    assert page.count(PNG_URI) == 2  # loss with val_loss, and the <b>term column
    assert "no PNG grids" in page and "no threshold.json" in page and "no export" in page
    assert capsys.readouterr().out.strip() == str(run / "report.html")


def test_latest_grid_of_each_kind(tmp_path):
    for name in (
        "samples_epoch9.png",
        "samples_epoch10.png",
        "traversal_epoch003.png",
        "reconstructions_epoch002.png",
        "reconstructions.png",
        "notes.txt",
    ):
        (tmp_path / name).write_bytes(b"")
    assert {k: os.path.basename(p) for k, p in latest_grids(str(tmp_path)).items()} == {
        "samples": "samples_epoch10.png",
        "traversal": "traversal_epoch003.png",
        # `kerasae sample` writes its unnumbered grid after training: the newest
        "reconstructions": "reconstructions.png",
    }


def test_bad_run_folder_is_one_line_exit_2(tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text("{}")
    for folder, message in [
        (tmp_path, "is not a kerasae run folder (no config.json)"),
        (unfinished, "holds no trained model yet"),
    ]:
        proc = run_cli("report", folder)  # no --no-evaluate: checked before TensorFlow
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kerasae: error:"), proc.stderr
        assert message in lines[0] and not os.path.exists(folder / "report.html")


# ---------------------------------------------------------------------- Chromium


@pytest.fixture(scope="module")
def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail(
            "CI is set but no chromium binary is on PATH (.ci/run installs the "
            "Debian package chromium)"
        )
    pytest.skip(
        "no chromium binary on PATH (apt-get install chromium); the page was checked as text only"
    )


def _flags(profile):
    # --no-sandbox: Chromium refuses to run as root otherwise (containers, CI)
    return [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile}",
    ]


# Chromium wants the protocol on fds 3 and 4 exactly; our pipe ends may be anywhere, even
# on 3 or 4 the wrong way round, so they go out of the way first.
TRAMPOLINE = """
import fcntl, os, sys
fds = [int(f) for f in sys.argv[1:3]]
high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 10) for f in fds]
for f in fds:
    os.close(f)
os.dup2(high[0], 3)
os.dup2(high[1], 4)
os.execv(sys.argv[3], sys.argv[3:])
"""

CONSOLE_ERRORS = ("Runtime.exceptionThrown", "Runtime.consoleAPICalled", "Log.entryAdded")


class DevTools:
    """A minimal Chrome DevTools protocol client over --remote-debugging-pipe."""

    def __init__(self, chromium, profile, timeout=60):
        cmd_r, self._cmd_w = os.pipe()
        self._ev_r, ev_w = os.pipe()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TRAMPOLINE,
                str(cmd_r),
                str(ev_w),
                chromium,
                *_flags(profile),
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(cmd_r, ev_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(ev_w)
        self.deadline = time.monotonic() + timeout
        self.events, self._buf, self._id, self.session = [], b"", 0, None

    def _read(self, wait):
        ready, _, _ = select.select([self._ev_r], [], [], max(0.0, wait))
        if not ready:
            return False
        chunk = os.read(self._ev_r, 1 << 20)
        if not chunk:
            raise EOFError("chromium closed the DevTools pipe")
        *messages, self._buf = (self._buf + chunk).split(b"\0")
        self.events += [json.loads(m) for m in messages]
        return True

    def _wait(self, found):
        while (hit := next((m for m in self.events if found(m)), None)) is None:
            if time.monotonic() > self.deadline:
                raise TimeoutError("chromium did not answer in time")
            self._read(self.deadline - time.monotonic())
        return hit

    def send(self, method, **params):
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        reply = self._wait(lambda m, i=self._id: m.get("id") == i)
        self.events.remove(reply)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    def open_page(self):
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def load(self, url, settle=0.5):
        """Navigate, wait for the load event and `settle` seconds more; returns the errors
        the console showed and the page's title and image counts."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self._wait(lambda m: m.get("method") == "Page.loadEventFired")
        end = time.monotonic() + settle
        while time.monotonic() < end:
            self._read(end - time.monotonic())
        errors = [_console_error(m) for m in self.events if m.get("method") in CONSOLE_ERRORS]
        state = self.send(
            "Runtime.evaluate",
            returnByValue=True,
            expression=(
                "({title: document.title, images: document.images.length, broken: "
                "[...document.images].filter(i => !i.complete || !i.naturalWidth).length})"
            ),
        )
        return [e for e in errors if e], state["result"]["value"]

    def close(self):
        try:
            self.send("Browser.close")
        except (OSError, EOFError, TimeoutError, AssertionError):
            pass
        os.close(self._cmd_w)
        os.close(self._ev_r)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _console_error(event):
    params = event["params"]
    if event["method"] == "Runtime.exceptionThrown":
        details = params["exceptionDetails"]
        return f"exception: {details.get('exception', {}).get('description') or details['text']}"
    if event["method"] == "Runtime.consoleAPICalled":
        if params["type"] in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
            return f"console.{params['type']}: {args}"
        return None
    entry = params["entry"]
    return f"{entry['source']}: {entry['text']}" if entry["level"] == "error" else None


CONTROL = """<!DOCTYPE html><title>control</title><img src="missing.png">
<script>console.error("boom"); notDefined();</script>"""


@pytest.mark.slow
def test_page_in_chromium(chromium, report, tmp_path):
    from PIL import Image

    path, _ = report
    url = "file://" + os.path.abspath(path)
    control = tmp_path / "control.html"
    control.write_text(CONTROL)
    browser = DevTools(chromium, tmp_path / "profile-cdp")
    try:
        browser.open_page()
        errors, _ = browser.load(control.as_uri())
        # the check sees each kind: a failed load, console.error, an uncaught exception
        assert len(errors) == 3, errors
        assert any("boom" in e for e in errors) and any("notDefined" in e for e in errors)
        errors, state = browser.load(url)
    finally:
        browser.close()
    assert errors == [], errors
    assert state == {"title": "kerasae report: vae-run", "images": IMAGES, "broken": 0}

    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            *_flags(tmp_path / "profile-shot"),
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(shot).convert("RGB")
    assert image.size == (1200, 2000)
    colors = image.getcolors(maxcolors=1 << 16) or []
    assert len(colors) > 50 or not colors, "the screenshot is (nearly) one color"
    white = next((n for n, c in colors if c == (255, 255, 255)), 0)
    assert white < 0.98 * image.size[0] * image.size[1], "the screenshot is blank"

    dom = subprocess.run(
        [chromium, *_flags(tmp_path / "profile-dom"), "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "<title>kerasae report: vae-run</title>" in dom
    assert dom.count(PNG_URI) == IMAGES and '<section id="export">' in dom
