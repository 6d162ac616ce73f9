"""The vendored browser libraries are the versions the repository says they are."""
import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # serverpush_js/
VENDOR = ROOT / "static" / "serverpush" / "vendor"
JQUERY = ROOT.parent / "demo" / "static" / "demo" / "jquery.min.js"
README = ROOT / "README.md"


def readme_versions(package):
    text = README.read_text(encoding="utf-8")
    return set(re.findall(re.escape(package) + r"[@ ]v?(\d+\.\d+\.\d+)", text))


def pinned():
    """VERSION: one line per vendored library, ``name version [sha256:<hex>]``."""
    lines = (VENDOR / "VERSION").read_text(encoding="utf-8").splitlines()
    return {name: rest for name, *rest in (line.split() for line in lines if line.strip())}


def test_socketio_version_everywhere():
    [version] = pinned()["socket.io-client"]
    banner = (VENDOR / "socket.io.min.js").read_text(encoding="utf-8")[:300]
    assert re.search(r"Socket\.IO v(\d+\.\d+\.\d+)", banner).group(1) == version
    assert "MIT License" in banner
    assert readme_versions("socket.io-client") == {version}


def test_idiomorph_is_the_pinned_release_with_its_licence():
    # The minified release names no version; its checksum is the pin.
    version, checksum = pinned()["idiomorph"]
    digest = hashlib.sha256((VENDOR / "idiomorph.min.js").read_bytes()).hexdigest()
    assert checksum == f"sha256:{digest}", "vendor/idiomorph.min.js is not the file VERSION pins"
    assert readme_versions("idiomorph") == {version}
    assert "Zero-Clause BSD" in (VENDOR / "idiomorph.LICENSE").read_text(encoding="utf-8")


def test_jquery_version_matches_readme():
    banner = JQUERY.read_text(encoding="utf-8")[:300]
    version = re.search(r"jQuery v(\d+\.\d+\.\d+)", banner).group(1)
    assert readme_versions("jquery") == {version}


def test_source_maps_present():
    # ManifestStaticFilesStorage (collectstatic) fails on a sourceMappingURL whose
    # file is missing, so a vendored file that names a map must ship it.
    for path in (VENDOR / "socket.io.min.js", VENDOR / "idiomorph.min.js", JQUERY):
        match = re.search(r"sourceMappingURL=(\S+)", path.read_text(encoding="utf-8"))
        if match:
            assert (path.parent / match.group(1)).is_file(), f"{path.name}: missing map"
