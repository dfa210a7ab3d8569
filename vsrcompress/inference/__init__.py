"""Streaming video super-resolution: stateful calls (the forward state carried, a lookahead for the backward branch;
the default) or windows with overlap, a three-stage threaded pipeline, backends.

Plain PyTorch/onnxruntime/OpenCV (TensorRT when installed). See docs/deploy.md.
"""
from vsrcompress.inference.backends import (BACKENDS, DEVICES, Backend, OnnxRuntimeBackend, TensorRTBackend,
                                            TorchBackend, make_backend)
from vsrcompress.inference.chunk_plan import ChunkPlanner, Window, mirrored_indices, validate_chunking
from vsrcompress.inference.frame_sink import FrameSink, partial_path
from vsrcompress.inference.frame_source import FrameSource, open_frame_source
from vsrcompress.inference.pipeline import run_video_sr, super_resolve_stream
from vsrcompress.inference.stream_plan import StreamCall, StreamPlanner, make_planner, validate_streaming
from vsrcompress.inference.run_report import RunStats, format_report, peak_rss_mib, write_report_json

__all__ = [
    'BACKENDS', 'DEVICES', 'Backend', 'ChunkPlanner', 'FrameSink', 'FrameSource', 'OnnxRuntimeBackend', 'RunStats',
    'StreamCall', 'StreamPlanner', 'TensorRTBackend', 'TorchBackend', 'Window', 'format_report', 'make_backend',
    'make_planner', 'mirrored_indices',
    'open_frame_source', 'partial_path', 'peak_rss_mib', 'run_video_sr', 'super_resolve_stream',
    'validate_chunking', 'validate_streaming', 'write_report_json',
]
