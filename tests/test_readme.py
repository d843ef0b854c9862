"""The README's SavedModel snippet runs as written, in a plain TF program."""

import os
import re
import subprocess
import sys

from tests.conftest import REPO


def test_readme_savedmodel_snippet_runs(tmp_path):
    readme = open(os.path.join(REPO, "README.md")).read()
    snippets = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    snippet = next(s for s in snippets if "tf.saved_model.load" in s)
    assert "import e2e_compress" not in snippet
    script = tmp_path / "snippet.py"
    script.write_text(snippet)
    result = subprocess.run([sys.executable, str(script)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "bytes of range-coded latents" in result.stdout
