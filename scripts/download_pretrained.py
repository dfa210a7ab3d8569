"""Fetch official BasicSR checkpoints by name into experiments/pretrained_models/.

Usage: ``python scripts/download_pretrained.py BasicVSR_REDS4 spynet_sintel_final`` (``--list`` shows the names).
The short hash in each file name (e.g. ``-543c8261``) is checked against the SHA256 of the downloaded file.
"""
import argparse
import hashlib
import os
import sys
from os import path as osp

# BasicSR publishes these on Google Drive (its scripts/download_pretrained_models.py lists the same file ids).
GDRIVE_URL = 'https://docs.google.com/uc?export=download&id={}'
CHECKPOINTS = {
    'BasicVSR_REDS4': ('BasicVSR_REDS4-543c8261.pth', '1wLWdz18lWf9Z7lomHPkdySZ-_GV2920p'),
    'BasicVSR_Vimeo90K_BIx4': ('BasicVSR_Vimeo90K_BIx4-2a29695a.pth', '1ykIu1jv5wo95Kca2TjlieJFxeV4VVfHP'),
    'BasicVSR_Vimeo90K_BDx4': ('BasicVSR_Vimeo90K_BDx4-e9bf46eb.pth', '1baaf4RSpzs_zcDAF_s2CyArrGvLgmXxW'),
    'IconVSR_REDS': ('IconVSR_REDS-aaa5367f.pth', '1b8ir754uIAFUSJ8YW_cmPzqer19AR7Hz'),
    'IconVSR_Vimeo90K_BIx4': ('IconVSR_Vimeo90K_BIx4-35fec07c.pth', '1lWUB36ERjFbAspr-8UsopJ6xwOuWjh2g'),
    'IconVSR_Vimeo90K_BDx4': ('IconVSR_Vimeo90K_BDx4-cfcb7e00.pth', '13lp55s-YTd-fApx8tTy24bbHsNIGXdAH'),
    'EDVR_REDS_pretrained_for_IconVSR': ('EDVR_REDS_pretrained_for_IconVSR-f62a2f1e.pth',
                                         '1ShfwddugTmT3_kB8VL6KpCMrIpEO5sBi'),
    'EDVR_Vimeo90K_pretrained_for_IconVSR': ('EDVR_Vimeo90K_pretrained_for_IconVSR-ee48ee92.pth',
                                             '16vR262NDVyVv5Q49xp2Sb-Llu05f63tt'),
    'spynet_sintel_final': ('spynet_sintel_final-3d2a1287.pth', '1VZz1cikwTRVX7zXoD247DB7n5Tj_LQpF'),
}


def hash_prefix(file_name: str) -> str:
    return osp.splitext(file_name)[0].rsplit('-', 1)[-1]


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name: str, out_dir: str) -> str:
    """Download one checkpoint (skipped when a file with the right hash is there) and verify its hash prefix."""
    import vsrcompress  # noqa: F401  (basicsr only imports after vsrcompress's compatibility fixes)
    from basicsr.utils.download_util import download_file_from_google_drive

    file_name, file_id = CHECKPOINTS[name]
    path = osp.join(out_dir, file_name)
    if osp.isfile(path) and sha256_of(path).startswith(hash_prefix(file_name)):
        print(f'{name}: already there ({path})')
        return path
    os.makedirs(out_dir, exist_ok=True)
    url = GDRIVE_URL.format(file_id)
    tmp = osp.join(out_dir, f'.partial_{file_name}')
    try:
        download_file_from_google_drive(file_id, tmp)
    except Exception as err:
        if osp.exists(tmp):
            os.remove(tmp)
        raise RuntimeError(f'{name}: downloading {url} failed: {err}') from err
    digest = sha256_of(tmp)
    if not digest.startswith(hash_prefix(file_name)):
        os.remove(tmp)
        raise RuntimeError(f'{name}: {url} gave a file with SHA256 {digest[:8]}..., expected prefix '
                           f'{hash_prefix(file_name)} (a Google Drive quota page, or a changed file)')
    os.replace(tmp, path)
    print(f'{name}: {path}')
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('names', nargs='*', help='checkpoint names (see --list)')
    parser.add_argument('--list', action='store_true', help='list the known checkpoint names')
    parser.add_argument('--out', default=osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'experiments',
                                                  'pretrained_models'))
    args = parser.parse_args(argv)
    if args.list or not args.names:
        for name, (file_name, _) in CHECKPOINTS.items():
            print(f'{name:38s} {file_name}')
        return 0
    unknown = [n for n in args.names if n not in CHECKPOINTS]
    if unknown:
        parser.error(f'unknown checkpoint names {unknown}; known: {", ".join(CHECKPOINTS)}')
    failed = []
    for name in args.names:
        try:
            fetch(name, args.out)
        except RuntimeError as err:
            print(f'error: {err}', file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
