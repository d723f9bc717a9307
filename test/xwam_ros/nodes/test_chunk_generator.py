"""The chunk generator's motion: continuous across chunks, centred where it is told."""

import numpy as np

from xwam_ros.nodes.chunk_generator import sine_chunk


def test_sine_chunk_follows_the_wave_at_step_times():
    center = np.array([0.5, -1.0])
    chunk = sine_chunk(
        center, amplitude=0.1, frequency=0.5, start=2.0, num_steps=4, step_period=0.25
    )
    times = 2.0 + 0.25 * np.arange(1, 5)
    expected = center + 0.1 * np.sin(np.pi * times)[:, None]
    np.testing.assert_allclose(chunk, expected, atol=1e-6)
    assert chunk.dtype == np.float32 and chunk.shape == (4, 2)


def test_consecutive_chunks_join_without_a_jump():
    center = np.zeros(3)
    first = sine_chunk(center, 0.2, 1.0, start=0.0, num_steps=8, step_period=0.05)
    second = sine_chunk(center, 0.2, 1.0, start=0.4, num_steps=8, step_period=0.05)
    max_step = 0.2 * 2 * np.pi * 1.0 * 0.05  # amplitude * angular speed * step period
    assert np.abs(second[0] - first[-1]).max() <= max_step + 1e-6
