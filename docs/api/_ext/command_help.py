"""``.. command-help:: matnet_torch.train [ARGS...]``: the ``--help`` text of a command, as a literal block.

Runs ``python -m MODULE ARGS... --help`` with the interpreter that runs Sphinx, 80 columns wide (what
fits the page), so the page shows exactly what a user sees; a command that fails is a build error.
"""
import os
import subprocess
import sys

from docutils import nodes
from docutils.parsers.rst import Directive

COLUMNS = "80"


class CommandHelp(Directive):
    required_arguments = 1
    optional_arguments = 5

    def run(self):
        command = [sys.executable, "-m", *self.arguments, "--help"]
        environment = dict(os.environ, COLUMNS=COLUMNS, PYTHONPATH=os.pathsep.join(sys.path))
        result = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120)
        if result.returncode != 0:
            raise self.error(f"{' '.join(self.arguments)} --help exited {result.returncode}: {result.stderr.strip()}")
        shown = "$ python -m " + " ".join(self.arguments) + " --help\n" + result.stdout.rstrip()
        return [nodes.literal_block(shown, shown)]


def setup(app):
    app.add_directive("command-help", CommandHelp)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
