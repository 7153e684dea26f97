"""mdistiller's CIFAR-100 teacher checkpoints: download ``cifar_teachers.tar`` from its GitHub release, check
it and unpack it into ``download_ckpts/`` without ever leaving a half-written file or folder behind.

The archive goes to a temporary file beside the destination, is verified (a readable tar; only regular
files and folders; no absolute paths or ``..``; at least one ``cifar_teachers/<name>_vanilla/
ckpt_epoch_240.pth``), extracted into a temporary folder and moved into place with one ``os.rename``.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from typing import List, Optional

from .errors import UserError
from .fileio import disk_error, disk_errors, is_file_system_refusal

DEFAULT_TEACHERS_URL = "https://github.com/megvii-research/mdistiller/releases/download/checkpoints/cifar_teachers.tar"
#: environment variable that overrides the download URL (a mirror, or a file:// path)
URL_ENV = "MDISTILLER_DDKD_TEACHERS_URL"
TEACHERS_FOLDER = "cifar_teachers"
CKPT_NAME = "ckpt_epoch_240.pth"


class DownloadError(UserError, RuntimeError):
    """A download failed (offline, unreachable, refused); the message says what to fetch by hand, and where."""


class TeacherArchiveError(UserError, RuntimeError):
    """The downloaded archive is not a valid, safe ``cifar_teachers.tar``."""


def teachers_url(url: Optional[str] = None) -> str:
    """The URL to fetch: the argument, else ``$MDISTILLER_DDKD_TEACHERS_URL``, else mdistiller's release."""
    return url or os.environ.get(URL_ENV) or DEFAULT_TEACHERS_URL


def _offline_message(url: str, dest_root: str, reason: str) -> str:
    target = os.path.join(os.path.abspath(dest_root), TEACHERS_FOLDER)
    return (
        f"could not download the CIFAR-100 teacher checkpoints from {url} ({reason}).\n"
        f"On a machine with network access download {DEFAULT_TEACHERS_URL} (mdistiller's release "
        f"'checkpoints') and unpack it with `tar xf cifar_teachers.tar -C {os.path.abspath(dest_root)}` so that "
        f"{target}/<model>_vanilla/{CKPT_NAME} exist; or serve the tar yourself and pass --url / set {URL_ENV} "
        f"(file:///path/to/cifar_teachers.tar works)."
    )


def fetch(url: str, destination: str, timeout: float = 60.0, progress: bool = True) -> None:
    """Download ``url`` (http(s) or file://) to ``destination`` with a tqdm progress bar.

    Writes to ``destination`` directly: callers pass a temporary path and move it when it is complete.
    Network and file errors propagate as ``urllib.error.URLError`` / ``OSError``.
    """
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "mdistiller-ddkd"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(destination, "wb") as out:
        total = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        with tqdm(total=int(total) if total else None, unit="B", unit_scale=True, unit_divisor=1024,
                  desc=os.path.basename(url) or "download", disable=not progress) as bar:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
        out.flush()
        os.fsync(out.fileno())


def check_teacher_archive(path: str) -> List[str]:
    """Validate a teacher archive; returns the teacher folder names found (``resnet56_vanilla``, ...).

    Raises ``TeacherArchiveError`` for an unreadable tar, unsafe members (absolute paths, ``..``, links,
    devices) or an archive without any ``cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth``.
    """
    try:
        with tarfile.open(path, "r:*") as tar:
            members = tar.getmembers()
            for member in members:  # read every payload: a truncated download fails here
                if member.isfile():
                    handle = tar.extractfile(member)
                    while handle.read(1 << 20):
                        pass
            end = tar.offset
        if not _is_compressed(path) and not _has_end_marker(path, end):
            raise tarfile.ReadError("the archive ends early (no end-of-archive marker): truncated")
    except (tarfile.TarError, EOFError, OSError) as err:
        raise TeacherArchiveError(f"{path} is not a readable tar archive ({err}); the download is corrupt or "
                                  f"not mdistiller's cifar_teachers.tar") from None
    teachers = []
    for member in members:
        name = member.name
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or os.path.isabs(name) or ".." in parts or (parts and ":" in parts[0]):
            raise TeacherArchiveError(f"unsafe path in the teacher archive: {name!r}")
        if not (member.isfile() or member.isdir()):
            raise TeacherArchiveError(f"the teacher archive holds {name!r}, which is neither a regular file nor "
                                      f"a folder (links and devices are refused)")
        clean = [p for p in parts if p not in ("", ".")]
        if (member.isfile() and len(clean) == 3 and clean[0] == TEACHERS_FOLDER and clean[1].endswith("_vanilla")
                and clean[2] == CKPT_NAME):
            teachers.append(clean[1])
    if not teachers:
        raise TeacherArchiveError(f"{path} holds no {TEACHERS_FOLDER}/<model>_vanilla/{CKPT_NAME}: not "
                                  f"mdistiller's cifar_teachers.tar")
    return sorted(teachers)


def _is_compressed(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(6)
    return head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ"))


def _has_end_marker(path: str, offset: int) -> bool:
    """Whether an uncompressed tar has its two zero blocks after the last member (complete download)."""
    with open(path, "rb") as f:
        f.seek(offset)
        marker = f.read(1024)
    return len(marker) == 1024 and not marker.strip(b"\0")


def _extract(archive: str, into: str) -> None:
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():  # already checked: only files and folders with safe paths
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extract(member, into, set_attrs=False, **safe)


def install_teacher_archive(archive: str, dest_root: str) -> str:
    """Check ``archive`` and unpack it so that ``dest_root/cifar_teachers`` appears atomically; returns it.

    An existing ``cifar_teachers`` folder is kept (never overwritten); only missing teachers are added.
    """
    teachers = check_teacher_archive(archive)
    os.makedirs(dest_root, exist_ok=True)
    target = os.path.join(dest_root, TEACHERS_FOLDER)
    staging = tempfile.mkdtemp(prefix=".cifar_teachers-", dir=dest_root)
    try:
        _extract(archive, staging)
        unpacked = os.path.join(staging, TEACHERS_FOLDER)
        if not os.path.isdir(target):
            try:
                os.rename(unpacked, target)
            except OSError:
                if not os.path.isdir(target):  # not a concurrent winner: a real failure
                    raise
        for name in teachers:  # complete an existing folder teacher by teacher, each with one rename
            if not os.path.exists(os.path.join(target, name)) and os.path.isdir(os.path.join(unpacked, name)):
                os.rename(os.path.join(unpacked, name), os.path.join(target, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def teachers_present(dest_root: str) -> bool:
    """Whether ``dest_root/cifar_teachers`` already holds at least one teacher checkpoint."""
    folder = os.path.join(dest_root, TEACHERS_FOLDER)
    if not os.path.isdir(folder):
        return False
    return any(os.path.isfile(os.path.join(folder, d, CKPT_NAME)) for d in os.listdir(folder))


def ensure_cifar_teachers(dest_root: str = "download_ckpts", url: Optional[str] = None, force: bool = False,
                          progress: bool = True, timeout: float = 60.0) -> str:
    """``dest_root/cifar_teachers``, downloading and unpacking mdistiller's teacher archive when missing.

    ``url`` defaults to ``$MDISTILLER_DDKD_TEACHERS_URL`` or mdistiller's GitHub release. Offline or
    unreachable: ``DownloadError`` saying what to download, from where, and where to put it. A corrupt
    archive: ``TeacherArchiveError``. Either way nothing half-written is left behind.
    """
    target = os.path.join(dest_root, TEACHERS_FOLDER)
    if teachers_present(dest_root) and not force:
        return target
    source = teachers_url(url)
    with disk_errors(f"preparing the download into {dest_root}"):
        os.makedirs(dest_root, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".cifar_teachers-", suffix=".tar.part", dir=dest_root)
        os.close(fd)
    try:
        try:
            fetch(source, tmp, timeout=timeout, progress=progress)
        except (urllib.error.URLError, OSError, ValueError) as err:
            if is_file_system_refusal(err):
                raise disk_error(err, f"downloading the teachers into {dest_root}") from None
            reason = getattr(err, "reason", None) or err
            raise DownloadError(_offline_message(source, dest_root, str(reason))) from None
        with disk_errors(f"unpacking the teachers into {dest_root}"):
            return install_teacher_archive(tmp, dest_root)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
