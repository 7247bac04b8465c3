import numpy as np
import pytest

from twinwatch.features import GROUP_SLICES
from twinwatch.images import blank_images, to_images


def test_group_one_normalised_per_column_across_rows():
    m = np.zeros((13, 53))
    m[0, 1] = 2.0
    m[4, 1] = 1.0
    m[4, 0] = 7.0
    image = to_images(m)
    assert image[0, 1] == 255 and image[4, 1] == 128  # rint(127.5) rounds half to even → 128
    assert image[4, 0] == 255


def test_groups_two_to_four_normalised_per_row():
    m = np.zeros((13, 53))
    packets = GROUP_SLICES[2]
    m[3, packets.start] = 10.0
    m[3, packets.start + 1] = 5.0
    m[5, packets.start] = 1.0  # another row has its own maximum
    timings = GROUP_SLICES[3]
    m[3, timings.start] = 0.5
    image = to_images(m)
    assert image[3, packets.start] == 255 and image[3, packets.start + 1] == 128
    assert image[5, packets.start] == 255
    assert image[3, timings.start] == 255  # timing group has its own maximum


def test_blank_images_detected():
    images = np.stack([np.zeros((13, 53), np.uint8), np.full((13, 53), 255, np.uint8),
                       to_images(np.eye(13, 53))])
    assert blank_images(images).tolist() == [True, True, False]


def test_bad_matrices_refused():
    with pytest.raises(ValueError, match="non-negative"):
        to_images(-np.ones((13, 53)))
    with pytest.raises(ValueError, match="13, 53"):
        to_images(np.ones((12, 53)))
