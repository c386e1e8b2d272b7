"""`affordml bundle --images`: pull and save the container images the charts use, with docker or skopeo.

Optional: the files are large (each image is an archive of all its layers). The kubernetes and gpu phases do not
load them yet; they are for an air-gapped site to import into its own registry or into containerd.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from affordml.errors import ArtifactError

SAFE = re.compile(r"[^A-Za-z0-9_.-]+")
INSTALL_FIX = "install skopeo (`apt-get install skopeo`) or docker, or leave out --images"


def image_list(artifacts) -> list[tuple[str, str]]:
    """(image, artifact name) for every image the lock lists, each image once, in lock order."""
    seen: dict[str, str] = {}
    for artifact in artifacts:
        for image in artifact.images:
            seen.setdefault(image, artifact.name)
    return list(seen.items())


def image_file_name(image: str) -> str:
    return SAFE.sub("_", image) + ".tar"


def pick_tool(which=shutil.which) -> tuple[str, str]:
    for tool in ("skopeo", "docker"):
        path = which(tool)
        if path:
            return tool, path
    raise ArtifactError("`affordml bundle --images` needs skopeo or docker; neither is installed", INSTALL_FIX)


def save_image(tool: tuple[str, str], image: str, target: Path) -> None:
    name, path = tool
    tmp = target.with_name(f".{target.name}.part")
    tmp.unlink(missing_ok=True)
    if name == "skopeo":
        steps = [[path, "copy", "--retry-times", "3", f"docker://{image}", f"docker-archive:{tmp}:{image}"]]
    else:
        steps = [[path, "pull", image], [path, "save", "-o", str(tmp), image]]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tmp.unlink(missing_ok=True)
            reason = " ".join((done.stderr or done.stdout).split())[-300:]
            raise ArtifactError(
                f"image {image}: `{name} {argv[1]}` failed ({reason})",
                "check the registry is reachable from this machine (or its proxy), then run the bundle again",
            )
    if not tmp.is_file():
        raise ArtifactError(f"image {image}: {name} wrote no archive", "run the bundle again; report it if it repeats")
    tmp.replace(target)


def save_images(dest: Path, artifacts, *, which=shutil.which, say=lambda text: None) -> list[dict]:
    from affordml.artifacts.verify import sha256_file

    tool = pick_tool(which)
    folder = Path(dest) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for image, chart in image_list(artifacts):
        target = folder / image_file_name(image)
        if not target.is_file():
            say(f"image {image}: saving with {tool[0]}")
            save_image(tool, image, target)
        entries.append(
            {
                "image": image,
                "for": chart,
                "file": f"images/{target.name}",
                "sha256": sha256_file(target),
                "size": target.stat().st_size,
            }
        )
        say(f"image {image}: {entries[-1]['size']} bytes")
    return entries
