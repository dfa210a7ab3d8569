"""Official BasicSR checkpoints by name: download into a folder and check the short SHA256 in each file name.

``scripts/download_pretrained.py`` is the command line over this. basicsr is imported only when downloading.
"""
import hashlib
import os
import sys
from collections.abc import Sequence
from os import path as osp
from urllib.parse import parse_qs, urlparse

from vsrcompress.atomic_files import write_atomic

# BasicSR publishes these on Google Drive (its scripts/download_pretrained_models.py lists the same file ids).
GDRIVE_URL = 'https://docs.google.com/uc?export=download&id={}'
CHECKPOINTS = {
    'BasicVSR_REDS4': ('BasicVSR_REDS4-543c8261.pth', GDRIVE_URL.format('1wLWdz18lWf9Z7lomHPkdySZ-_GV2920p')),
    'BasicVSR_Vimeo90K_BIx4': ('BasicVSR_Vimeo90K_BIx4-2a29695a.pth',
                               GDRIVE_URL.format('1ykIu1jv5wo95Kca2TjlieJFxeV4VVfHP')),
    'BasicVSR_Vimeo90K_BDx4': ('BasicVSR_Vimeo90K_BDx4-e9bf46eb.pth',
                               GDRIVE_URL.format('1baaf4RSpzs_zcDAF_s2CyArrGvLgmXxW')),
    'IconVSR_REDS': ('IconVSR_REDS-aaa5367f.pth', GDRIVE_URL.format('1b8ir754uIAFUSJ8YW_cmPzqer19AR7Hz')),
    'IconVSR_Vimeo90K_BIx4': ('IconVSR_Vimeo90K_BIx4-35fec07c.pth',
                              GDRIVE_URL.format('1lWUB36ERjFbAspr-8UsopJ6xwOuWjh2g')),
    'IconVSR_Vimeo90K_BDx4': ('IconVSR_Vimeo90K_BDx4-cfcb7e00.pth',
                              GDRIVE_URL.format('13lp55s-YTd-fApx8tTy24bbHsNIGXdAH')),
    'EDVR_REDS_pretrained_for_IconVSR': ('EDVR_REDS_pretrained_for_IconVSR-f62a2f1e.pth',
                                         GDRIVE_URL.format('1ShfwddugTmT3_kB8VL6KpCMrIpEO5sBi')),
    'EDVR_Vimeo90K_pretrained_for_IconVSR': ('EDVR_Vimeo90K_pretrained_for_IconVSR-ee48ee92.pth',
                                             GDRIVE_URL.format('16vR262NDVyVv5Q49xp2Sb-Llu05f63tt')),
    'spynet_sintel_final': ('spynet_sintel_final-3d2a1287.pth', GDRIVE_URL.format('1VZz1cikwTRVX7zXoD247DB7n5Tj_LQpF')),
}


def hash_prefix(file_name: str) -> str:
    """The short SHA256 prefix BasicSR puts after the last ``-`` of a checkpoint's file name."""
    return osp.splitext(file_name)[0].rsplit('-', 1)[-1]


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: str) -> None:
    """Fetch ``url`` into ``dest`` with basicsr's download utilities.

    A Google Drive URL goes through basicsr's Drive helper (it answers the large-file confirmation step); any
    other http(s) URL through ``load_file_from_url`` (torch.hub's downloader, which raises on HTTP errors).
    """
    import vsrcompress  # noqa: F401  (basicsr only imports after vsrcompress's compatibility fixes)
    from basicsr.utils.download_util import download_file_from_google_drive, load_file_from_url

    parts = urlparse(url)
    if parts.netloc == 'docs.google.com':
        download_file_from_google_drive(parse_qs(parts.query)['id'][0], dest)
    else:
        load_file_from_url(url, model_dir=osp.dirname(dest), progress=False, file_name=osp.basename(dest))


def fetch(name: str, out_dir: str, checkpoints: dict[str, tuple[str, str]] = CHECKPOINTS) -> str:
    """Download one checkpoint (skipped when a file with the right hash is there) and verify its hash prefix.

    Args:
        name: A key of ``checkpoints``.
        out_dir: Folder the file lands in, under its official file name.
        checkpoints: Name -> (file name with hash prefix, URL); the official table unless another is given
            (a mirror, or a local server in the tests).
    """
    file_name, url = checkpoints[name]
    path = osp.join(out_dir, file_name)
    if osp.isfile(path) and sha256_of(path).startswith(hash_prefix(file_name)):
        print(f'{name}: already there ({path})')
        return path
    os.makedirs(out_dir, exist_ok=True)

    def download_verified(tmp: str) -> None:
        os.remove(tmp)  # load_file_from_url would take an existing file for a finished download
        try:
            download(url, tmp)
        except Exception as err:
            raise RuntimeError(f'{name}: downloading {url} failed: {err}') from err
        digest = sha256_of(tmp)
        if not digest.startswith(hash_prefix(file_name)):
            raise RuntimeError(f'{name}: {url} gave a file with SHA256 {digest[:8]}..., expected prefix '
                               f'{hash_prefix(file_name)} (an error or quota page instead of the file, or a changed '
                               'file)')

    write_atomic(path, download_verified)
    print(f'{name}: {path}')
    return path


def fetch_all(names: Sequence[str], out_dir: str, checkpoints: dict[str, tuple[str, str]] = CHECKPOINTS) -> list[str]:
    """Fetch every named checkpoint; returns the names that failed (each printed with its URL as an ``error:``)."""
    failed = []
    for name in names:
        try:
            fetch(name, out_dir, checkpoints)
        except RuntimeError as err:
            print(f'error: {err}', file=sys.stderr)
            failed.append(name)
    return failed
