"""vsrcompress.pretrained and scripts/download_pretrained.py: real downloads from a local HTTP server, hash-prefix
check, unreachable URLs."""
import functools
import hashlib
import http.server
import os
import re
import socket
import threading
from urllib.parse import parse_qs, urlparse

import pytest
from conftest import script_main

from vsrcompress.pretrained import CHECKPOINTS, fetch_all, hash_prefix

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

    assert fetch_all(['Toy_REDS'], str(out), table) == []
    assert os.listdir(out) == [file_name]  # no partial file left next to it
    assert (out / file_name).read_bytes() == PAYLOAD

    (folder / file_name).unlink()  # a second run finds the verified file and does not download again
    assert fetch_all(['Toy_REDS'], str(out), table) == []
    assert 'Toy_REDS: already there' in capsys.readouterr().out


def test_wrong_hash_is_an_error_and_leaves_no_file(served, tmp_path, capsys):
    folder, base = served
    (folder / 'Toy_REDS-00000000.pth').write_bytes(PAYLOAD)
    url = f'{base}/Toy_REDS-00000000.pth'
    out = tmp_path / 'pretrained'

    assert fetch_all(['Toy_REDS'], str(out), {'Toy_REDS': ('Toy_REDS-00000000.pth', url)}) == ['Toy_REDS']
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

    assert fetch_all(['Toy_REDS'], str(out), {'Toy_REDS': ('Toy_REDS-12345678.pth', url)}) == ['Toy_REDS']
    assert f'error: Toy_REDS: downloading {url} failed' in capsys.readouterr().err
    assert os.listdir(out) == []


def test_official_table_holds_drive_ids_and_hash_prefixes():
    for name, (file_name, url) in CHECKPOINTS.items():
        assert file_name.startswith(name + '-') and re.fullmatch(r'[0-9a-f]{8}', hash_prefix(file_name))
        parts = urlparse(url)
        assert parts.netloc == 'docs.google.com' and len(parse_qs(parts.query)['id'][0]) == 33, url


def test_script_lists_the_names_and_refuses_unknown_ones(tmp_path, capsys):
    main = script_main('download_pretrained')
    assert main(['--list']) == 0 and 'BasicVSR_REDS4' in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(['BasicVSR_REDS5', '--out', str(tmp_path / 'out')])
    assert exit_info.value.code == 2 and "unknown checkpoint names ['BasicVSR_REDS5']" in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
