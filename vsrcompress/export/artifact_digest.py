"""Checksums (sha256) of exported models: written by every exporter into the artifact's own metadata, verified by
every loader before the first frame, so a damaged or altered model is refused instead of giving wrong pictures.

What each artifact records, and what it covers:

- ONNX graph: metadata entry ``vsrcompress.sha256``, the sha256 of the model with that entry removed, with every
  tensor's data inline (external data files loaded) and serialized deterministically. A file cannot hold the hash
  of its own bytes; this covers all it holds (nodes, weights, the other metadata) and stays valid if the weights are
  moved to external data files, whose bytes it then covers.
- OpenVINO IR: runtime info ``vsrcompress/weights_sha256`` (the ``.bin`` file's sha256) and ``vsrcompress/xml_sha256``
  (the ``.xml`` file's sha256 with that value replaced by a placeholder), filled in after ``save_model`` wrote both.
- TensorRT engine: ``engine_sha256`` in the side ``.json`` (the engine file's sha256).

Hashing runs at disk speed (about 25 MB for a full-size BasicVSR): cheap next to one model call. Artifacts written
before checksums were recorded carry none: they run, with an ``UnverifiedArtifactWarning`` saying to re-export.
"""
import hashlib
import os
import warnings
from collections.abc import Iterable, Iterator

import onnx
from onnx.external_data_helper import ExternalDataInfo, load_external_data_for_model, uses_external_data

from vsrcompress.atomic_files import write_atomic

ONNX_DIGEST_KEY = 'vsrcompress.sha256'
ENGINE_DIGEST_KEY = 'engine_sha256'
IR_WEIGHTS_DIGEST = ['vsrcompress', 'weights_sha256']
IR_XML_DIGEST = ['vsrcompress', 'xml_sha256']
# what export_openvino stores before save_model, replaced by seal_openvino_digests in the written .xml
_PENDING_WEIGHTS = 'vsrcompress-pending-weights-sha256'
_PENDING_XML = 'vsrcompress-pending-xml-sha256'
_CHUNK = 1 << 20


class DamagedArtifactError(ValueError):
    """An exported model whose bytes differ from the checksum recorded when it was written."""


class UnverifiedArtifactWarning(UserWarning):
    """An exported model that carries no checksum (written before vsrcompress recorded them): it runs unverified."""


def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(_CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(paths: Iterable[str]) -> dict[str, str]:
    """``{path: sha256}`` of the files an export wrote, for its report."""
    return {path: file_sha256(path) for path in paths}


# ------------------------------------------------------------------------------------------------ ONNX
def _graph_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """Every tensor a graph holds: initializers and node attributes, subgraphs included."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField('t'):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField('g'):
                yield from _graph_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graph_tensors(subgraph)


def remove_onnx_digest(model: onnx.ModelProto) -> None:
    """Drop the checksum entry from ``model``'s metadata (in place), e.g. before the graph is rewritten."""
    kept = [p for p in model.metadata_props if p.key != ONNX_DIGEST_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)


def onnx_digest(model: onnx.ModelProto) -> str:
    """The sha256 of ``model`` (every tensor's data loaded) without its checksum entry, in a canonical form."""
    canonical = onnx.ModelProto()
    canonical.CopyFrom(model)
    remove_onnx_digest(canonical)
    for tensor in _graph_tensors(canonical.graph):  # loaded external data: DEFAULT set explicitly, as never set
        if tensor.data_location == onnx.TensorProto.DEFAULT:
            tensor.ClearField('data_location')
    return hashlib.sha256(canonical.SerializeToString(deterministic=True)).hexdigest()


def stamp_onnx(model: onnx.ModelProto) -> str:
    """Record ``model``'s checksum in its metadata (replacing an older one); call last, right before saving."""
    remove_onnx_digest(model)
    digest = onnx_digest(model)
    entry = model.metadata_props.add()
    entry.key, entry.value = ONNX_DIGEST_KEY, digest
    return digest


def external_data_files(model: onnx.ModelProto) -> list[str]:
    """The external data files (relative to the graph's folder) that ``model``'s tensors refer to."""
    return sorted({ExternalDataInfo(t).location for t in _graph_tensors(model.graph) if uses_external_data(t)})


def verify_onnx(path: str, model: onnx.ModelProto | None = None) -> None:
    """Refuse a graph whose external data is missing or whose content differs from its recorded checksum.

    Args:
        path: The ``.onnx`` file.
        model: The graph as loaded from ``path`` without its external data (loaded here when not given).

    Raises:
        DamagedArtifactError: An external data file is missing or the checksum differs (the message names the file
            and says to re-export). A graph without checksum gives an ``UnverifiedArtifactWarning`` instead.
    """
    model = model if model is not None else onnx.load(path, load_external_data=False)
    folder = os.path.dirname(os.path.abspath(path))
    external = external_data_files(model)
    missing = [name for name in external if not os.path.isfile(os.path.join(folder, name))]
    if missing:
        raise DamagedArtifactError(f'onnx: {path} keeps its weights in external data file(s) {missing}, which do not '
                                   f'exist in {folder}; copy them next to the graph, or re-export it with '
                                   'scripts/export.py.')
    recorded = next((p.value for p in model.metadata_props if p.key == ONNX_DIGEST_KEY), None)
    if recorded is None:
        warnings.warn(f'onnx: {path} carries no checksum (exported before vsrcompress recorded one), so damage to it '
                      'cannot be detected; re-export it with scripts/export.py.', UnverifiedArtifactWarning,
                      stacklevel=3)
        return
    if external:
        loaded = onnx.ModelProto()
        loaded.CopyFrom(model)
        try:
            load_external_data_for_model(loaded, folder)
        except (OSError, ValueError) as err:  # a data file shorter than the offsets it is read at
            raise DamagedArtifactError(f'onnx: the external data {external} of {path} cannot be read ({err}); '
                                       're-export the graph with scripts/export.py.') from None
        model = loaded
    actual = onnx_digest(model)
    if actual != recorded:
        covered = f'{path} (with its external data {external})' if external else path
        raise DamagedArtifactError(f'onnx: {covered} is damaged or was changed after export: its content has sha256 '
                                   f'{actual[:16]}..., the export recorded {recorded[:16]}...; re-export it with '
                                   'scripts/export.py.')


# ------------------------------------------------------------------------------------------------ OpenVINO IR
def mark_openvino_digests(ov_model) -> None:
    """Give an ``openvino.Model`` the checksum entries (placeholders until ``seal_openvino_digests``)."""
    ov_model.set_rt_info(_PENDING_WEIGHTS, IR_WEIGHTS_DIGEST)
    ov_model.set_rt_info(_PENDING_XML, IR_XML_DIGEST)


def _replace_once(text: bytes, old: str, new: str, xml_path: str) -> bytes:
    count = text.count(old.encode())
    if count != 1:
        raise DamagedArtifactError(f'openvino: {xml_path} holds {count} copies of its checksum entry {old!r} '
                                   '(expected one); re-export it with scripts/export.py --format openvino.')
    return text.replace(old.encode(), new.encode())


def seal_openvino_digests(xml_path: str) -> None:
    """Fill in the checksums of an IR that ``save_model`` just wrote (``mark_openvino_digests`` before it)."""
    with open(xml_path, 'rb') as f:
        text = _replace_once(f.read(), _PENDING_WEIGHTS, file_sha256(xml_path[:-4] + '.bin'), xml_path)
    text = _replace_once(text, _PENDING_XML, hashlib.sha256(text).hexdigest(), xml_path)

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as out:
            out.write(text)
    write_atomic(xml_path, write)


def verify_openvino_ir(xml_path: str, ov_model) -> None:
    """Refuse an IR whose ``.bin`` or ``.xml`` differs from the checksums recorded in it (``ov_model``: as read).

    An IR without checksums gives an ``UnverifiedArtifactWarning`` instead.
    """
    if not ov_model.has_rt_info(IR_WEIGHTS_DIGEST) or not ov_model.has_rt_info(IR_XML_DIGEST):
        warnings.warn(f'openvino: {xml_path} carries no checksum (exported before vsrcompress recorded one), so '
                      'damage to it cannot be detected; re-export it with scripts/export.py --format openvino.',
                      UnverifiedArtifactWarning, stacklevel=3)
        return
    bin_path = xml_path[:-4] + '.bin'
    recorded = ov_model.get_rt_info(IR_WEIGHTS_DIGEST).astype(str)
    actual = file_sha256(bin_path)
    if actual != recorded:
        raise DamagedArtifactError(f'openvino: the weights {bin_path} of {xml_path} are damaged or were changed after '
                                   f'export: sha256 {actual[:16]}..., the IR records {recorded[:16]}...; re-export it '
                                   'with scripts/export.py --format openvino.')
    recorded = ov_model.get_rt_info(IR_XML_DIGEST).astype(str)
    with open(xml_path, 'rb') as f:
        text = f.read()
    actual = hashlib.sha256(_replace_once(text, recorded, _PENDING_XML, xml_path)).hexdigest()
    if actual != recorded:
        raise DamagedArtifactError(f'openvino: {xml_path} is damaged or was changed after export (its sha256 differs '
                                   'from the one it records); re-export it with scripts/export.py --format openvino.')


# ------------------------------------------------------------------------------------------------ TensorRT
def verify_engine(engine_path: str, recorded: str | None, record_path: str) -> None:
    """Refuse an engine whose sha256 differs from ``recorded`` (read from ``record_path``, its side ``.json``).

    ``recorded`` None (an engine built before checksums were recorded) gives an ``UnverifiedArtifactWarning``.
    """
    if recorded is None:
        warnings.warn(f'engine: {record_path} records no checksum of {engine_path} (built before vsrcompress recorded '
                      'one), so damage to it cannot be detected; rebuild it with scripts/export.py --trt.',
                      UnverifiedArtifactWarning, stacklevel=3)
        return
    actual = file_sha256(engine_path)
    if actual != recorded:
        raise DamagedArtifactError(f'engine: {engine_path} is damaged or was changed after it was built: sha256 '
                                   f'{actual[:16]}..., {record_path} records {recorded[:16]}...; rebuild it with '
                                   'scripts/export.py --trt.')
