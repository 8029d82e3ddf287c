import subprocess
import sys

from tests.helpers import REPO


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "empathy_data.cli", *args], capture_output=True, text=True, cwd=cwd)
