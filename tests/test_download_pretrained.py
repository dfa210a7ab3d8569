"""scripts/download_pretrained.py: real downloads from a local HTTP server, hash-prefix check, unreachable URLs."""
import functools
import hashlib
import http.server
import os
import re
import runpy
import socket
import threading
from urllib.parse import parse_qs, urlparse

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = runpy.run_path(os.path.join(ROOT, 'scripts', 'download_pretrained.py'), run_name='download_under_test')
PAYLOAD = b'not really a checkpoint, but bytes with a known SHA256' * 100


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def served(tmp_path):
    """(folder served, base URL) of an HTTP server on 127.0.0.1, an ephemeral port, for one test."""
    folder = tmp_path / 'served'
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()
    server.server_close()


def test_file_with_matching_hash_prefix_lands_in_the_output_folder(served, tmp_path, capsys):
    folder, base = served
    file_name = f'Toy_REDS-{hashlib.sha256(PAYLOAD).hexdigest()[:8]}.pth'
    (folder / file_name).write_bytes(PAYLOAD)
    table = {'Toy_REDS': (file_name, f'{base}/{file_name}')}
    out = tmp_path / 'pretrained'

    assert SCRIPT['main'](['Toy_REDS', '--out', str(out)], table) == 0
    assert os.listdir(out) == [file_name]  # no partial file left next to it
    assert (out / file_name).read_bytes() == PAYLOAD

    (folder / file_name).unlink()  # a second run finds the verified file and does not download again
    assert SCRIPT['main'](['Toy_REDS', '--out', str(out)], table) == 0
    assert 'Toy_REDS: already there' in capsys.readouterr().out


def test_wrong_hash_is_an_error_and_leaves_no_file(served, tmp_path, capsys):
    folder, base = served
    (folder / 'Toy_REDS-00000000.pth').write_bytes(PAYLOAD)
    url = f'{base}/Toy_REDS-00000000.pth'
    out = tmp_path / 'pretrained'

    assert SCRIPT['main'](['Toy_REDS', '--out', str(out)], {'Toy_REDS': ('Toy_REDS-00000000.pth', url)}) == 1
    err = capsys.readouterr().err
    assert f'Toy_REDS: {url} gave a file with SHA256 {hashlib.sha256(PAYLOAD).hexdigest()[:8]}' in err
    assert 'expected prefix 00000000' in err
    assert os.listdir(out) == []


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    return f'http://127.0.0.1:{port}/Toy_REDS-12345678.pth'  # nothing listens there once the socket is closed


@pytest.mark.parametrize('where', ['closed port', 'missing file'])
def test_failed_download_names_the_url_and_leaves_no_file(served, tmp_path, capsys, where):
    url = _closed_port_url() if where == 'closed port' else f'{served[1]}/Toy_REDS-12345678.pth'  # HTTP 404
    out = tmp_path / 'pretrained'

    assert SCRIPT['main'](['Toy_REDS', '--out', str(out)], {'Toy_REDS': ('Toy_REDS-12345678.pth', url)}) == 1
    assert f'error: Toy_REDS: downloading {url} failed' in capsys.readouterr().err
    assert os.listdir(out) == []


def test_official_table_holds_drive_ids_and_hash_prefixes():
    for name, (file_name, url) in SCRIPT['CHECKPOINTS'].items():
        assert file_name.startswith(name + '-') and re.fullmatch(r'[0-9a-f]{8}', SCRIPT['hash_prefix'](file_name))
        parts = urlparse(url)
        assert parts.netloc == 'docs.google.com' and len(parse_qs(parts.query)['id'][0]) == 33, url
