"""What scripts/install.sh leaves behind: basicsr 1.4.2 also pulls opencv-python and tb-nightly, which write the same
module folders as our opencv-python-headless and tensorboard; ours are installed after them, so theirs are in use."""
import importlib.metadata

import cv2


def test_cv2_in_use_is_the_headless_build_that_needs_no_libgl():
    gui = [line.split(':', 1)[1].strip() for line in cv2.getBuildInformation().splitlines()
           if line.strip().startswith('GUI:')]
    assert gui == ['NONE']  # opencv-python's build has Qt here and needs libGL.so.1, absent on servers


def test_tensorboard_in_use_is_the_release_not_the_nightly():
    import tensorboard
    assert tensorboard.__version__ == importlib.metadata.version('tensorboard')
