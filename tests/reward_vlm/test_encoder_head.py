import numpy as np
import torch

from reward_vlm import TrainConfig, load_classifier
from reward_vlm.encoder_head import EncoderHeadClassifier, EncoderHeadConfig

TASKS = [("in", "put the cube in the bowl"), ("out", "take the cube out of the bowl")]


def test_forward_fit_save_load(tiny_siglip_dir, ring_data, tmp_path):
    x, y, xt, _ = ring_data
    clf = EncoderHeadClassifier(TASKS, EncoderHeadConfig(encoder=str(tiny_siglip_dir), hidden=16))
    p = clf.predict(x[:5], "in")
    assert p.shape == (5,) and np.all((p > 0) & (p < 1))
    assert clf.features(x[:3]).shape == (3, 32)
    enc_before = {k: v.clone() for k, v in clf.encoder.state_dict().items()}
    loss0 = clf.loss(x[:64], y[:64], 0)
    stats = clf.fit(x[:64], y[:64], 0, cfg=TrainConfig(epochs=30, lr=3e-3, shift_pixels=0, color_jitter=0, progress=False))
    assert stats.epoch_losses[-1] < stats.epoch_losses[0]
    assert clf.loss(x[:64], y[:64], 0) < loss0
    for k, v in clf.encoder.state_dict().items():
        assert torch.equal(v, enc_before[k]), f"frozen encoder changed: {k}"
    clf.save(tmp_path / "enc")
    loaded = load_classifier(tmp_path / "enc")
    assert isinstance(loaded, EncoderHeadClassifier)
    np.testing.assert_array_equal(loaded.predict(xt[:20], [0, 1] * 10), clf.predict(xt[:20], [0, 1] * 10))
