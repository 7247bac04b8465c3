"""Golden files: a committed pcap in, the committed fingerprints out, bit for bit."""

import numpy as np

from tests.golden.make_golden import EXPECTED, INPUT, expected_arrays


def test_lab_slice_gives_the_golden_images():
    expected = np.load(EXPECTED)
    got = expected_arrays(INPUT)
    assert sorted(got) == sorted(expected.files)
    assert len(got) == 6  # three devices, one night, images and windows each
    for name in expected.files:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    windows = [got[k] for k in got if k.endswith("_windows")]
    # 40 minutes: windows 00:00, 00:12, 00:24 whole and 00:36 in part.
    assert all(w.tolist() == [0, 1, 2, 3] for w in windows)
