"""The agent runs on the boards' Pythons (3.8+) and imports nothing it cannot find there."""

import ast
import os
import subprocess
import sys

from agent_support import REPO

AGENT = os.path.join(REPO, "device_agents")
FORBIDDEN = ("torch", "edgekit", "cloud_side")


def test_python_38_syntax_and_stdlib():
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "vermin"), "-t=3.8-", "--no-tips",
                           "--violations", "--eval-annotations", AGENT],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert done.returncode == 0, done.stdout


def imported_modules(path):
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_never_imports_torch_edgekit_or_cloud_side():
    offenders = []
    for directory, _, files in os.walk(AGENT):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                for module in imported_modules(path):
                    if module.split(".")[0] in FORBIDDEN:
                        offenders.append((os.path.relpath(path, REPO), module))
    assert offenders == []


def test_runtimes_are_imported_lazily():
    code = ("import sys, device_agents.cli, device_agents.run, device_agents.runtime; "
            "print(sorted(m for m in ('onnxruntime', 'ai_edge_litert', 'tflite_runtime', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, universal_newlines=True)
    assert done.stdout.strip() == "[]"
