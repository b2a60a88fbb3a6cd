"""A bug in a plugin's code is reported as the plugin's: the distribution, the class and
the hook, not "kerasae: internal error". A real installed-looking distribution (a
.dist-info on PYTHONPATH) provides a model whose `after_step` calls `.numpy()` on a
tensor of the compiled step, as a plugin author wrote it.
"""

import pytest
from helpers import run_cli

MODEL = '''
from kerasae.models.ae import AE


class TalliedAE(AE):
    """An AE that counts its steps the wrong way: .numpy() inside the compiled step."""

    def after_step(self, x, outputs):
        self.steps = outputs["loss"].numpy()
'''


@pytest.mark.slow
def test_a_plugin_hooks_error_names_the_plugin_class_and_hook(tmp_path):
    package = tmp_path / "tallied_plugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(MODEL)
    info = tmp_path / "kerasae_tallied-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kerasae-tallied\nVersion: 0.1\n")
    (info / "top_level.txt").write_text("tallied_plugin\n")
    (info / "entry_points.txt").write_text(
        "[kerasae.models]\ntallied = tallied_plugin.model:TalliedAE\n"
    )
    proc = run_cli(
        "train",
        "--model",
        "tallied",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--latent-dim",
        "2",
        "--out",
        tmp_path / "run",
        "--quiet",
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert proc.returncode == 1, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("kerasae: error in plugin 'kerasae-tallied', TalliedAE.after_step:")
    assert "AttributeError" in line and "numpy" in line and "report it to kerasae-tallied" in line
    assert "internal error" not in line
