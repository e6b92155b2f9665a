"""``DIR/manifest.json``: what each artifact is, how it was made, its hash and its parity figures.

Exports into the same directory merge (an entry is replaced by the entry for the same file name);
the manifest is rewritten atomically after each artifact, so it never lists a file that is not
there in full. An entry is a cache hit when everything that made it is unchanged
(``CACHE_FIELDS``) and the file still has the recorded sha256.
"""

import json
from pathlib import Path

from device_agents.fileio import sha256_file, write_json
from edgekit import __version__
from edgekit.errors import EdgekitError
from edgekit.export.tools import tool_versions

MANIFEST = "manifest.json"
CACHE_FIELDS = ("model", "dataset", "checkpoint_key", "split", "part", "format", "precision",
                "calibration", "exporter_version", "tool_versions")


def read_manifest(out_dir: Path) -> dict:
    """The directory's manifest, or an empty one; EdgekitError if the file is not a manifest."""
    path = out_dir / MANIFEST
    if not path.exists():
        return {"edgekit_version": __version__, "tool_versions": tool_versions(), "artifacts": []}
    try:
        manifest = json.loads(path.read_text())
        valid = isinstance(manifest, dict) and isinstance(manifest.get("artifacts"), list)
    except (OSError, ValueError):
        valid = False
    if not valid:
        raise EdgekitError(f"{path} is not an edgekit export manifest; remove it or choose another --out")
    return manifest


def write_manifest(out_dir: Path, manifest: dict) -> None:
    manifest["edgekit_version"] = __version__
    manifest["tool_versions"] = tool_versions()
    write_json(out_dir / MANIFEST, manifest)


def find(manifest: dict, file: str):
    return next((entry for entry in manifest["artifacts"] if entry.get("file") == file), None)


def put(manifest: dict, entry: dict) -> None:
    """Add ``entry``, replacing the one for the same file."""
    artifacts = manifest["artifacts"]
    old = find(manifest, entry["file"])
    if old is None:
        artifacts.append(entry)
    else:
        artifacts[artifacts.index(old)] = entry


def drop(manifest: dict, file: str) -> None:
    manifest["artifacts"] = [entry for entry in manifest["artifacts"] if entry.get("file") != file]


def cached(manifest: dict, out_dir: Path, file: str, inputs: dict):
    """The entry for ``file`` if it was made from ``inputs`` and the file is unchanged, else None."""
    entry = find(manifest, file)
    if entry is None or any(entry.get(field) != inputs[field] for field in CACHE_FIELDS):
        return None
    path = out_dir / file
    return entry if path.is_file() and sha256_file(path) == entry.get("sha256") else None
