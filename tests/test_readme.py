"""The commands in README.md and the docs run as pasted.

Every fenced ```bash block must pass `bash -n`, and every `kerasae` / `kerasae-runtime`
command in one must parse with the real argument parser (flags, choices, types). The
quick start and the blocks marked `<!-- readme-test: run -->` are then run for real, in
order, in a fresh folder whose `.venv` is this test's environment (slow).
"""

import glob
import os
import re
import shlex
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.svm import SVC

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [
    "README.md",
    *sorted(glob.glob("docs/*.md", root_dir=ROOT)),
    *sorted(glob.glob("examples/*.md", root_dir=ROOT)),
    "export/README.md",
    *sorted(glob.glob("plugins/*/README.md", root_dir=ROOT)),
]
BLOCK = re.compile(r"(<!-- readme-test: run -->\n)?```bash\n(.*?)```", re.S)
SETUP = re.compile(r"^python3 -m venv \.venv && \.venv/bin/pip install [^&]+&& ")


def blocks(doc):
    """[(runnable, text)] of the bash blocks of a Markdown file."""
    with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
        return [(bool(mark), text) for mark, text in BLOCK.findall(f.read())]


ALL = [(doc, i, text) for doc in DOCS for i, (_, text) in enumerate(blocks(doc))]


def commands(text):
    """argv lists of the kerasae / kerasae-runtime commands in a bash block."""
    text = re.sub(r"<<'?(\w+)'?\n.*?\n\1\n", "\n", text, flags=re.S)  # here-documents
    text = text.replace("\\\n", " ")
    found, pending = [], ""
    for line in text.splitlines():
        pending += line + "\n"
        try:  # a quoted string may span lines (TF_CONFIG='{...}')
            words = _words(pending)
        except ValueError:
            continue
        pending = ""
        command = []
        for word in [*words, ";"]:
            if word.strip(";&|<>()"):  # an argument
                command.append(word)
                continue
            if command and os.path.basename(command[0]) in ("kerasae", "kerasae-runtime"):
                found.append([os.path.basename(command[0]), *command[1:]])
            command = [] if word.strip() != ">" else [""]  # a redirection ends the args
    return found


def _words(line):
    """Shell words, with operators (&&, ;, |, >) as words of their own; quotes respected."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def test_the_docs_have_bash_blocks_and_commands():
    assert len(ALL) > 20 and sum(len(commands(t)) for _, _, t in ALL) > 40


@pytest.mark.parametrize("doc,index,text", ALL, ids=[f"{d}#{i}" for d, i, _ in ALL])
def test_bash_block_parses_and_its_commands_have_valid_flags(doc, index, text, capsys):
    check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, f"{doc} block {index}: {check.stderr}"
    for argv in commands(text):
        parser = _parser(argv[0])
        try:
            parser.parse_args(argv[1:])
        except SystemExit as exc:
            assert exc.code == 0, f"{doc}: `{shlex.join(argv)}`: {capsys.readouterr().err}"


def _parser(program):
    if program == "kerasae":
        from kerasae.cli import build_parser

        return build_parser()
    sys.path.insert(0, os.path.join(ROOT, "export"))
    try:
        from kerasae_runtime.cli import build_parser
    finally:
        sys.path.pop(0)
    return build_parser()


@pytest.mark.slow
def test_quick_start_twice_then_the_marked_blocks_run(tmp_path):
    readme = blocks("README.md")
    quick = next(text for _, text in readme if SETUP.match(text))
    runnable = [text for run, text in readme if run]
    assert len(runnable) >= 3
    os.symlink(sys.prefix, tmp_path / ".venv")  # the environment the set-up line makes
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)

    def bash(script):
        return subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    main_command = SETUP.sub("", quick.strip())
    for attempt in ("first run", "second run: reuses runs/demo"):
        result = bash(main_command)
        assert result.returncode == 0, f"quick start, {attempt}: {result.stderr[-2000:]}"
    assert "reusing it" in result.stdout and "test MSE" in result.stdout
    # one terminal session, as a reader pastes them (the tour's `source` carries over)
    script = "".join(f"echo '### README block {i}'\n{text}" for i, text in enumerate(runnable))
    result = bash(script)
    assert result.returncode == 0, f"{result.stdout[-1500:]}\n{result.stderr[-2000:]}"
    tour_samples_are_digits(bash, tmp_path)
    for made in (
        "grid.png",
        "cmp/comparison.md",
        "runs/vae/export/manifest.json",
        "deploy/vae/decoder.fp16.onnx",
        "runs/ae/top5/scores.csv",
        "runs/vae/report.html",
        "vae-report.html",
        "mlruns.db",
    ):
        assert (tmp_path / made).exists(), made


def tour_samples_are_digits(bash, folder):
    """The tour's first generative result is what a newcomer judges kerasae by: its 64
    samples (the seed of its grid.png) must be digits a classifier recognises, with
    confidence, in at least 8 of the 10 classes."""
    result = bash(".venv/bin/kerasae sample runs/vae -n 64 --out tour.npy")
    assert result.returncode == 0, result.stderr
    digits = load_digits()
    classifier = CalibratedClassifierCV(SVC(), ensemble=False)  # probabilities
    classifier.fit(digits.images.reshape(len(digits.images), -1) / 16.0, digits.target)
    images = np.load(folder / "tour.npy").reshape(64, -1)
    probabilities = classifier.predict_proba(images)
    confident = probabilities.max(axis=1) >= 0.7
    classes = set(probabilities.argmax(axis=1)[confident].tolist())
    assert len(classes) >= 8, f"the tour's samples show only {sorted(classes)} clearly"


def test_the_readme_counts_and_names_every_built_in_model():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        group = tomllib.load(f)["project"]["entry-points"]["kerasae.models"]
    built_in = sorted(name for name, target in group.items() if target.startswith("kerasae."))
    with open(os.path.join(ROOT, "README.md")) as f:
        intro = f.read().split("```", 1)[0]
    count = re.search(r"\(`kerasae list`, (\d+) built in\)", intro)
    assert count and int(count.group(1)) == len(built_in), (count, len(built_in))
    missing = [name for name in built_in if f"`{name}`" not in intro]
    assert not missing, f"README's introduction does not name {missing}"
